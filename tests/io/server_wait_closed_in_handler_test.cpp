// server_wait_closed_in_handler_test.cpp: Server::wait_closed() called from one of the server's
// own connection handlers. It waits for every handler, so while the calling handler's connection is
// open it would wait for itself forever (it did; Python 3.12 does too): it raises RuntimeError
// (asyncio_errc::deadlock) saying so. Once the handler has closed its connection, waiting for the
// other handlers is legitimate and works.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <greenlet/io.hpp>

namespace {

namespace asyncio = greenlet::asyncio;

// Not GreenletTest: the death test machinery allocates in the parent.
using ServerWaitClosedInHandlerDeathTest = ::testing::Test;

void check(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  std::_Exit(1);
}

// Each scenario runs in a child process: without the fix wait_closed() waits forever, and
// alarm() ends that.

void handler_with_open_connection() {
  ::alarm(20);
  bool raised = false;
  bool deadlock = false;
  std::string what;
  std::string reply;
  asyncio::run([&] {
    asyncio::Server server;
    server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.readline();
          server.close();
          try {
            server.wait_closed();
          } catch (const asyncio::RuntimeError& e) {
            raised = true;
            deadlock = e.condition() == asyncio::asyncio_errc::deadlock;
            what = e.what();
          }
          w.write("handler went on\n");
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    w.write("hello\n");
    reply = r.readline();
    server.wait_closed();  // from the task that started it: returns once the handler is done
  });
  check(raised, "wait_closed() in a handler with its connection open did not raise");
  check(deadlock, "the RuntimeError's condition is not asyncio_errc::deadlock");
  check(what.find("own connection handlers") != std::string::npos, "the message does not say where: " + what);
  check(what.find("close this handler's writer first") != std::string::npos,
        "the message does not say what to do: " + what);
  check(reply == "handler went on\n", "the handler did not go on after the error: " + reply);
  std::fprintf(stderr, "raised: %s\n", what.c_str());
  std::_Exit(0);
}

TEST_F(ServerWaitClosedInHandlerDeathTest, HandlerWithItsConnectionOpenGetsRuntimeError) {
  EXPECT_EXIT(handler_with_open_connection(), ::testing::ExitedWithCode(0),
              "raised: Server.wait_closed\\(\\) called from one of the server's own connection handlers while its "
              "connection is open");
}

// A handler that closed its writer waits for the other handlers, and only for them: it returns
// once the other connection's handler is done.
void handler_that_closed_its_connection_waits_for_the_others() {
  ::alarm(20);
  std::vector<std::string> log;
  std::string closer_reply = "?";
  asyncio::run([&] {
    asyncio::Server server;
    server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          if (r.readline() == "closer\n") {
            w.close();
            server.close();
            server.wait_closed();
            log.push_back("closer's wait_closed() returned");
          } else {
            r.read();  // until its client closes
            log.push_back("other handler done");
            w.close();
          }
        },
        "127.0.0.1", 0);
    auto [other_r, other_w] = asyncio::open_connection("127.0.0.1", server.port());
    other_w.write("other\n");
    asyncio::sleep(0.02);  // the other handler waits in read()
    auto [closer_r, closer_w] = asyncio::open_connection("127.0.0.1", server.port());
    closer_w.write("closer\n");
    closer_reply = closer_r.read();  // EOF: the closer's handler closed its writer
    asyncio::sleep(0.05);
    check(log.empty(), "the closer's wait_closed() returned while the other handler ran");
    other_w.close();
    server.wait_closed();
    for (int i = 0; i < 100 && log.size() < 2; ++i) asyncio::sleep(0.001);
  });
  check(closer_reply.empty(), "the closer's client read bytes: " + closer_reply);
  check(log == std::vector<std::string>{"other handler done", "closer's wait_closed() returned"},
        "wrong order or missing entries (" + std::to_string(log.size()) + ")");
  std::_Exit(0);
}

TEST_F(ServerWaitClosedInHandlerDeathTest, HandlerThatClosedItsConnectionWaitsForTheOthers) {
  EXPECT_EXIT(handler_that_closed_its_connection_waits_for_the_others(), ::testing::ExitedWithCode(0), "");
}

// Dropping the reader and writer closes the connection too: the handler may then wait.
void handler_that_dropped_its_streams_waits() {
  ::alarm(20);
  bool returned = false;
  asyncio::run([&] {
    asyncio::Server server;
    server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          {
            auto gone_r = std::move(r);
            auto gone_w = std::move(w);
          }
          server.close();
          server.wait_closed();
          returned = true;
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    check(r.read().empty(), "the client read bytes");
    server.wait_closed();
  });
  check(returned, "the handler's wait_closed() did not return");
  std::_Exit(0);
}

TEST_F(ServerWaitClosedInHandlerDeathTest, HandlerThatDroppedItsStreamsWaits) {
  EXPECT_EXIT(handler_that_dropped_its_streams_waits(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
