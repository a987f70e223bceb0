// stream_errors_test.cpp: a connection's error sticks, as asyncio's
// StreamReader.set_exception(): once a recv or send failed, every later
// read, drain() and wait_closed() raise it (an aborted transfer must not look
// complete), and drain() on a closed connection raises "Connection lost".
// Compared with Python 3.11 twins of each case.
#include <sys/socket.h>

#include <string>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using StreamErrors = greenlet_test::GreenletTest;

// reset_on_close(w): close() sends RST instead of FIN (SO_LINGER 0).
void reset_on_close(asyncio::StreamWriter& w) {
  linger l{1, 0};
  ::setsockopt(w.fileno(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

// outcome(fn) is what fn returned, or the name of what it threw.
template <class F>
std::string outcome(F&& fn) {
  try {
    return "returned '" + fn() + "'";
  } catch (const asyncio::ConnectionResetError&) {
    return "ConnectionResetError";
  } catch (const asyncio::BrokenPipeError&) {
    return "BrokenPipeError";
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
}

// The peer resets while the reader waits: the first readline() raises, and
// so does every later one (before: they returned "" as at a clean EOF).
TEST_F(StreamErrors, ReadErrorSticks) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader, asyncio::StreamWriter w) {
          asyncio::sleep(0.05);
          reset_on_close(w);
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(outcome([&] { return r.readline(); }), "ConnectionResetError") << "readline " << i;
    }
    EXPECT_EQ(outcome([&] { return r.read(10); }), "ConnectionResetError");
    EXPECT_EQ(outcome([&] { return r.readexactly(1); }), "ConnectionResetError");
    EXPECT_FALSE(r.at_eof());
    w.close();
    EXPECT_THROW(w.wait_closed(), asyncio::ConnectionResetError);
    server.close();
    server.wait_closed();
  });
}

// The peer wrote "partial" and reset; our drain() meets the reset first.
// The reads then raise it too (before: "partial", then "" as if the transfer
// had ended cleanly, since send() had taken the kernel's only report).
TEST_F(StreamErrors, WriteErrorFailsTheReads) {
  asyncio::run([] {
    auto reset = asyncio::get_running_loop().create_future<void>();
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("partial");
          w.drain();
          reset_on_close(w);
          w.close();
          reset.set_result();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    asyncio::await(reset);
    asyncio::sleep(0.02);
    w.write("x");
    EXPECT_THROW(w.drain(), asyncio::ConnectionResetError);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(outcome([&] { return r.readline(); }), "ConnectionResetError") << "readline " << i;
    }
    EXPECT_FALSE(r.at_eof());
    EXPECT_THROW(w.drain(), asyncio::ConnectionResetError);
    w.close();
    EXPECT_THROW(w.wait_closed(), asyncio::ConnectionResetError);
    server.close();
    server.wait_closed();
  });
}

// The peer closed cleanly; our writes then fail (EPIPE once its RST came
// back). As asyncio: the reads raise BrokenPipeError from then on, and
// wait_closed() raises it.
TEST_F(StreamErrors, BrokenPipeAfterThePeersCloseSticks) {
  asyncio::run([] {
    auto server =
        asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter w) { w.close(); }, "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    asyncio::sleep(0.05);
    std::string failure;  // the first drain() error
    for (int i = 0; i < 10 && failure.empty(); ++i) {
      w.write(std::string(100, 'x'));
      try {
        w.drain();
      } catch (const asyncio::BrokenPipeError&) {
        failure = "BrokenPipeError";
      } catch (const std::exception& e) {
        failure = e.what();
      }
      asyncio::sleep(0.02);
    }
    EXPECT_EQ(failure, "BrokenPipeError");
    EXPECT_EQ(outcome([&] { return r.read(10); }), "BrokenPipeError");
    EXPECT_EQ(outcome([&] { return r.read(10); }), "BrokenPipeError");
    w.close();
    EXPECT_THROW(w.wait_closed(), asyncio::BrokenPipeError);
    server.close();
    server.wait_closed();
  });
}

// drain() once the connection is closed raises ConnectionResetError
// "Connection lost", as asyncio's (before: it returned).
TEST_F(StreamErrors, DrainAfterCloseRaisesConnectionLost) {
  asyncio::run([] {
    auto server =
        asyncio::start_server([](asyncio::StreamReader r, asyncio::StreamWriter) { r.read(); }, "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& w = connection.second;  // not a binding: clang 14 cannot capture those
    w.write("bye");
    w.close();
    w.wait_closed();  // a clean close: no error
    try {
      w.drain();
      ADD_FAILURE() << "drain() after close() returned";
    } catch (const asyncio::ConnectionResetError& e) {
      EXPECT_NE(std::string(e.what()).find("Connection lost"), std::string::npos) << e.what();
    }
    server.close();
    server.wait_closed();
  });
}

// A drain() waiting while close() flushes the buffer returns when the close
// completes cleanly (asyncio's drain waiters get None then).
TEST_F(StreamErrors, DrainWaitingThroughACleanCloseReturns) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter) {
          asyncio::sleep(0.05);
          r.read();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& w = connection.second;          // not a binding: clang 14 cannot capture those
    w.write(std::string(16 << 20, 'q'));  // more than the socket takes
    auto drainer = asyncio::create_task([&] { w.drain(); });
    asyncio::sleep(0);
    w.close();
    EXPECT_NO_THROW(asyncio::await(drainer));
    EXPECT_NO_THROW(w.wait_closed());
    server.close();
    server.wait_closed();
  });
}

// A pipe's error names the call a pipe makes: write, not send. Written before wait(): once the
// loop saw the child go, its stdin is closed, and a write is dropped (drain(): ConnectionResetError).
TEST_F(StreamErrors, PipeErrorsNameWrite) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("true", {}, {.stdin_ = sp::PIPE});
    p.stdin_().write(std::string(1 << 20, 'x'));
    p.wait();
    try {
      p.stdin_().drain();
      ADD_FAILURE() << "drain() to an exited child returned";
    } catch (const asyncio::BrokenPipeError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("write", 0), 0u) << e.what();
    }
  });
}

}  // namespace
