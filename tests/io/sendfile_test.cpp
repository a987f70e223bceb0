// sendfile_test.cpp: sock_sendfile() and StreamWriter::sendfile(), after CPython 3.12's
// Lib/test/test_asyncio/test_sendfile.py (SockSendfileMixin, SendfileMixin: names cited above
// each case) and test_base_events.py's BaseLoopSockSendfileTests (argument checks, fallback).
// 127.0.0.1 only. The SSL cases have no twin (no TLS here). Deliberate difference: a pipe given
// as the file is read to its end by the fallback; asyncio's native path took a pipe's st_size, 0,
// for an empty file and sent nothing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace sendfile_test {

namespace asyncio = greenlet::asyncio;
using SockSendfileMixin = greenlet_test::GreenletTest;
using SendfileMixin = greenlet_test::GreenletTest;

// DATA: 128 KiB plus a small unaligned tail, as test_sendfile.py's.
std::string repeat(const std::string& part, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += part;
  return out;
}
const std::string DATA = repeat("SendfileBaseData", 1024 * 8 + 1);
// BUF_SIZE: small socket buffers, so that sending waits for the reader.
constexpr int BUF_SIZE = 4 * 1024;

// A file holding `data`, open read-only, already unlinked.
struct temp_file {
  int fd = -1;
  explicit temp_file(const std::string& data) {
    char path[] = "/tmp/greenlet_sendfile_XXXXXX";
    const int w = ::mkstemp(path);
    EXPECT_GE(w, 0);
    EXPECT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(w);
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
    ::unlink(path);
  }
  ~temp_file() { ::close(fd); }
  off_t tell() const { return ::lseek(fd, 0, SEEK_CUR); }
};

// A loopback TCP connection: `sock` is the client (non-blocking, small send buffer); a task of the
// loop accepts and reads everything into `received` until EOF.
struct connection {
  int listen_fd = -1;
  int sock = -1;
  std::string received;
  asyncio::Task<void> reader;

  // open() runs in a task: listen, start the reader, connect.
  void open() {
    listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::setsockopt(listen_fd, SOL_SOCKET, SO_RCVBUF, &BUF_SIZE, sizeof BUF_SIZE);
    EXPECT_EQ(::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    reader = asyncio::create_task([this] {
      const int peer = asyncio::sock_accept(listen_fd);
      for (;;) {
        std::string chunk = asyncio::sock_recv(peer, 65536);
        if (chunk.empty()) break;
        received += chunk;
      }
      ::close(peer);
    });
    sock = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    asyncio::sock_connect(sock, reinterpret_cast<sockaddr*>(&addr), len);
    ::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &BUF_SIZE, sizeof BUF_SIZE);
  }
  // finish() closes the client and waits for the reader to see EOF.
  void finish() {
    ::close(sock);
    sock = -1;
    asyncio::await(reader);
  }
  ~connection() {
    if (sock >= 0) ::close(sock);
    ::close(listen_fd);
  }
};

// test_sock_sendfile_success
TEST_F(SockSendfileMixin, test_sock_sendfile_success) {
  temp_file file(DATA);
  connection c;
  std::size_t ret = 0;
  asyncio::run([&] {
    c.open();
    ret = asyncio::sock_sendfile(c.sock, file.fd);
    c.finish();
  });
  EXPECT_EQ(ret, DATA.size());
  EXPECT_EQ(c.received, DATA);
  EXPECT_EQ(file.tell(), static_cast<off_t>(DATA.size()));
}

// test_sock_sendfile_with_offset_and_count
TEST_F(SockSendfileMixin, test_sock_sendfile_with_offset_and_count) {
  temp_file file(DATA);
  connection c;
  std::size_t ret = 0;
  asyncio::run([&] {
    c.open();
    ret = asyncio::sock_sendfile(c.sock, file.fd, 1000, 2000);
    c.finish();
  });
  EXPECT_EQ(c.received, DATA.substr(1000, 2000));
  EXPECT_EQ(file.tell(), 3000);
  EXPECT_EQ(ret, 2000u);
}

// test_sock_sendfile_zero_size
TEST_F(SockSendfileMixin, test_sock_sendfile_zero_size) {
  temp_file file(DATA);
  temp_file empty("");
  connection c;
  std::size_t ret = 1;
  asyncio::run([&] {
    c.open();
    ret = asyncio::sock_sendfile(c.sock, empty.fd, 0, std::nullopt);
    c.finish();
  });
  EXPECT_EQ(ret, 0u);
  EXPECT_EQ(c.received, "");
  EXPECT_EQ(file.tell(), 0);
  EXPECT_EQ(empty.tell(), 0);
}

// test_sock_sendfile_mix_with_regular_send
TEST_F(SockSendfileMixin, test_sock_sendfile_mix_with_regular_send) {
  const std::string buf = repeat("mix_regular_send", 4 * 1024);  // 64 KiB
  temp_file file(DATA);
  connection c;
  std::size_t ret = 0;
  asyncio::run([&] {
    c.open();
    asyncio::sock_sendall(c.sock, buf);
    ret = asyncio::sock_sendfile(c.sock, file.fd);
    asyncio::sock_sendall(c.sock, buf);
    c.finish();
  });
  EXPECT_EQ(ret, DATA.size());
  EXPECT_EQ(c.received, buf + DATA + buf);
  EXPECT_EQ(file.tell(), static_cast<off_t>(DATA.size()));
}

