#!/usr/bin/env python3
"""asyncio_executor.py: asyncio's run_in_executor as a peer of executor_bench.

A trivial function runs on a ThreadPoolExecutor(max_workers=4), as in
bench/executor_bench.cpp. Prints a JSON list in report.py's peer schema:
  py_asyncio_executor_roundtrip    ns per run_in_executor awaited alone
  py_asyncio_executor_throughput   ns per call with 1,000 in flight
ns_per_op is the median of --repetitions runs; spread is (max-min)/median in %.
"""
import argparse
import asyncio
import concurrent.futures
import json
import sys
import time

from peer_rows import row


def trivial():
    return 1


async def roundtrip(pool, calls):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        await loop.run_in_executor(pool, trivial)
    return (time.perf_counter_ns() - t0) / calls


async def throughput(pool, in_flight, rounds):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        await asyncio.gather(*(loop.run_in_executor(pool, trivial) for _ in range(in_flight)))
    return (time.perf_counter_ns() - t0) / (in_flight * rounds)


def measure(scenario, repetitions):
    samples = []
    for _ in range(repetitions):
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            samples.append(asyncio.run(scenario(pool)))
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--in-flight", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    source = f"Python {sys.version.split()[0]}, asyncio + ThreadPoolExecutor(4)"
    rows = [
        row("py_asyncio_executor_roundtrip",
            measure(lambda pool: roundtrip(pool, args.calls), args.repetitions), source),
        row("py_asyncio_executor_throughput",
            measure(lambda pool: throughput(pool, args.in_flight, args.rounds), args.repetitions), source),
    ]
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
