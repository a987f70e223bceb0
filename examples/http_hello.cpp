// http_hello.cpp: a minimal HTTP/1.1 server answering "Hello, World!" to
// every request, with keep-alive; for load tools such as wrk:
//   http_hello [port=8080] [streams|protocol]
//   wrk -t2 -c100 -d10s http://127.0.0.1:8080/
// streams (the default): a task per connection reading request heads with
// readuntil(); protocol: an asyncio::Protocol splitting request heads out of
// data_received(), no task per connection (bench/peers/http_hello_uvloop.py
// is the same code in Python). Only listens on 127.0.0.1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <greenlet/io.hpp>

namespace asyncio = greenlet::asyncio;

namespace {

const std::string response =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "Connection: keep-alive\r\n\r\nHello, World!";

void handle(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  try {
    for (;;) {
      // Read one request's head (no bodies: GET only).
      std::string head = reader.readuntil("\r\n\r\n");
      writer.write(response);
      // Pipelined requests already buffered get answered before
      // the drain; drain only when the buffer runs high.
      writer.drain();
      if (head.find("Connection: close") != std::string::npos) break;
    }
  } catch (const asyncio::IncompleteReadError&) {
    // The client closed the connection.
  } catch (const asyncio::ConnectionError&) {
  }
  writer.close();
}

struct HelloProtocol : asyncio::Protocol {
  asyncio::Transport transport;
  std::string buffer;
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void data_received(std::string_view data) override {
    buffer.append(data);
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = buffer.find("\r\n\r\n", start);
      if (end == std::string::npos) break;
      const std::string_view head(buffer.data() + start, end + 4 - start);
      start = end + 4;
      transport.write(response);
      if (head.find("Connection: close") != std::string_view::npos) {
        transport.close();
        break;
      }
    }
    buffer.erase(0, start);
  }
  void connection_lost(std::exception_ptr) override { transport = {}; }
};

}  // namespace

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  const bool protocol = argc > 2 && std::strcmp(argv[2], "protocol") == 0;
  asyncio::event_loop::options opts;
  opts.task_stack.size = 64 * 1024;
  opts.task_stack.guard_page = false;
  asyncio::run(
      [port, protocol] {
        asyncio::Server server = protocol ? asyncio::create_server<HelloProtocol>("127.0.0.1", port)
                                          : asyncio::start_server(handle, "127.0.0.1", port);
        std::printf("HTTP on http://127.0.0.1:%d/ (%s)\n", server.port(), protocol ? "protocol" : "streams");
        std::fflush(stdout);
        server.serve_forever();
      },
      opts);
}
