#!/usr/bin/env python3
"""http_hello_uvloop.py: the asyncio + uvloop peer of examples/http_hello.cpp.

A server, not a peer script that prints rows: bench/tools/http_wrk.py starts it
and runs wrk against it (run_all.sh does not run it as a peer). The same
HTTP/1.1 keep-alive "Hello, World!" answer to every request:
  http_hello_uvloop.py [--port 8080] [--mode streams|protocol] [--loop uvloop|asyncio]
streams: StreamReader.readuntil(b"\\r\\n\\r\\n") then write + drain, the same code
as our example; protocol: an asyncio.Protocol splitting request heads out of
data_received (the fastest way to write it on uvloop). Both close after a
request with "Connection: close". Only listens on 127.0.0.1.
"""
import argparse
import asyncio
import sys

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
            b"Connection: keep-alive\r\n\r\nHello, World!")


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
            if b"Connection: close" in head:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed the connection
    writer.close()


class HelloProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end + 4], self.buffer[end + 4:]
            self.transport.write(RESPONSE)
            if b"Connection: close" in head:
                self.transport.close()
                return


async def serve(port, mode):
    loop = asyncio.get_running_loop()
    if mode == "streams":
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    else:
        server = await loop.create_server(HelloProtocol, "127.0.0.1", port, backlog=1024)
    print(f"HTTP on http://127.0.0.1:{server.sockets[0].getsockname()[1]}/ ({mode})", flush=True)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--mode", choices=("streams", "protocol"), default="streams")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            sys.exit("http_hello_uvloop.py: uvloop is not installed (apt-get install python3-uvloop)")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(serve(args.port, args.mode))
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
