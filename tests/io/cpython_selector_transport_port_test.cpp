// cpython_selector_transport_port_test.cpp: CPython's Lib/test/test_asyncio/test_selector_events.py,
// SelectorTransportTests, SelectorSocketTransportTests and
// SelectorSocketTransportBufferedProtocolTests, plus test_transports.py's
// test_flowcontrol_mixin_set_write_limits, over a real socketpair: the transport is
// connect_accepted_socket() on one end, the test reads and writes the other. The index stores
// test_selector_events.py at 02870e0630b3c7228a90c02d3d30007adf7a82af (3.6-era); the methods added
// since (test_pause_resume_reading's 3.8 form, test_pause_reading_connection_made,
// test_read_eof_received_error, test_data_received_error, test_fatal_error_custom_exception,
// test_write_eof_after_close, test_write_buffer_after_close and the BufferedProtocol class) follow
// 3.12's file.
//
// The Python tests mock the socket (send() returning 2, 0, BlockingIOError, OSError) and the
// loop's reader/writer tables; here the same situations are made for real: a partial send is the
// kernel's buffer filling (the peer not reading), "send raised" is the peer gone, and what the
// mocks inspect (_buffer, _conn_lost, readers, shutdown() calls) is what can be seen from outside:
// get_write_buffer_size(), the bytes and EOF the peer reads, the protocol's calls and their order,
// the loop's exception handler.
//
// Not ported (reason):
//   BaseSelectorEventLoopTests (the whole class): the loop's internals with a mock selector.
//   SelectorTransportTests.test__add_reader, test_ctor of both classes' mock attributes (_sock,
//     _sock_fd, _loop): internals; the twin asserts what a user sees (fileno(), connection_made).
//   test_ctor_with_waiter: create_connection's waiter is internal (it returns once connection_made ran,
//     asserted by test_ctor).
//   test_read_ready_tryagain, test_read_ready_tryagain_interrupted and the BufferedProtocol twins:
//     a recv() raising EAGAIN/EINTR cannot be made on demand with a real socket.
//   test_write_bytearray, test_write_memoryview, test_write_partial_bytearray,
//     test_write_partial_memoryview: Python buffer types (write() takes a string_view; the "hasn't been
//     mutated" part is test_write_partial: the caller's string changed after write() does not change what
//     is sent).
//   test_write_str: TypeError for a str, a compile error here.
//   test_write_sendmsg_*, test_write_ready_no_data (an internal AssertionError),
//     test_transport_close_remove_writer (the writer table), test_write_ready_tryagain (the buffer's
//     internal joining): internals.
//   SelectorSslTransportTests, SelectorSslWithoutSslTransportTests: mock ssl objects (TLS for
//   protocol transports came after this port; see tests/io/protocol_tls_test.cpp).
//   SelectorDatagramTransportTests: datagram transports (ported in the datagram port files).
//
// Deliberate differences the tests assert:
//   - test_write_exception: asyncio logs "socket.send() raised exception." after the fifth write
//     dropped once the connection is lost; there is no logger here: the writes are dropped silently.
//   - BufferedProtocol.get_buffer(sizehint) gets 256 KiB (the most one read takes), not -1.
//   - test_pause_resume_reading: the 3.8+ form (pause/resume are idempotent); the stored 3.6 file's
//     RuntimeError on a second resume_reading() is gone from asyncio too.
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace cpython_selector_transport_port {

namespace asyncio = greenlet::asyncio;
using Strings = std::vector<std::string>;

using SelectorTransportTests = greenlet_test::GreenletTest;
using SelectorSocketTransportTests = greenlet_test::GreenletTest;
using SelectorSocketTransportBufferedProtocolTests = greenlet_test::GreenletTest;
using TransportTests = greenlet_test::GreenletTest;

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

template <class E>
bool is(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

// until(pred) lets the loop run until pred() holds (bounded: a broken case fails, not hangs).
template <class Pred>
void until(Pred pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) asyncio::sleep(0.001);
  ASSERT_TRUE(pred());
}

// run_briefly() is test_utils.run_briefly() from a task: the callbacks queued now run.
void run_briefly() {
  for (int i = 0; i < 3; ++i) asyncio::sleep(0);
}

// TestProto is test_utils.make_test_protocol(asyncio.Protocol): it records each call; the hooks
// are the mocks' side_effect/return_value.
struct TestProto : asyncio::Protocol {
  asyncio::Transport transport;
  Strings calls;
  std::string received;
  std::exception_ptr lost_with;
  int lost_count = 0;
  bool keep_open = false;
  std::function<void()> on_made, on_data, on_eof, on_pause, on_resume;

  void connection_made(asyncio::Transport& t) override {
    transport = t;
    calls.push_back("connection_made");
    if (on_made) on_made();
  }
  void data_received(std::string_view data) override {
    calls.push_back("data_received");
    received.append(data);
    if (on_data) on_data();
  }
  bool eof_received() override {
    calls.push_back("eof_received");
    if (on_eof) on_eof();
    return keep_open;
  }
  void pause_writing() override {
    calls.push_back("pause_writing");
    if (on_pause) on_pause();
  }
  void resume_writing() override {
    calls.push_back("resume_writing");
    if (on_resume) on_resume();
  }
  void connection_lost(std::exception_ptr exc) override {
    calls.push_back("connection_lost");
    lost_with = exc;
    ++lost_count;
    on_made = on_data = on_eof = on_pause = on_resume = nullptr;
    transport = {};
  }
};

// TestBufferedProto is make_test_protocol(asyncio.BufferedProtocol).
struct TestBufferedProto : asyncio::BufferedProtocol {
  asyncio::Transport transport;
  Strings calls;
  std::vector<char> buf = std::vector<char>(16);
  std::string received;
  std::vector<std::size_t> hints;
  std::exception_ptr lost_with;
  bool keep_open = false;
  std::function<void()> on_get_buffer, on_updated, on_eof;
  bool empty_buffer = false;

  void connection_made(asyncio::Transport& t) override {
    transport = t;
    calls.push_back("connection_made");
  }
  std::span<char> get_buffer(std::size_t sizehint) override {
    calls.push_back("get_buffer");
    hints.push_back(sizehint);
    if (on_get_buffer) on_get_buffer();
    if (empty_buffer) return {};
    return buf;
  }
  void buffer_updated(std::size_t nbytes) override {
    calls.push_back("buffer_updated");
    received.append(buf.data(), nbytes);
    if (on_updated) on_updated();
  }
  bool eof_received() override {
    calls.push_back("eof_received");
    if (on_eof) on_eof();
    return keep_open;
  }
  void connection_lost(std::exception_ptr exc) override {
    calls.push_back("connection_lost");
    lost_with = exc;
    transport = {};
  }
};

// pair is a socketpair whose one end became the transport (connect_accepted_socket) and whose
// other end, `peer`, the test reads and writes (non-blocking).
struct pair {
  int peer = -1;
  asyncio::Transport tr;
  pair() = default;
  pair(const pair&) = delete;
  pair& operator=(const pair&) = delete;
  ~pair() {
    if (peer >= 0) ::close(peer);
  }
  void close_peer() { ::close(std::exchange(peer, -1)); }
};

template <class P>
void socket_transport(pair& p, const std::shared_ptr<P>& proto) {
  int sv[2];
  ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  p.peer = sv[1];
  asyncio::set_nonblocking(p.peer);
  p.tr = asyncio::connect_accepted_socket([&] { return proto; }, sv[0]).first;
}

// fill_kernel_buffer(fd) sends until the kernel takes no more (the peer is not reading): what
// the transport writes next is not sent at once. Returns the bytes sent.
std::size_t fill_kernel_buffer(int fd) {
  const std::string chunk(65536, 'k');
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) return total;
    total += static_cast<std::size_t>(n);
  }
}

