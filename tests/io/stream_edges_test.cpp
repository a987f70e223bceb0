// stream_edges_test.cpp: the edges of a stream's contract where asyncio's
// behaviour is precise (CPython's Lib/asyncio/streams.py and
// selector_events.py): several tasks draining one writer, the readuntil()
// limit at its boundary, readuntil() of several separators, write() after
// write_eof(), and the text of OS errors.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using StreamEdges = greenlet_test::GreenletTest;

// Several tasks may wait in drain() on one writer (handlers sharing a
// connection): one wake-up reaches them all, as asyncio's list of drain
// waiters, and a drainer cancelled meanwhile leaves the others waiting.
TEST_F(StreamEdges, EveryTaskDrainingOneWriterWakes) {
  int woke = 0;
  bool cancelled_one_cancelled = false;
  std::size_t server_got = 0;
  asyncio::run([&] {
    asyncio::Event go;
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          go.wait();  // backpressure on the client until then
          server_got = r.read().size();
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& w = connection.second;         // not a binding: clang 14 cannot capture those
    w.write(std::string(8 << 20, 'x'));  // far more than the socket buffers hold
    std::vector<asyncio::Task<void>> drainers;
    for (int i = 0; i < 3; ++i) {
      drainers.push_back(asyncio::create_task([&w, &woke] {
        w.drain();
        ++woke;
      }));
    }
    auto cancelled = asyncio::create_task([&w] { w.drain(); });
    asyncio::sleep(0.01);  // all four wait in drain()
    ASSERT_EQ(woke, 0) << "drain() returned above the high-water mark";
    cancelled.cancel();
    try {
      asyncio::await(cancelled);
    } catch (const asyncio::CancelledError&) {
      cancelled_one_cancelled = true;
    }
    go.set();
    // A drainer nobody wakes would wait forever: bounded here.
    asyncio::wait_for([&] { asyncio::gather(drainers); }, 10.0);
    w.write_eof();
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_TRUE(cancelled_one_cancelled);
  EXPECT_EQ(woke, 3);
  EXPECT_EQ(server_got, std::size_t{8} << 20);
}

// feed(chunks) runs a server that writes each chunk, pausing between them so
// that each arrives as a read of its own, and returns the client's reader.
asyncio::StreamReader feed(std::vector<std::string> chunks, std::size_t limit, asyncio::Server& server) {
  server = asyncio::start_server(
      [chunks](asyncio::StreamReader, asyncio::StreamWriter w) {
        for (const std::string& c : chunks) {
          w.write(c);
          w.drain();
          asyncio::sleep(0.02);
        }
        w.close();
      },
      "127.0.0.1", 0);
  asyncio::stream_config config;
  config.limit = limit;
  return asyncio::open_connection("127.0.0.1", server.port(), config).first;
}

// The limit counts the bytes before the separator, as asyncio's (`isep >
// limit` raises): a line of exactly `limit` bytes and its separator is read.
TEST_F(StreamEdges, ReaduntilLimitCountsTheBytesBeforeTheSeparator) {
  asyncio::run([] {
    asyncio::Server server;
    asyncio::StreamReader r = feed({"12345\n123456\nok\n"}, 5, server);
    EXPECT_EQ(r.readline(), "12345\n");
    try {
      r.readuntil("\n");
      ADD_FAILURE() << "a 6-byte line passed a limit of 5";
    } catch (const asyncio::LimitOverrunError& e) {
      EXPECT_EQ(e.consumed(), 6u);  // where the separator starts
    }
    try {
      r.readline();  // drops "123456\n"
      ADD_FAILURE() << "readline() passed a 6-byte line with a limit of 5";
    } catch (const asyncio::ValueError& e) {  // asyncio's type and message
      EXPECT_STREQ(e.what(), "Separator is found, but chunk is longer than limit");
    }
    EXPECT_EQ(r.readline(), "ok\n");
    server.close();
    server.wait_closed();
  });
}

// Without the separator yet, asyncio looks past `limit` only by what a
// separator split across reads could need: "12345\r" with a limit of 5 waits
// for more (the "\n" may come), and "12345\r\n" is then accepted.
TEST_F(StreamEdges, ReaduntilWaitsForASeparatorSplitAcrossReadsAtTheLimit) {
  asyncio::run([] {
    asyncio::Server server;
    asyncio::StreamReader r = feed({"12345\r", "\nabcdef", "g\r\n"}, 5, server);
    EXPECT_EQ(r.readuntil("\r\n"), "12345\r\n");
    // "abcdef" is 6 bytes with no separator: past what a split "\r\n" can
    // explain (buffer + 1 - 2 = 5 is not above 5, so it waits once more).
    try {
      r.readuntil("\r\n");
      ADD_FAILURE() << "a 7-byte chunk passed a limit of 5";
    } catch (const asyncio::LimitOverrunError& e) {
      EXPECT_EQ(e.consumed(), 7u);  // "abcdefg" is 7 bytes before the separator
    }
    server.close();
    server.wait_closed();
  });
}

// readuntil() of several separators (3.13) over chunks that split lines anywhere: progress lines
// ended by "\r" or "\n" as a meter prints them; the match that ends first wins, so "\r" beats
// "\r\n" at the same start; a separator split across reads is found whole; the separators may come
// from a vector; at EOF the rest is IncompleteReadError's partial.
TEST_F(StreamEdges, ReaduntilOfSeveralSeparatorsTakesTheMatchThatEndsFirst) {
  asyncio::run([] {
    asyncio::Server server;
    asyncio::StreamReader r =
        feed({"frame=1\rfra", "me=2\rdo", "ne\n", "a\r\nb\r", "x\n", "\ny\n", "\nz"}, 64 * 1024, server);
    EXPECT_EQ(r.readuntil({"\r", "\n"}), "frame=1\r");
    EXPECT_EQ(r.readuntil({"\r", "\n"}), "frame=2\r");
    EXPECT_EQ(r.readuntil({"\r", "\n"}), "done\n");
    EXPECT_EQ(r.readuntil({"\r\n", "\r"}), "a\r");  // "\r" ends first
    EXPECT_EQ(r.readuntil({"\r\n", "\r"}), "\nb\r");
    const std::vector<std::string_view> blank_line{"\n\n", "\r\n\r\n"};
    EXPECT_EQ(r.readuntil(blank_line), "x\n\n");  // "\n" then "\n" in the next read
    EXPECT_EQ(r.readuntil(blank_line), "y\n\n");
    try {
      r.readuntil(blank_line);
      ADD_FAILURE() << "no IncompleteReadError at EOF";
    } catch (const asyncio::IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "z");
    }
    server.close();
    server.wait_closed();
  });
}

// write() after write_eof() is an error, as asyncio's transports raise:
// the bytes could only follow the FIN. The bytes written before arrive.
TEST_F(StreamEdges, WriteAfterWriteEofRaises) {
  std::string got;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          got = r.read();
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    w.write("abc");
    w.write_eof();
    try {
      w.write("def");
      ADD_FAILURE() << "write() after write_eof() was accepted";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::invalid_state);
      EXPECT_NE(std::string(e.what()).find("Cannot call write() after write_eof()"), std::string::npos) << e.what();
    }
    w.drain();  // nothing failed on the connection
    EXPECT_EQ(r.read(), "");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(got, "abc");
}

