// http_hello.cpp: a minimal HTTP/1.1 server answering "Hello, World!" to
// every request, with keep-alive; for load tools such as wrk:
//   http_hello [port=8080]
//   wrk -t2 -c100 -d10s http://127.0.0.1:8080/
// Only listens on 127.0.0.1.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <greenlet/io.hpp>

namespace asyncio = greenlet::asyncio;

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  asyncio::event_loop::options opts;
  opts.task_stack.size = 64 * 1024;
  opts.task_stack.guard_page = false;
  asyncio::run(
      [port] {
        static const std::string response =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
            "Connection: keep-alive\r\n\r\nHello, World!";
        auto server = asyncio::start_server(
            [](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
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
            },
            "127.0.0.1", port);
        std::printf("HTTP on http://127.0.0.1:%d/\n", server.port());
        std::fflush(stdout);
        server.serve_forever();
      },
      opts);
}