// read_all(fd, n) reads from the peer until n bytes came (or EOF).
std::string read_exactly(int fd, std::size_t n) {
  std::string data;
  while (data.size() < n) {
    std::string more = asyncio::sock_recv(fd, n - data.size());
    if (more.empty()) break;
    data += more;
  }
  return data;
}

// read_to_eof(fd) reads from the peer until EOF.
std::string read_to_eof(int fd) {
  std::string data;
  for (;;) {
    std::string more = asyncio::sock_recv(fd, 1 << 20);
    if (more.empty()) return data;
    data += more;
  }
}

struct reports {
  Strings items;
  reports() {
    asyncio::get_running_loop().set_exception_handler(
        [this](asyncio::event_loop*, const asyncio::exception_context& c) {
          items.push_back(c.message + " | " + (c.exception ? message_of(c.exception) : std::string("-")));
        });
  }
};

// ---- SelectorTransportTests ----

// test_ctor
TEST_F(SelectorTransportTests, test_ctor) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    EXPECT_GE(p.tr.fileno(), 0);
    EXPECT_EQ(proto, p.tr.get_protocol());
    p.tr.close();
    run_briefly();
  });
}

// test_abort: abort() is force_close(None): connection_lost(None).
TEST_F(SelectorTransportTests, test_abort) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.tr.abort();
    EXPECT_TRUE(p.tr.is_closing());
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ(nullptr, proto->lost_with);
  });
}

