// echo_server.cpp: an echo server on 127.0.0.1 with asyncio streams; each
// connection is a task, and a read that would block switches to the others.
//   echo_server [port]    (default 8888; 0 picks a free port)
#include <cstdio>
#include <cstdlib>
#include <string>

#include <greenlet/io.hpp>

namespace asyncio = greenlet::asyncio;

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8888;
  asyncio::event_loop::options opts;
  opts.task_stack.size = 64 * 1024;  // many connections: small stacks
  opts.task_stack.guard_page = false;
  asyncio::run(
      [port] {
        auto server = asyncio::start_server(
            [](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
              for (;;) {
                std::string data = reader.read(65536);
                if (data.empty()) break;
                writer.write(data);
                writer.drain();
              }
              writer.close();
            },
            "127.0.0.1", port);
        std::printf("serving on 127.0.0.1:%d\n", server.port());
        std::fflush(stdout);
        server.serve_forever();
      },
      opts);
}
