// server_handler_test.cpp: every connection of a server calls its one
// handler object, as every connection of asyncio's start_server() calls the
// one callback: a stateful handler's state is shared, a big capture is not
// copied per connection, and the handler lives as long as a connection that
// runs it.
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using ServerHandler = greenlet_test::GreenletTest;

// copy_counter counts the copies made of it.
struct copy_counter {
  int* copies;
  explicit copy_counter(int* c) : copies(c) {}
  copy_counter(const copy_counter& other) : copies(other.copies) { ++*copies; }
  copy_counter& operator=(const copy_counter&) = delete;
};

// A Python closure (or a callable object) counting its calls says 1, 2, 3.
TEST_F(ServerHandler, StatefulHandlerIsSharedByEveryConnection) {
  std::vector<std::string> lines;
  int copies = 0;
  int copies_per_connection = -1;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [n = 0, counter = copy_counter(&copies)](asyncio::StreamReader, asyncio::StreamWriter w) mutable {
          ++n;
          w.write("you are connection #" + std::to_string(n) + "\n");
          w.close();
        },
        "127.0.0.1", 0);
    const int copies_before = copies;
    for (int i = 0; i < 3; ++i) {
      auto connection = asyncio::open_connection("127.0.0.1", server.port());
      lines.push_back(connection.first.readline());
      connection.second.close();
    }
    copies_per_connection = copies - copies_before;
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(lines, (std::vector<std::string>{"you are connection #1\n", "you are connection #2\n",
                                             "you are connection #3\n"}));
  EXPECT_EQ(copies_per_connection, 0) << "the handler was copied for the connections";
}

// The server closed and dropped while a connection's handler still runs:
// the handler (and what it captured) lives until that handler returns.
TEST_F(ServerHandler, HandlerLivesWhileAConnectionRunsIt) {
  std::string reply;
  asyncio::run([&] {
    asyncio::Event server_gone;
    {
      auto server = asyncio::start_server(
          [&server_gone, greeting = std::string(1000, 'g')](asyncio::StreamReader, asyncio::StreamWriter w) {
            server_gone.wait();
            w.write(greeting);  // the capture, after the server went
            w.close();
          },
          "127.0.0.1", 0);
      auto connection = asyncio::open_connection("127.0.0.1", server.port());
      asyncio::sleep(0.01);  // the handler is running
      server.close();
      asyncio::sleep(0.01);        // its acceptor ends
      server = asyncio::Server();  // its last handle: the server's state goes
      asyncio::sleep(0.01);
      server_gone.set();
      reply = connection.first.read();
    }
  });
  EXPECT_EQ(reply, std::string(1000, 'g'));
}

}  // namespace