// test_close
TEST_F(SelectorTransportTests, test_close) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.tr.close();

    EXPECT_TRUE(p.tr.is_closing());
    EXPECT_FALSE(p.tr.is_reading());  // the reader is removed
    ASSERT_EQ(1, ::send(p.peer, "x", 1, MSG_NOSIGNAL));
    p.tr.close();  // a second close changes nothing
    run_briefly();
    EXPECT_EQ(1, proto->lost_count);
    EXPECT_EQ((Strings{"connection_made", "connection_lost"}), proto->calls);  // no data_received after close()
    EXPECT_EQ(nullptr, proto->lost_with);
  });
}

// test_close_write_buffer: close() with bytes buffered: no connection_lost until they are sent.
TEST_F(SelectorTransportTests, test_close_write_buffer) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    ASSERT_EQ(4u, p.tr.get_write_buffer_size());
    p.tr.close();

    EXPECT_FALSE(p.tr.is_reading());
    run_briefly();
    EXPECT_EQ(0, proto->lost_count);

    // The peer reads: the buffered bytes go, then the connection ends, cleanly.
    const std::string got = read_to_eof(p.peer);
    EXPECT_EQ(prefill + 4, got.size());
    EXPECT_EQ("data", got.substr(got.size() - 4));
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ(nullptr, proto->lost_with);
  });
}

// test_force_close: abort() with bytes buffered drops them; a second one does nothing.
TEST_F(SelectorTransportTests, test_force_close) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("1");
    ASSERT_EQ(1u, p.tr.get_write_buffer_size());
    p.tr.abort();

    EXPECT_TRUE(p.tr.is_closing());
    EXPECT_EQ(0u, p.tr.get_write_buffer_size());
    EXPECT_FALSE(p.tr.is_reading());

    // second close should not remove reader (nor call connection_lost twice)
    p.tr.abort();
    until([&] { return proto->lost_count == 1; });
    run_briefly();
    EXPECT_EQ(1, proto->lost_count);
    EXPECT_EQ(nullptr, proto->lost_with);
    EXPECT_EQ(prefill, read_to_eof(p.peer).size());  // the "1" was dropped
  });
}

// test_fatal_error: an OSError (here the peer gone: EPIPE) closes the connection with it and is
// not reported.
TEST_F(SelectorTransportTests, test_fatal_error) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.close_peer();
    p.tr.write("data");
    until([&] { return proto->lost_count == 1; });
    ASSERT_NE(nullptr, proto->lost_with);
    EXPECT_TRUE(is<asyncio::OSError>(proto->lost_with)) << message_of(proto->lost_with);
    EXPECT_TRUE(r.items.empty()) << r.items[0];
  });
}

// test_fatal_error_custom_exception: anything else is reported with the message, and closes the
// connection with it.
TEST_F(SelectorTransportTests, test_fatal_error_custom_exception) {
  asyncio::run([] {
    reports r;
    struct MyError : std::runtime_error {
      MyError() : std::runtime_error("MyError") {}
    };
    auto proto = std::make_shared<TestProto>();
    proto->on_data = [] { throw MyError(); };
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(1, ::send(p.peer, "x", 1, MSG_NOSIGNAL));
    until([&] { return proto->lost_count == 1; });
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.data_received() call failed. | MyError", r.items[0]);
    EXPECT_TRUE(is<MyError>(proto->lost_with));
  });
}