// test_base_events.py test_sock_sendfile_fallback: what sendfile(2) cannot send (here a pipe)
// is read and sent; a thread writes the pipe, as a producer process would.
TEST_F(SockSendfileMixin, test_sock_sendfile_fallback) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  std::thread producer([&] {
    std::size_t at = 0;
    while (at < DATA.size()) {
      const ssize_t n = ::write(pipe_fds[1], DATA.data() + at, DATA.size() - at);
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
    ::close(pipe_fds[1]);
  });
  connection c;
  std::size_t ret = 0;
  asyncio::run([&] {
    c.open();
    ret = asyncio::sock_sendfile(c.sock, pipe_fds[0]);
    c.finish();
  });
  producer.join();
  ::close(pipe_fds[0]);
  EXPECT_EQ(ret, DATA.size());
  EXPECT_EQ(c.received, DATA);
}

// test_base_events.py test_sock_sendfile_fallback_offset_and_count, on a pipe: count stops the
// reading too (the rest stays in the pipe).
TEST_F(SockSendfileMixin, test_sock_sendfile_fallback_count) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_EQ(::write(pipe_fds[1], "0123456789", 10), 10);
  connection c;
  std::size_t ret = 0;
  asyncio::run([&] {
    c.open();
    ret = asyncio::sock_sendfile(c.sock, pipe_fds[0], 0, 4);
    c.finish();
  });
  EXPECT_EQ(ret, 4u);
  EXPECT_EQ(c.received, "0123");
  char rest[16];
  EXPECT_EQ(::read(pipe_fds[0], rest, sizeof rest), 6);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// test_base_events.py test_sock_sendfile_no_fallback: with fallback off, what sendfile(2) cannot
// send is refused with SendfileNotAvailableError (a RuntimeError) before anything moves.
TEST_F(SockSendfileMixin, test_sock_sendfile_no_fallback) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_EQ(::write(pipe_fds[1], "abc", 3), 3);
  connection c;
  std::string what;
  asyncio::run([&] {
    c.open();
    try {
      asyncio::sock_sendfile(c.sock, pipe_fds[0], 0, std::nullopt, false);
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_NE(dynamic_cast<const asyncio::SendfileNotAvailableError*>(&e), nullptr);
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::sendfile_not_available);
      what = e.what();
    }
    c.finish();
  });
  EXPECT_NE(what.find("not a regular file"), std::string::npos) << what;
  EXPECT_EQ(c.received, "");
  char left[8];
  EXPECT_EQ(::read(pipe_fds[0], left, sizeof left), 3);  // nothing was read
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// test_base_events.py test_sock_sendfile_bad_args (and _check_sendfile_params): a blocking socket,
// a datagram socket, count 0 and an offset past off_t are ValueErrors; the file is untouched.
TEST_F(SockSendfileMixin, test_sock_sendfile_bad_args) {
  temp_file file(DATA);
  const auto refused = [&](int sock, std::uint64_t offset, std::optional<std::uint64_t> count) {
    std::string what = "no error";
    try {
      asyncio::sock_sendfile(sock, file.fd, offset, count);
    } catch (const asyncio::ValueError& e) {
      what = e.what();
    }
    return what;
  };
  asyncio::run([&] {
    const int blocking = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_NE(refused(blocking, 0, std::nullopt).find("the socket must be non-blocking"), std::string::npos);
    ::close(blocking);
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_EQ(refused(udp, 0, std::nullopt), "only SOCK_STREAM type sockets are supported");
    ::close(udp);
    const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_EQ(refused(tcp, 0, 0), "count must be a positive integer (got 0)");
    EXPECT_NE(refused(tcp, std::uint64_t{1} << 63, std::nullopt).find("offset must be"), std::string::npos);
    ::close(tcp);
  });
  EXPECT_EQ(file.tell(), 0);
}

// asyncio's docs: "File position is always updated, even when this method raises an error, and
// file.tell() can be used to obtain the actual number of bytes sent." A send cancelled while the
// reader is slow leaves the position at exactly what the reader then gets.
TEST_F(SockSendfileMixin, test_sock_sendfile_cancel_updates_the_file_position) {
  temp_file file(DATA);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &BUF_SIZE, sizeof BUF_SIZE);
  bool cancelled = false;
  std::string received;
  asyncio::run([&] {
    auto sender = asyncio::create_task([&] {
      try {
        asyncio::sock_sendfile(fds[0], file.fd);
      } catch (const asyncio::CancelledError&) {
        cancelled = true;
        throw;
      }
    });
    asyncio::sleep(0.05);  // nobody reads: the sender waits for room
    sender.cancel();
    try {
      asyncio::await(sender);
    } catch (const asyncio::CancelledError&) {
    }
    ::close(fds[0]);
    for (;;) {
      std::string chunk = asyncio::sock_recv(fds[1], 65536);
      if (chunk.empty()) break;
      received += chunk;
    }
  });
  ::close(fds[1]);
  EXPECT_TRUE(cancelled);
  EXPECT_GT(received.size(), 0u);
  EXPECT_LT(received.size(), DATA.size());
  EXPECT_EQ(file.tell(), static_cast<off_t>(received.size()));
  EXPECT_EQ(received, DATA.substr(0, received.size()));
}

