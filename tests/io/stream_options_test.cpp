// stream_options_test.cpp: asyncio's socket options of start_server() and
// open_connection() (base_events.py create_server / create_connection):
// reuse_port= and reuse_address= (server_config), sock= of a listening
// socket (listening_socket{fd}) and of a connected one (connected_socket{fd}),
// and local_addr= (local_addr{host, port}).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace stream_options_test {

namespace asyncio = greenlet::asyncio;
using StreamOptions = greenlet_test::GreenletTest;

// socket_option(fd, name) is getsockopt(SOL_SOCKET, name) as an int.
int socket_option(int fd, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  ::getsockopt(fd, SOL_SOCKET, name, &value, &len);
  return value;
}

// answer_with(name) is a handler that writes name and closes.
asyncio::client_connected answer_with(std::string name) {
  return [name](asyncio::StreamReader, asyncio::StreamWriter w) {
    w.write(name);
    w.close();
  };
}

// who_answers(port) connects to 127.0.0.1:port and reads what the server says until EOF.
std::string who_answers(int port) {
  auto [r, w] = asyncio::open_connection("127.0.0.1", port);
  std::string said = r.read();
  w.close();
  return said;
}

// ---- reuse_port / reuse_address ----

TEST_F(StreamOptions, ReusePortLetsTwoServersBindOnePort) {
  asyncio::run([] {
    asyncio::Server a = asyncio::start_server(answer_with("a"), "127.0.0.1", 0, {.reuse_port = true});
    asyncio::Server b = asyncio::start_server(answer_with("b"), "127.0.0.1", a.port(), {.reuse_port = true});
    EXPECT_EQ(b.port(), a.port());
    EXPECT_EQ(socket_option(a.fileno(), SO_REUSEPORT), 1);
    EXPECT_EQ(socket_option(b.fileno(), SO_REUSEPORT), 1);
    const std::string first = who_answers(a.port());
    EXPECT_TRUE(first == "a" || first == "b") << first;
    // The kernel spreads connections by their addresses: close each in turn to see both accept.
    a.close();
    a.wait_closed();
    EXPECT_EQ(who_answers(b.port()), "b");
    asyncio::Server c = asyncio::start_server(answer_with("c"), "127.0.0.1", b.port(), {.reuse_port = true});
    b.close();
    b.wait_closed();
    EXPECT_EQ(who_answers(c.port()), "c");
    c.close();
    c.wait_closed();
  });
}

TEST_F(StreamOptions, WithoutReusePortTheSecondServerFailsNamingTheAddress) {
  asyncio::run([] {
    asyncio::Server a = asyncio::start_server(answer_with("a"), "127.0.0.1", 0, {.reuse_port = true});
    EXPECT_EQ(socket_option(a.fileno(), SO_REUSEPORT), 1);
    const std::string where = "127.0.0.1:" + std::to_string(a.port());
    try {
      asyncio::start_server(answer_with("b"), "127.0.0.1", a.port());
      ADD_FAILURE() << "a second server bound " << where << " without reuse_port";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EADDRINUSE);
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    EXPECT_EQ(who_answers(a.port()), "a");
    a.close();
    a.wait_closed();
  });
}

TEST_F(StreamOptions, ReuseAddressIsOnByDefaultAndCanBeTurnedOff) {
  asyncio::run([] {
    asyncio::Server on = asyncio::start_server(answer_with("on"), "127.0.0.1", 0);
    asyncio::Server off = asyncio::start_server(answer_with("off"), "127.0.0.1", 0, {.reuse_address = false});
    asyncio::Server set = asyncio::start_server(answer_with("set"), "127.0.0.1", 0, {.reuse_address = true});
    EXPECT_EQ(socket_option(on.fileno(), SO_REUSEADDR), 1);
    EXPECT_EQ(socket_option(off.fileno(), SO_REUSEADDR), 0);
    EXPECT_EQ(socket_option(set.fileno(), SO_REUSEADDR), 1);
    EXPECT_EQ(socket_option(on.fileno(), SO_REUSEPORT), 0);
    EXPECT_EQ(who_answers(off.port()), "off");
    for (asyncio::Server* s : {&on, &off, &set}) {
      s->close();
      s->wait_closed();
    }
  });
}

TEST_F(StreamOptions, UnixServerRefusesTheTcpReuseOptions) {
  asyncio::run([] {
    const std::string path = "/tmp/greenlet_stream_options_" + std::to_string(::getpid()) + ".sock";
    for (const asyncio::server_config& config :
         {asyncio::server_config{.reuse_address = false}, asyncio::server_config{.reuse_port = true}}) {
      try {
        asyncio::start_unix_server(answer_with("u"), path, config);
        ADD_FAILURE() << "start_unix_server() took a TCP option";
      } catch (const asyncio::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("leave them unset"), std::string::npos) << e.what();
      }
    }
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
  });
}

}  // namespace stream_options_test