// test_connection_lost: connection_lost(exc) gets the error; the socket is closed and the
// transport lets go of the protocol.
TEST_F(SelectorTransportTests, test_connection_lost) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    EXPECT_NE(nullptr, p.tr.get_protocol());
    // ConnectionResetError: the peer closes with bytes it did not read.
    ASSERT_EQ(1, ::send(p.tr.fileno(), "u", 1, MSG_NOSIGNAL));
    p.close_peer();
    until([&] { return proto->lost_count == 1; });
    EXPECT_TRUE(is<asyncio::ConnectionResetError>(proto->lost_with)) << message_of(proto->lost_with);
    EXPECT_EQ(-1, p.tr.fileno());
    EXPECT_EQ(nullptr, p.tr.get_protocol());
  });
}

// ---- SelectorSocketTransportTests ----

// test_ctor: connection_made(transport) has run, and the transport reads.
TEST_F(SelectorSocketTransportTests, test_ctor) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    EXPECT_EQ((Strings{"connection_made"}), proto->calls);
    EXPECT_EQ(p.tr.fileno(), proto->transport.fileno());
    EXPECT_TRUE(p.tr.is_reading());
    p.tr.close();
    run_briefly();
  });
}

// test_pause_resume_reading
TEST_F(SelectorSocketTransportTests, test_pause_resume_reading) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    run_briefly();
    EXPECT_TRUE(p.tr.is_reading());

    p.tr.pause_reading();
    p.tr.pause_reading();
    EXPECT_FALSE(p.tr.is_reading());
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    run_briefly();
    EXPECT_EQ("", proto->received);  // no reader

    p.tr.resume_reading();
    p.tr.resume_reading();
    EXPECT_TRUE(p.tr.is_reading());
    until([&] { return proto->received == "data"; });

    p.tr.close();
    EXPECT_FALSE(p.tr.is_reading());
    run_briefly();
  });
}

// test_pause_reading_connection_made: pause_reading() in connection_made() holds: no reader.
TEST_F(SelectorSocketTransportTests, test_pause_reading_connection_made) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    proto->on_made = [&] { proto->transport.pause_reading(); };
    pair p;
    int sv[2];
    ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    p.peer = sv[1];
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));  // already there when the transport starts
    p.tr = asyncio::connect_accepted_socket([&] { return proto; }, sv[0]).first;
    run_briefly();
    EXPECT_FALSE(p.tr.is_reading());
    EXPECT_EQ("", proto->received);

    p.tr.resume_reading();
    EXPECT_TRUE(p.tr.is_reading());
    until([&] { return proto->received == "data"; });

    p.tr.close();
    EXPECT_FALSE(p.tr.is_reading());
    run_briefly();
  });
}

// test_read_eof_received_error: eof_received() that raises is a fatal error (reported).
TEST_F(SelectorSocketTransportTests, test_read_eof_received_error) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestProto>();
    proto->on_eof = [] { throw std::out_of_range("LookupError"); };
    pair p;
    socket_transport(p, proto);
    ::shutdown(p.peer, SHUT_WR);
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ((Strings{"connection_made", "eof_received", "connection_lost"}), proto->calls);
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.eof_received() call failed. | LookupError", r.items[0]);
    EXPECT_TRUE(is<std::out_of_range>(proto->lost_with));
  });
}

// test_data_received_error
TEST_F(SelectorSocketTransportTests, test_data_received_error) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestProto>();
    proto->on_data = [] { throw std::out_of_range("LookupError"); };
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ("data", proto->received);
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.data_received() call failed. | LookupError", r.items[0]);
  });
}

// test_read_ready
TEST_F(SelectorSocketTransportTests, test_read_ready) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->received == "data"; });
    EXPECT_EQ((Strings{"connection_made", "data_received"}), proto->calls);
    p.tr.close();
    run_briefly();
  });
}

