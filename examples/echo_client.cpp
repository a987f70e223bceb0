// echo_client.cpp: N concurrent clients, each sending lines to an echo
// server on 127.0.0.1 and checking what comes back.
//   echo_client port [clients=10] [messages=100]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

namespace asyncio = greenlet::asyncio;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s port [clients] [messages]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int clients = argc > 2 ? std::atoi(argv[2]) : 10;
  const int messages = argc > 3 ? std::atoi(argv[3]) : 100;
  int ok = asyncio::run([&] {
    std::vector<asyncio::Task<int>> tasks;
    for (int c = 0; c < clients; ++c) {
      tasks.push_back(asyncio::create_task([&, c] {
        auto [reader, writer] = asyncio::open_connection("127.0.0.1", port);
        int good = 0;
        for (int m = 0; m < messages; ++m) {
          const std::string line = "client " + std::to_string(c) + " message " + std::to_string(m) + "\n";
          writer.write(line);
          writer.drain();
          if (reader.readline() == line) ++good;
        }
        writer.close();
        writer.wait_closed();
        return good;
      }));
    }
    int total = 0;
    for (int good : asyncio::gather(tasks)) total += good;
    return total;
  });
  std::printf("%d of %d echoes correct\n", ok, clients * messages);
  return ok == clients * messages ? 0 : 1;
}
