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

from peer_rows import on_fresh_loops, row


class TableLoop(asyncio.SelectorEventLoop):
    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]


async def lookups(calls):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        await loop.getaddrinfo("localhost", 80, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return (time.perf_counter_ns() - t0) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    source = f"Python {sys.version.split()[0]}, asyncio"
    scenario = lambda: lookups(args.calls)  # noqa: E731
    rows = [
        row("py_asyncio_getaddrinfo_system", on_fresh_loops(asyncio.new_event_loop, args.repetitions, scenario), source),
        row("py_asyncio_getaddrinfo_override", on_fresh_loops(TableLoop, args.repetitions, scenario), source),
    ]
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