// test_read_ready_eof: EOF calls eof_received(), then close().
TEST_F(SelectorSocketTransportTests, test_read_ready_eof) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    ::shutdown(p.peer, SHUT_WR);
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ((Strings{"connection_made", "eof_received", "connection_lost"}), proto->calls);
    EXPECT_EQ(nullptr, proto->lost_with);
    EXPECT_EQ("", read_to_eof(p.peer));  // closed: the peer reads EOF
  });
}

// test_read_ready_eof_keep_open: eof_received() true: not closed, still writable.
TEST_F(SelectorSocketTransportTests, test_read_ready_eof_keep_open) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    proto->keep_open = true;
    pair p;
    socket_transport(p, proto);
    ::shutdown(p.peer, SHUT_WR);
    until([&] { return proto->calls.size() == 2; });
    run_briefly();
    EXPECT_EQ((Strings{"connection_made", "eof_received"}), proto->calls);
    EXPECT_FALSE(p.tr.is_closing());
    p.tr.write("after eof");
    EXPECT_EQ("after eof", read_exactly(p.peer, 9));
    p.tr.close();
    until([&] { return proto->lost_count == 1; });
  });
}

// test_read_ready_conn_reset: ConnectionResetError is force_close(err): connection_lost(err),
// not reported.
TEST_F(SelectorSocketTransportTests, test_read_ready_conn_reset) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(1, ::send(p.tr.fileno(), "u", 1, MSG_NOSIGNAL));  // unread by the peer
    p.close_peer();                                             // so its close resets
    until([&] { return proto->lost_count == 1; });
    EXPECT_TRUE(is<asyncio::ConnectionResetError>(proto->lost_with)) << message_of(proto->lost_with);
    EXPECT_TRUE(r.items.empty());
  });
}

// test_write
TEST_F(SelectorSocketTransportTests, test_write) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.tr.write("data");
    EXPECT_EQ(0u, p.tr.get_write_buffer_size());  // sent at once
    EXPECT_EQ("data", read_exactly(p.peer, 4));
    p.tr.close();
    run_briefly();
  });
}

// test_write_no_data
TEST_F(SelectorSocketTransportTests, test_write_no_data) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    ASSERT_EQ(4u, p.tr.get_write_buffer_size());
    p.tr.write("");
    EXPECT_EQ(4u, p.tr.get_write_buffer_size());
    p.tr.abort();
    run_briefly();
  });
}

// test_write_buffer: with bytes buffered, a write is buffered behind them (nothing sent).
TEST_F(SelectorSocketTransportTests, test_write_buffer) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data1");
    p.tr.write("data2");
    EXPECT_EQ(10u, p.tr.get_write_buffer_size());
    p.tr.close();
    const std::string got = read_to_eof(p.peer);
    EXPECT_EQ(prefill + 10, got.size());
    EXPECT_EQ("data1data2", got.substr(prefill));
    until([&] { return proto->lost_count == 1; });
  });
}

// test_write_partial: what the kernel does not take is buffered and sent as it drains, in order;
// the caller's bytes are copied (changing them after write() changes nothing).
TEST_F(SelectorSocketTransportTests, test_write_partial) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    std::string data(4 << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
    const std::string expected = data;
    p.tr.write(data);
    const std::size_t buffered = p.tr.get_write_buffer_size();
    EXPECT_GT(buffered, 0u);
    EXPECT_LT(buffered, data.size());
    data.assign(data.size(), 'X');
    EXPECT_EQ(expected, read_exactly(p.peer, expected.size()));
    until([&] { return p.tr.get_write_buffer_size() == 0; });
    p.tr.close();
    run_briefly();
  });
}

// test_write_partial_none, test_write_tryagain: the kernel takes nothing (EAGAIN): all buffered.
TEST_F(SelectorSocketTransportTests, test_write_tryagain) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    EXPECT_EQ(4u, p.tr.get_write_buffer_size());
    const std::string got = read_exactly(p.peer, prefill + 4);
    EXPECT_EQ("data", got.substr(prefill));
    p.tr.close();
    run_briefly();
  });
}

