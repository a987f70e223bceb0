#!/usr/bin/env python3
"""asyncio_sync.py: asyncio's Queue and Lock as peers of bench/sync_bench.cpp.

  py_asyncio_queue_handoff     ns per item passed from one task to another
                               through asyncio.Queue(maxsize=1)
  py_asyncio_lock_uncontended  ns per acquire()+release() of a free Lock

Prints a JSON list in report.py's peer schema; ns_per_op is the median of
--repetitions runs, spread is (max-min)/median in %.
"""
import argparse
import asyncio
import json
import sys
import time

from peer_rows import row


async def queue_handoff(items):
    q = asyncio.Queue(maxsize=1)

    async def producer():
        for i in range(items):
            await q.put(i)

    t0 = time.perf_counter_ns()
    task = asyncio.create_task(producer())
    total = 0
    for _ in range(items):
        total += await q.get()
    await task
    return (time.perf_counter_ns() - t0) / items


async def lock_uncontended(n):
    lock = asyncio.Lock()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await lock.acquire()
        lock.release()
    return (time.perf_counter_ns() - t0) / n


def measure(scenario, n, repetitions):
    return [asyncio.run(scenario(n)) for _ in range(repetitions)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    source = f"Python {sys.version.split()[0]}, asyncio"
    rows = [
        row("py_asyncio_queue_handoff", measure(queue_handoff, args.items, args.repetitions), source),
        row("py_asyncio_lock_uncontended", measure(lock_uncontended, args.items * 10, args.repetitions), source),
    ]
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
