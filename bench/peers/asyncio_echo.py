#!/usr/bin/env python3
"""asyncio_echo.py: asyncio (and uvloop when installed) echo round trips as a peer.

The same work as bench/io_bench.cpp's StreamsEcho: one client and one server,
both on one event loop, exchanging 64-byte messages over TCP on 127.0.0.1
with streams (write + drain, readexactly), and with protocols as ProtocolEcho
(the client's data_received() sends the next message). Prints a JSON list in
report.py's peer schema: py_asyncio_streams_echo, py_uvloop_streams_echo,
py_asyncio_protocol_echo, py_uvloop_protocol_echo, ns per round trip.
Only the loopback address is used.
"""
import argparse
import asyncio
import json
import sys
import time

from peer_rows import row

try:
    import uvloop
except ImportError:
    uvloop = None

MESSAGE = b"x" * 64


async def serve(reader, writer):
    try:
        while True:
            data = await reader.readexactly(len(MESSAGE))
            writer.write(data)
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def scenario(round_trips):
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter_ns()
    for _ in range(round_trips):
        writer.write(MESSAGE)
        await writer.drain()
        await reader.readexactly(len(MESSAGE))
    elapsed = time.perf_counter_ns() - t0
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return elapsed / round_trips


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoClientProtocol(asyncio.Protocol):
    def __init__(self, round_trips, done):
        self.left = round_trips
        self.done = done
        self.received = 0

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += len(data)
        if self.received < len(MESSAGE):
            return
        self.received = 0
        self.round_trip()

    def round_trip(self):
        if self.left == 0:
            self.transport.close()
            self.done.set_result(None)
            return
        self.left -= 1
        self.transport.write(MESSAGE)


async def protocol_scenario(round_trips):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    done = loop.create_future()
    _, client = await loop.create_connection(lambda: EchoClientProtocol(round_trips, done), "127.0.0.1", port)
    t0 = time.perf_counter_ns()
    client.round_trip()
    await done
    elapsed = time.perf_counter_ns() - t0
    server.close()
    await server.wait_closed()
    return elapsed / round_trips


def measure(new_loop, round_trips, repetitions, scenario=scenario):
    """ns per round trip, one sample per repetition, after a discarded warm-up
    (the process's first connection ran about 3x slower than the rest)."""
    samples = []
    for i in range(repetitions + 1):
        loop = new_loop()
        try:
            ns = loop.run_until_complete(scenario(round_trips if i else round_trips // 4))
            if i:
                samples.append(ns)
        finally:
            loop.close()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=20_000)
    args = parser.parse_args()
    python = f"Python {sys.version.split()[0]}"
    rows = [row("py_asyncio_streams_echo", measure(asyncio.new_event_loop, args.round_trips, args.repetitions),
                f"{python}, asyncio")]
    rows.append(row("py_asyncio_protocol_echo",
                    measure(asyncio.new_event_loop, args.round_trips, args.repetitions, protocol_scenario),
                    f"{python}, asyncio"))
    if uvloop is not None:
        rows.append(row("py_uvloop_streams_echo", measure(uvloop.new_event_loop, args.round_trips, args.repetitions),
                        f"{python}, uvloop {uvloop.__version__}"))
        rows.append(row("py_uvloop_protocol_echo",
                        measure(uvloop.new_event_loop, args.round_trips, args.repetitions, protocol_scenario),
                        f"{python}, uvloop {uvloop.__version__}"))
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