// test_write_exception: a send that fails is a fatal error (connection_lost gets it); later
// writes are dropped.
TEST_F(SelectorSocketTransportTests, test_write_exception) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.close_peer();
    p.tr.write("data");
    EXPECT_TRUE(p.tr.is_closing());
    EXPECT_EQ(0u, p.tr.get_write_buffer_size());
    for (int i = 0; i < 5; ++i) p.tr.write("data");  // dropped: nothing buffered, nothing raised
    EXPECT_EQ(0u, p.tr.get_write_buffer_size());
    until([&] { return proto->lost_count == 1; });
    EXPECT_TRUE(is<asyncio::BrokenPipeError>(proto->lost_with)) << message_of(proto->lost_with);
    EXPECT_TRUE(r.items.empty());
  });
}

// test_write_closing: a write after close() (nothing buffered) is dropped.
TEST_F(SelectorSocketTransportTests, test_write_closing) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.tr.close();
    p.tr.write("data");
    EXPECT_EQ(0u, p.tr.get_write_buffer_size());
    EXPECT_EQ("", read_to_eof(p.peer));
    until([&] { return proto->lost_count == 1; });
  });
}

// test_write_ready: the buffered bytes are sent once the socket drains; the writer goes.
TEST_F(SelectorSocketTransportTests, test_write_ready) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    EXPECT_EQ(prefill + 4, read_exactly(p.peer, prefill + 4).size());
    until([&] { return p.tr.get_write_buffer_size() == 0; });
    EXPECT_FALSE(p.tr.is_closing());
    p.tr.close();
    run_briefly();
  });
}

// test_write_ready_closing: closing, the last bytes sent: the socket closes and connection_lost(None).
TEST_F(SelectorSocketTransportTests, test_write_ready_closing) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    p.tr.close();
    const std::string got = read_to_eof(p.peer);
    EXPECT_EQ("data", got.substr(prefill));
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ(nullptr, proto->lost_with);
    EXPECT_EQ(-1, p.tr.fileno());
  });
}

// test_write_ready_partial: a drain that sends part leaves the rest buffered, in order.
TEST_F(SelectorSocketTransportTests, test_write_ready_partial) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    const std::string big(1 << 20, 'b');
    p.tr.write(big);
    p.tr.write("tail");
    ASSERT_EQ(big.size() + 4, p.tr.get_write_buffer_size());
    std::string got = read_exactly(p.peer, prefill + 1000);  // room for some, not all
    until([&] { return p.tr.get_write_buffer_size() < big.size() + 4; });
    EXPECT_GT(p.tr.get_write_buffer_size(), 0u);
    got += read_exactly(p.peer, big.size() + 4 - 1000);
    EXPECT_EQ(prefill + big.size() + 4, got.size());
    EXPECT_EQ(big + "tail", got.substr(prefill));
    p.tr.close();
    run_briefly();
  });
}

// test_write_ready_exception: a send failing while draining is a fatal error (OSError: not
// reported) and the buffer is dropped.
TEST_F(SelectorSocketTransportTests, test_write_ready_exception) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    ASSERT_EQ(4u, p.tr.get_write_buffer_size());
    p.close_peer();  // the writer wakes up to EPIPE/ECONNRESET
    until([&] { return proto->lost_count == 1; });
    EXPECT_TRUE(is<asyncio::OSError>(proto->lost_with));
    EXPECT_EQ(0u, p.tr.get_write_buffer_size());
    EXPECT_TRUE(r.items.empty());
  });
}

// test_write_eof: shutdown(SHUT_WR) once (the peer reads EOF), write_eof() again is a no-op.
TEST_F(SelectorSocketTransportTests, test_write_eof) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    EXPECT_TRUE(p.tr.can_write_eof());
    p.tr.write_eof();
    EXPECT_EQ("", read_to_eof(p.peer));
    p.tr.write_eof();
    EXPECT_FALSE(p.tr.is_closing());  // still reading
    ASSERT_EQ(2, ::send(p.peer, "in", 2, MSG_NOSIGNAL));
    until([&] { return proto->received == "in"; });
    EXPECT_THROW(p.tr.write("x"), asyncio::RuntimeError);
    p.tr.close();
    run_briefly();
  });
}

