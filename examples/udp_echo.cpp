// udp_echo.cpp: the UDP echo server and client of asyncio's documentation
// (create_datagram_endpoint with a DatagramProtocol), both in one loop, the
// server on a free port. Python twin, line for line:
//
//   class EchoServerProtocol:
//       def connection_made(self, transport): self.transport = transport
//       def datagram_received(self, data, addr):
//           print(f"Received {data.decode()!r}"); print(f"Send {data.decode()!r}")
//           self.transport.sendto(data, addr)
//   class EchoClientProtocol:
//       def __init__(self, message, on_con_lost): ...
//       def connection_made(self, transport):
//           self.transport = transport; print('Send:', self.message); transport.sendto(self.message.encode())
//       def datagram_received(self, data, addr):
//           print("Received:", data.decode()); print("Close the socket"); self.transport.close()
//       def error_received(self, exc): print('Error received:', exc)
//       def connection_lost(self, exc): print("Connection closed"); self.on_con_lost.set_result(True)
//   async def main():
//       loop = asyncio.get_running_loop()
//       server, _ = await loop.create_datagram_endpoint(EchoServerProtocol, local_addr=('127.0.0.1', 0))
//       on_con_lost = loop.create_future()
//       transport, protocol = await loop.create_datagram_endpoint(
//           lambda: EchoClientProtocol("Hello World!", on_con_lost),
//           remote_addr=('127.0.0.1', server.get_extra_info('sockname')[1]))
//       try: await on_con_lost
//       finally: transport.close(); server.close()
//   asyncio.run(main())
#include <cstdio>
#include <memory>
#include <string>

#include <greenlet/io.hpp>

namespace asyncio = greenlet::asyncio;

struct EchoServerProtocol : asyncio::DatagramProtocol {
  asyncio::DatagramTransport transport;
  void connection_made(asyncio::DatagramTransport& t) override { transport = t; }
  void datagram_received(std::string data, asyncio::address addr) override {
    std::printf("Received '%s'\n", data.c_str());
    std::printf("Send '%s'\n", data.c_str());
    transport.sendto(data, addr);
  }
};

struct EchoClientProtocol : asyncio::DatagramProtocol {
  std::string message;
  asyncio::Future<bool> on_con_lost;
  asyncio::DatagramTransport transport;
  EchoClientProtocol(std::string m, asyncio::Future<bool> f) : message(std::move(m)), on_con_lost(std::move(f)) {}
  void connection_made(asyncio::DatagramTransport& t) override {
    transport = t;
    std::printf("Send: %s\n", message.c_str());
    transport.sendto(message);
  }
  void datagram_received(std::string data, asyncio::address) override {
    std::printf("Received: %s\n", data.c_str());
    std::printf("Close the socket\n");
    transport.close();
  }
  void error_received(const asyncio::OSError& exc) override { std::printf("Error received: %s\n", exc.what()); }
  void connection_lost(std::exception_ptr) override {
    std::printf("Connection closed\n");
    on_con_lost.set_result(true);
  }
};

int main() {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto [server, server_protocol] =
        asyncio::create_datagram_endpoint<EchoServerProtocol>({.local_addr = asyncio::address{"127.0.0.1", 0}});
    auto on_con_lost = loop.create_future<bool>();
    auto [transport, protocol] = asyncio::create_datagram_endpoint(
        [&] { return std::make_shared<EchoClientProtocol>("Hello World!", on_con_lost); },
        {.remote_addr = asyncio::address{"127.0.0.1", server.get_extra_info("sockname").port}});
    try {
      asyncio::await(on_con_lost);
    } catch (...) {
      transport.close();
      server.close();
      throw;
    }
    transport.close();
    server.close();
  });
}
