// tcp_echo_protocol.cpp: the TCP echo server and client of asyncio's
// documentation ("TCP Echo Server" / "TCP Echo Client" with protocols), both
// in one loop, the server on a free port. It prints what its Python twin
// prints (CPython 3.11, checked), in the same order. Python twin, line for
// line (the peer's address is printed without its ephemeral port, so that the
// output is the same every run):
//
//   class EchoServerProtocol(asyncio.Protocol):
//       def connection_made(self, transport):
//           peername = transport.get_extra_info('peername')
//           print('Connection from {}'.format(peername[0]))
//           self.transport = transport
//       def data_received(self, data):
//           message = data.decode()
//           print('Data received: {!r}'.format(message))
//           print('Send: {!r}'.format(message))
//           self.transport.write(data)
//           print('Close the client socket')
//           self.transport.close()
//   class EchoClientProtocol(asyncio.Protocol):
//       def __init__(self, message, on_con_lost):
//           self.message = message; self.on_con_lost = on_con_lost
//       def connection_made(self, transport):
//           transport.write(self.message.encode())
//           print('Data sent: {!r}'.format(self.message))
//       def data_received(self, data):
//           print('Data received: {!r}'.format(data.decode()))
//       def connection_lost(self, exc):
//           print('The server closed the connection')
//           self.on_con_lost.set_result(True)
//   async def main():
//       loop = asyncio.get_running_loop()
//       server = await loop.create_server(EchoServerProtocol, '127.0.0.1', 0)
//       port = server.sockets[0].getsockname()[1]
//       on_con_lost = loop.create_future()
//       transport, protocol = await loop.create_connection(
//           lambda: EchoClientProtocol('Hello World!', on_con_lost), '127.0.0.1', port)
//       try:
//           await on_con_lost
//       finally:
//           transport.close()
//           server.close()
//   asyncio.run(main())
#include <cstdio>
#include <memory>
#include <string>

#include <greenlet/io.hpp>

namespace asyncio = greenlet::asyncio;

struct EchoServerProtocol : asyncio::Protocol {
  asyncio::Transport transport;
  void connection_made(asyncio::Transport& t) override {
    asyncio::address peername = t.get_extra_info("peername");
    std::printf("Connection from %s\n", peername.host.c_str());
    transport = t;
  }
  void data_received(std::string_view data) override {
    std::string message(data);
    std::printf("Data received: '%s'\n", message.c_str());
    std::printf("Send: '%s'\n", message.c_str());
    transport.write(data);
    std::printf("Close the client socket\n");
    transport.close();
  }
};

struct EchoClientProtocol : asyncio::Protocol {
  std::string message;
  asyncio::Future<bool> on_con_lost;
  EchoClientProtocol(std::string m, asyncio::Future<bool> f) : message(std::move(m)), on_con_lost(std::move(f)) {}
  void connection_made(asyncio::Transport& transport) override {
    transport.write(message);
    std::printf("Data sent: '%s'\n", message.c_str());
  }
  void data_received(std::string_view data) override {
    std::printf("Data received: '%.*s'\n", static_cast<int>(data.size()), data.data());
  }
  void connection_lost(std::exception_ptr) override {
    std::printf("The server closed the connection\n");
    on_con_lost.set_result(true);
  }
};

int main() {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    asyncio::Server server = asyncio::create_server<EchoServerProtocol>("127.0.0.1", 0);
    const int port = server.port();
    auto on_con_lost = loop.create_future<bool>();
    auto [transport, protocol] = asyncio::create_connection(
        [&] { return std::make_shared<EchoClientProtocol>("Hello World!", on_con_lost); }, "127.0.0.1", port);
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