// test_write_eof_buffer: with bytes buffered, the shutdown waits for them.
TEST_F(SelectorSocketTransportTests, test_write_eof_buffer) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    p.tr.write_eof();
    EXPECT_EQ(4u, p.tr.get_write_buffer_size());
    const std::string got = read_to_eof(p.peer);  // all the bytes, then EOF
    EXPECT_EQ(prefill + 4, got.size());
    EXPECT_EQ("data", got.substr(prefill));
    EXPECT_FALSE(p.tr.is_closing());
    p.tr.close();
    until([&] { return proto->lost_count == 1; });
  });
}

// test_write_eof_after_close: nothing happens (no error).
TEST_F(SelectorSocketTransportTests, test_write_eof_after_close) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    p.tr.close();
    asyncio::sleep(0);
    EXPECT_NO_THROW(p.tr.write_eof());
    until([&] { return proto->lost_count == 1; });
  });
}

// test_write_buffer_after_close (gh-115514): close() while bytes are buffered and the protocol is
// paused: what resume_writing() writes meanwhile is still sent, then connection_lost.
TEST_F(SelectorSocketTransportTests, test_write_buffer_after_close) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    proto->on_resume = [&] {
      proto->transport.write("data");
      proto->on_resume = nullptr;
    };
    p.tr.set_write_buffer_limits(1);
    const std::size_t prefill = fill_kernel_buffer(p.tr.fileno());
    p.tr.write("data");
    EXPECT_EQ((Strings{"connection_made", "pause_writing"}), proto->calls);

    p.tr.close();
    run_briefly();
    // not called, we still have data in write buffer
    EXPECT_EQ(0, proto->lost_count);

    const std::string got = read_to_eof(p.peer);
    EXPECT_EQ("datadata", got.substr(prefill));
    until([&] { return proto->lost_count == 1; });
    EXPECT_EQ((Strings{"connection_made", "pause_writing", "resume_writing", "connection_lost"}), proto->calls);
  });
}

// ---- SelectorSocketTransportBufferedProtocolTests ----

// test_get_buffer_error
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_get_buffer_error) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestBufferedProto>();
    proto->on_get_buffer = [] { throw std::out_of_range("LookupError"); };
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->lost_with != nullptr; });
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "connection_lost"}), proto->calls);  // no buffer_updated
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.get_buffer() call failed. | LookupError", r.items[0]);
  });
}

// test_get_buffer_zerosized: an empty buffer is a fatal error (RuntimeError).
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_get_buffer_zerosized) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestBufferedProto>();
    proto->empty_buffer = true;
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->lost_with != nullptr; });
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "connection_lost"}), proto->calls);
    EXPECT_TRUE(is<asyncio::RuntimeError>(proto->lost_with));
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.get_buffer() call failed. | get_buffer() returned an empty buffer", r.items[0]);
  });
}

// test_proto_type_switch: set_protocol() from a Protocol to a BufferedProtocol switches how the
// next bytes are read.
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_proto_type_switch) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->received == "data"; });

    // switch protocol to a BufferedProtocol
    auto buf_proto = std::make_shared<TestBufferedProto>();
    buf_proto->buf.resize(4);
    p.tr.set_protocol(buf_proto);
    ASSERT_EQ(4, ::send(p.peer, "more", 4, MSG_NOSIGNAL));
    until([&] { return buf_proto->received == "more"; });
    EXPECT_EQ((Strings{"get_buffer", "buffer_updated"}), buf_proto->calls);
    EXPECT_EQ(256u * 1024u, buf_proto->hints.at(0));
    EXPECT_EQ("data", proto->received);
    p.tr.close();
    until([&] { return buf_proto->calls.back() == "connection_lost"; });
  });
}

// test_buffer_updated_error
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_buffer_updated_error) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestBufferedProto>();
    proto->on_updated = [] { throw std::out_of_range("LookupError"); };
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->lost_with != nullptr; });
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "buffer_updated", "connection_lost"}), proto->calls);
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.buffer_updated() call failed. | LookupError", r.items[0]);
  });
}

// test_read_eof_received_error
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_read_eof_received_error) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestBufferedProto>();
    proto->on_eof = [] { throw std::out_of_range("LookupError"); };
    pair p;
    socket_transport(p, proto);
    ::shutdown(p.peer, SHUT_WR);
    until([&] { return proto->lost_with != nullptr; });
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "eof_received", "connection_lost"}), proto->calls);
    ASSERT_EQ(1u, r.items.size());
    EXPECT_EQ("Fatal error: protocol.eof_received() call failed. | LookupError", r.items[0]);
  });
}

