#!/usr/bin/env python3
"""asyncio_getaddrinfo.py: asyncio's loop.getaddrinfo() as a peer of resolve_bench.

"localhost" (/etc/hosts, no DNS), family=AF_INET, type=SOCK_STREAM, awaited one at a time, as in
bench/resolve_bench.cpp. Prints a JSON list in report.py's peer schema:
  py_asyncio_getaddrinfo_system    ns per lookup: socket.getaddrinfo() on the default executor
  py_asyncio_getaddrinfo_override  ns per lookup answered by a loop subclass's getaddrinfo()
                                   override from a table in memory (a DNS cache's hit)
ns_per_op is the median of --repetitions runs; spread is (max-min)/median in %.
"""
import argparse
import asyncio
import json
import socket
import sys
import time

from peer_rows import row


class TableLoop(asyncio.SelectorEventLoop):
    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]


async def lookups(calls):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        await loop.getaddrinfo("localhost", 80, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return (time.perf_counter_ns() - t0) / calls


def measure(calls, repetitions, loop_factory):
    samples = []
    for _ in range(repetitions):
        loop = loop_factory()
        try:
            samples.append(loop.run_until_complete(lookups(calls)))
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    source = f"Python {sys.version.split()[0]}, asyncio"
    rows = [
        row("py_asyncio_getaddrinfo_system", measure(args.calls, args.repetitions, asyncio.new_event_loop), source),
        row("py_asyncio_getaddrinfo_override", measure(args.calls, args.repetitions, TableLoop), source),
    ]
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