// A server whose handler reads everything until EOF, for the StreamWriter cases.
struct stream_server {
  asyncio::Server server;
  std::string received;
  asyncio::Event done;
  void start() {
    server = asyncio::start_server(
        [this](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
          received = reader.read();
          writer.close();
          done.set();
        },
        "127.0.0.1", 0);
  }
  void stop() {
    done.wait();
    server.close();
    server.wait_closed();
  }
};

// test_sendfile
TEST_F(SendfileMixin, test_sendfile) {
  temp_file file(DATA);
  stream_server srv;
  std::size_t ret = 0;
  asyncio::run([&] {
    srv.start();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.server.port());
    ret = writer.sendfile(file.fd);
    writer.close();
    srv.stop();
  });
  EXPECT_EQ(ret, DATA.size());
  EXPECT_EQ(srv.received, DATA);
  EXPECT_EQ(file.tell(), static_cast<off_t>(DATA.size()));
}

// test_sendfile_pre_and_post_data: bytes written before go first, bytes written after follow.
TEST_F(SendfileMixin, test_sendfile_pre_and_post_data) {
  temp_file file(DATA);
  stream_server srv;
  const std::string PREFIX = repeat("PREFIX__", 1024);  // 8 KiB
  const std::string SUFFIX = repeat("--SUFFIX", 1024);  // 8 KiB
  std::size_t ret = 0;
  asyncio::run([&] {
    srv.start();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.server.port());
    const int one = BUF_SIZE;
    ::setsockopt(writer.fileno(), SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
    writer.write(repeat(PREFIX, 16));  // more than the socket takes at once: some waits in the buffer
    ret = writer.sendfile(file.fd);
    writer.write(SUFFIX);
    writer.close();
    srv.stop();
  });
  EXPECT_EQ(ret, DATA.size());
  EXPECT_EQ(srv.received, repeat(PREFIX, 16) + DATA + SUFFIX);
  EXPECT_EQ(file.tell(), static_cast<off_t>(DATA.size()));
}

// test_sendfile_partial
TEST_F(SendfileMixin, test_sendfile_partial) {
  temp_file file(DATA);
  stream_server srv;
  std::size_t ret = 0;
  asyncio::run([&] {
    srv.start();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.server.port());
    ret = writer.sendfile(file.fd, 1000, 100);
    writer.close();
    srv.stop();
  });
  EXPECT_EQ(ret, 100u);
  EXPECT_EQ(srv.received, DATA.substr(1000, 100));
  EXPECT_EQ(file.tell(), 1100);
}

// test_sendfile_for_closing_transp
TEST_F(SendfileMixin, test_sendfile_for_closing_transp) {
  temp_file file(DATA);
  stream_server srv;
  std::string what;
  asyncio::run([&] {
    srv.start();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.server.port());
    writer.close();
    try {
      writer.sendfile(file.fd);
    } catch (const asyncio::RuntimeError& e) {
      what = e.what();
    }
    srv.stop();
  });
  EXPECT_NE(what.find("is closing"), std::string::npos) << what;
  EXPECT_EQ(srv.received, "");
  EXPECT_EQ(file.tell(), 0);
}

// test_sendfile_force_unsupported_native: fallback off and a file sendfile(2) cannot send.
TEST_F(SendfileMixin, test_sendfile_force_unsupported_native) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  stream_server srv;
  bool refused = false;
  asyncio::run([&] {
    srv.start();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.server.port());
    try {
      writer.sendfile(pipe_fds[0], 0, std::nullopt, false);
    } catch (const asyncio::SendfileNotAvailableError&) {
      refused = true;
    }
    writer.close();
    srv.stop();
  });
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_TRUE(refused);
  EXPECT_EQ(srv.received, "");
}

// asyncio's transports: "unable to write; sendfile is in progress" for a write() from another
// task while the file goes; the file's bytes arrive whole.
TEST_F(SendfileMixin, write_during_sendfile_is_refused) {
  temp_file file(DATA);
  stream_server srv;
  std::string what;
  asyncio::run([&] {
    srv.start();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.server.port());
    ::setsockopt(writer.fileno(), SOL_SOCKET, SO_SNDBUF, &BUF_SIZE, sizeof BUF_SIZE);
    auto sender = asyncio::create_task([&, w = writer]() mutable { w.sendfile(file.fd); });
    asyncio::sleep(0);  // the sender starts and waits for room
    try {
      writer.write("intruder");
    } catch (const asyncio::RuntimeError& e) {
      what = e.what();
    }
    asyncio::await(sender);
    writer.write("after");
    writer.close();
    srv.stop();
  });
  EXPECT_EQ(what, "unable to write; sendfile is in progress");
  EXPECT_EQ(srv.received, DATA + "after");
}

}  // namespace sendfile_test