// test_read_ready: the bytes land in the protocol's buffer; buffer_updated(nbytes).
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_read_ready) {
  asyncio::run([] {
    auto proto = std::make_shared<TestBufferedProto>();
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(4, ::send(p.peer, "data", 4, MSG_NOSIGNAL));
    until([&] { return proto->received == "data"; });
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "buffer_updated"}), proto->calls);
    EXPECT_EQ("data", std::string(proto->buf.data(), 4));
    p.tr.close();
    run_briefly();
  });
}

// test_read_ready_eof
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_read_ready_eof) {
  asyncio::run([] {
    auto proto = std::make_shared<TestBufferedProto>();
    pair p;
    socket_transport(p, proto);
    ::shutdown(p.peer, SHUT_WR);
    until([&] { return !proto->calls.empty() && proto->calls.back() == "connection_lost"; });
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "eof_received", "connection_lost"}), proto->calls);
    EXPECT_EQ(nullptr, proto->lost_with);
  });
}

// test_read_ready_eof_keep_open
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_read_ready_eof_keep_open) {
  asyncio::run([] {
    auto proto = std::make_shared<TestBufferedProto>();
    proto->keep_open = true;
    pair p;
    socket_transport(p, proto);
    ::shutdown(p.peer, SHUT_WR);
    until([&] { return proto->calls.size() == 3; });
    run_briefly();
    EXPECT_EQ((Strings{"connection_made", "get_buffer", "eof_received"}), proto->calls);
    EXPECT_FALSE(p.tr.is_closing());
    p.tr.close();
    until([&] { return proto->calls.back() == "connection_lost"; });
  });
}

// test_read_ready_conn_reset
TEST_F(SelectorSocketTransportBufferedProtocolTests, test_read_ready_conn_reset) {
  asyncio::run([] {
    reports r;
    auto proto = std::make_shared<TestBufferedProto>();
    pair p;
    socket_transport(p, proto);
    ASSERT_EQ(1, ::send(p.tr.fileno(), "u", 1, MSG_NOSIGNAL));
    p.close_peer();
    until([&] { return proto->lost_with != nullptr; });
    EXPECT_TRUE(is<asyncio::ConnectionResetError>(proto->lost_with));
    EXPECT_TRUE(r.items.empty());
  });
}

// ---- test_transports.py ----

// test_flowcontrol_mixin_set_write_limits: ValueError for high < low; lowering the high-water mark
// under what is buffered pauses the protocol at once.
TEST_F(TransportTests, test_flowcontrol_mixin_set_write_limits) {
  asyncio::run([] {
    auto proto = std::make_shared<TestProto>();
    pair p;
    socket_transport(p, proto);
    fill_kernel_buffer(p.tr.fileno());
    p.tr.write(std::string(512, 'w'));
    ASSERT_EQ(512u, p.tr.get_write_buffer_size());
    EXPECT_EQ((Strings{"connection_made"}), proto->calls);  // not paused

    try {
      p.tr.set_write_buffer_limits(0, 1);
      ADD_FAILURE() << "no ValueError";
    } catch (const asyncio::ValueError& e) {
      EXPECT_EQ("set_write_buffer_limits(): high (0) must be >= low (1) must be >= 0", std::string(e.what()));
    }
    p.tr.set_write_buffer_limits(1024, 128);
    EXPECT_EQ((Strings{"connection_made"}), proto->calls);
    EXPECT_EQ((std::pair<std::size_t, std::size_t>{128, 1024}), p.tr.get_write_buffer_limits());
    p.tr.set_write_buffer_limits(256, 128);
    EXPECT_EQ((Strings{"connection_made", "pause_writing"}), proto->calls);
    EXPECT_EQ((std::pair<std::size_t, std::size_t>{128, 256}), p.tr.get_write_buffer_limits());
    p.tr.abort();
    run_briefly();
  });
}

}  // namespace cpython_selector_transport_port