// An OS error's text names the call and the reason once ("connect to
// 127.0.0.1:1: Connection refused"), not the reason twice.
TEST_F(StreamEdges, OsErrorTextNamesTheReasonOnce) {
  asyncio::run([] {
    // A port nobody listens on: bind one, note it, close it.
    const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(probe);
    try {
      asyncio::open_connection("127.0.0.1", ntohs(addr.sin_port));
      ADD_FAILURE() << "connected to a closed port";
    } catch (const asyncio::ConnectionRefusedError& e) {
      const std::string what = e.what();
      const std::string reason = "Connection refused";
      const auto first = what.find(reason);
      ASSERT_NE(first, std::string::npos) << what;
      EXPECT_EQ(what.find(reason, first + 1), std::string::npos) << what;
    }
  });
}

// get_extra_info("peername") after close() is the address the connection
// had, as asyncio's (it was empty once the fd was closed): the server's from
// accept(), the client's from connect(), without asking the kernel first.
TEST_F(StreamEdges, PeernameOutlivesTheConnection) {
  asyncio::address seen_by_server;
  asyncio::address client_own;
  asyncio::address client_peer_after_close;
  int server_port = 0;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read();
          w.close();
          w.wait_closed();
          seen_by_server = w.get_extra_info("peername");
        },
        "127.0.0.1", 0);
    server_port = server.port();
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& w = connection.second;  // not a binding: clang 14 cannot capture those
    client_own = w.get_extra_info("sockname");
    w.close();
    w.wait_closed();
    client_peer_after_close = w.get_extra_info("peername");
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(seen_by_server.host, "127.0.0.1");
  EXPECT_EQ(seen_by_server.port, client_own.port);
  EXPECT_GT(client_own.port, 0);
  EXPECT_EQ(client_peer_after_close.host, "127.0.0.1");
  EXPECT_EQ(client_peer_after_close.port, server_port);
}

// A task asking at_eof() while another waits in a read: once the poller saw
// the peer's FIN, at_eof() reads what the socket holds, the last bytes
// included. The waiting reader must find them in the buffer, as asyncio's
// does (at_eof() there never reads). Before: readexactly() and readuntil()
// saw only the EOF and raised IncompleteReadError with the bytes buffered.
TEST_F(StreamEdges, ReadWaitingWhileAnotherTaskAsksAtEofGetsTheLastBytes) {
  std::vector<std::string> results;
  asyncio::run([&] {
    for (const std::string op : {"readexactly", "readuntil", "readline", "read"}) {
      for (int round = 0; round < 3; ++round) {
        auto server = asyncio::start_server(
            [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
              bool stop = false;
              auto asker = asyncio::create_task([&] {
                while (!stop) {
                  (void)r.at_eof();
                  asyncio::sleep(0);
                }
              });
              std::string got;
              try {
                if (op == "readexactly") got = r.readexactly(6);
                if (op == "readuntil") got = r.readuntil("\n");
                if (op == "readline") got = r.readline();
                if (op == "read") got = r.read(100);
              } catch (const asyncio::IncompleteReadError& e) {
                got = "IncompleteReadError(partial='" + e.partial() + "')";
              }
              results.push_back(op + ": " + got);
              stop = true;
              asyncio::await(asker);
              w.close();
            },
            "127.0.0.1", 0);
        auto connection = asyncio::open_connection("127.0.0.1", server.port());
        auto& w = connection.second;  // not a binding: clang 14 cannot capture those
        asyncio::sleep(0.01);         // the handler waits in its read
        w.write("hello\n");
        w.write_eof();
        asyncio::sleep(0.02);
        w.close();
        server.close();
        server.wait_closed();
      }
    }
  });
  std::vector<std::string> expected;
  for (const char* op : {"readexactly", "readuntil", "readline", "read"}) {
    for (int round = 0; round < 3; ++round) expected.push_back(std::string(op) + ": hello\n");
  }
  EXPECT_EQ(results, expected);
}

}  // namespace
