// cpython_events_io_port_test.cpp: CPython's Lib/test/test_asyncio/test_events.py, the socket,
// pipe, pty, subprocess and signal methods of EventLoopTestsMixin and SubprocessTestsMixin, method
// by method, over loopback. Read at commit 3d9562e98e1454443da3704391afa7ed14c671b4 (the only
// version the index stores, 3.10-era; these methods are the same in 3.12's file). The loop-level
// methods are in tests/asyncio/cpython_events_port_test.cpp. The Python mixins run on several
// selector classes (epoll, poll, select, kqueue); they run once here, on the one epoll loop.
//
// Mapping: a connection or pipe with a MyProto/MyReadPipeProto/MyWritePipeProto is a stream here
// (open_connection, start_server, connect_read_pipe, connect_write_pipe) with a task doing what
// the protocol's callbacks did (data_received: a read loop counting nbytes; connection_lost: the
// stream done, a future set). loop.subprocess_exec()/subprocess_shell() with MySubprocessProtocol
// are create_subprocess_exec()/create_subprocess_shell() with PIPEs (asyncio's defaults there),
// pipe_data_received a read, transp.close() on a running child kill(). echo.py is `cat`, echo2.py
// a shell reading once (`dd bs=1024 count=1`) and writing OUT:/ERR: as it does.
// test_utils.run_test_server() (a thread serving HTTP/1.0) is a start_server() on the same loop
// answering the request; Python's blocking client sockets stay blocking sockets of the test.
//
// 35 methods ported here; the loop-level port has 21 more; not ported (reason):
//   test_create_ssl_connection, test_create_ssl_unix_connection, test_ssl_connect_accepted_socket,
//     test_create_server_ssl, test_create_unix_server_ssl, test_create_server_ssl_verify_failed,
//     test_create_unix_server_ssl_verify_failed, test_create_server_ssl_match_failed,
//     test_create_unix_server_ssl_verified, test_create_server_ssl_verified: TLS, ported with the
//     SSL test files.
//   test_create_connection_local_addr, test_create_connection_local_addr_in_use: open_connection()
//     has no local_addr.
//   test_connect_accepted_socket, test_connect_accepted_socket_ssl_timeout_for_plain_socket: there
//     is no connect_accepted_socket() (an accepted fd cannot be made a stream).
//   test_create_server_multiple_hosts_ipv4, _ipv6: mock the socket module to bind 1.2.3.4 etc.
//   test_create_unix_server_path_socket_error, test_create_server_sock: start_server() and
//     start_unix_server() take no sock=.
//   test_create_datagram_endpoint_sock: ported by that name in cpython_base_events_io_port_test.cpp
//     (the same test: a bound socket given as sock=, closed, connection_lost).
//   test_internal_fds: the self-pipe's _internal_fds/_csock/_ssock are internal.
//   test_timeout_rounding: counts calls of the internal _run_once().
//   test_subprocess_close_client_stream: the Process keeps its stdout stream until it is destroyed:
//     a StreamReader has no close() (transp.get_pipe_transport(1).close()).
//   test_subprocess_wait_no_same_group: subprocess_config has no start_new_session (and the Python
//     method holds a `yield`, so its body never runs).
//   test_subprocess_exec_invalid_args, test_subprocess_shell_invalid_args: universal_newlines,
//     bufsize and shell are keywords create_subprocess_* do not have.
//
// Deliberate differences the tests assert (docs/io.md, signals.hpp):
//   - add_signal_handler()/remove_signal_handler() throw OSError(EINVAL) for an invalid signal
//     number (asyncio: ValueError) and for SIGKILL (asyncio: RuntimeError); a name ('boom', asyncio's
//     TypeError) does not compile.
//   - Signals are sent to the loop's thread (raise(), pthread_kill() from a helper thread) where
//     Python's go to the process (os.kill(), setitimer()): a process-directed signal may be taken
//     by another thread of the test binary, which does not block it (signals.hpp's thread rule).
//   - A stream has no get_extra_info('pipe'); StreamWriter has one for 'sockname'/'peername' only.
//   - test_create_server_addr_in_use binds the first server with start_server() (no sock=);
//     test_create_server_dual_stack asks for port 0 (every address shares the port the first got)
//     instead of find_unused_port(); test_create_server_reuse_port checks only that SO_REUSEPORT
//     is off by default (server_config has no reuse_port).
//   - transp.close() on a running child (which kills it) is kill(); transp.close() once it has
//     exited has no twin (nothing to close).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

#include "cpython_test_utils.hpp"

namespace cpython_events_io_port {

namespace asyncio = greenlet::asyncio;
namespace sp = asyncio::subprocess;
using Strings = std::vector<std::string>;

using EventLoopTestsMixin = greenlet_test::GreenletTest;
using SubprocessTestsMixin = greenlet_test::GreenletTest;

using namespace cpython_test_utils;

const std::string GET_REQUEST = "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n";

// MyProto is MyBaseProto/MyProto over streams: serve(reader, writer) is its life on a connection:
// connection_made (state CONNECTED, the GET request written if `send_get`, `connected` set),
// data_received (nbytes), eof_received (EOF), connection_lost (CLOSED, `done` set) once the
// stream is closed, by the peer or by `transport.close()`.
struct MyProto {
  std::string state = "INITIAL";
  std::size_t nbytes = 0;
  asyncio::StreamWriter transport;
  asyncio::Future<void> connected;
  asyncio::Future<void> done;
  bool send_get = true;

  explicit MyProto(asyncio::event_loop& loop) : connected(loop.create_future()), done(loop.create_future()) {}

  void serve(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    if (state != "INITIAL") throw std::logic_error("state: " + state);
    transport = writer;
    state = "CONNECTED";
    if (send_get) writer.write(GET_REQUEST);
    connected.set_result();
    for (;;) {
      std::string data;
      try {
        data = reader.read(65536);
      } catch (const asyncio::OSError&) {
        break;  // connection_lost(exc)
      }
      if (data.empty()) break;
      nbytes += data.size();
    }
    if (!writer.is_closing()) {
      state = "EOF";
      writer.close();
    }
    try {
      writer.wait_closed();
    } catch (const asyncio::OSError&) {
    }
    state = "CLOSED";
    done.set_result();
  }
};

// test_reader_callback
TEST_F(EventLoopTestsMixin, test_reader_callback) {
  asyncio::event_loop loop;
  socket_pair pair;
  int& r = pair.r;
  const int w = pair.w;
  asyncio::set_nonblocking(r);
  std::string bytes_read;

  auto reader = [&] {
    char buf[1024];
    const ssize_t n = ::recv(r, buf, sizeof buf, 0);
    if (n < 0) {
      // Spurious readiness notifications are possible at least on Linux -- see man select.
      if (errno == EAGAIN) return;
      throw std::runtime_error(std::strerror(errno));
    }
    if (n > 0) {
      bytes_read.append(buf, static_cast<std::size_t>(n));
    } else {
      EXPECT_TRUE(loop.remove_reader(r));
      ::close(r);
      r = -1;
    }
  };

  loop.add_reader(r, reader);
  loop.call_soon([&] { ::send(w, "abc", 3, 0); });
  run_until(loop, [&] { return bytes_read.size() >= 3; });
  loop.call_soon([&] { ::send(w, "def", 3, 0); });
  run_until(loop, [&] { return bytes_read.size() >= 6; });
  loop.call_soon([&] {
    ::close(pair.w);
    pair.w = -1;
  });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(bytes_read, "abcdef");
  if (r >= 0) loop.remove_reader(r);
  loop.close();
}

// test_writer_callback
TEST_F(EventLoopTestsMixin, test_writer_callback) {
  asyncio::event_loop loop;
  socket_pair pair;
  asyncio::set_nonblocking(pair.w);

  const std::string data(1024, 'x');
  loop.add_writer(pair.w, [&] {
    ::send(pair.w, data.data(), data.size(), 0);
    loop.stop();
  });
  loop.run_forever();

  EXPECT_TRUE(loop.remove_writer(pair.w));
  EXPECT_FALSE(loop.remove_writer(pair.w));

  ::close(pair.w);
  pair.w = -1;
  std::string read(data.size() * 2, '\0');
  const ssize_t n = ::recv(pair.r, read.data(), read.size(), 0);
  read.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  EXPECT_EQ(read, data);
  loop.close();
}

// expect_einval(call, what) checks that call throws OSError(EINVAL) (asyncio: ValueError or
// RuntimeError, see the head).
template <class F>
void expect_einval(F call, const std::string& what) {
  try {
    call();
    ADD_FAILURE() << what << ": no exception";
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(e.code().value(), EINVAL) << what << ": " << e.what();
  }
}

// test_add_signal_handler
TEST_F(EventLoopTestsMixin, test_add_signal_handler) {
  asyncio::event_loop loop;
  int caught = 0;
  auto my_handler = [&] { ++caught; };

  // Check error behavior first.
  expect_einval([&] { asyncio::add_signal_handler(loop, NSIG + 1, my_handler); }, "add NSIG+1");
  expect_einval([&] { asyncio::remove_signal_handler(loop, NSIG + 1); }, "remove NSIG+1");
  expect_einval([&] { asyncio::add_signal_handler(loop, 0, my_handler); }, "add 0");
  expect_einval([&] { asyncio::remove_signal_handler(loop, 0); }, "remove 0");
  expect_einval([&] { asyncio::add_signal_handler(loop, -1, my_handler); }, "add -1");
  expect_einval([&] { asyncio::remove_signal_handler(loop, -1); }, "remove -1");
  expect_einval([&] { asyncio::add_signal_handler(loop, SIGKILL, my_handler); }, "add SIGKILL");
  // Removing SIGKILL doesn't raise, since we don't call signal().
  EXPECT_FALSE(asyncio::remove_signal_handler(loop, SIGKILL));
  // Now set a handler and handle it.
  asyncio::add_signal_handler(loop, SIGINT, my_handler);

  ASSERT_EQ(::raise(SIGINT), 0);
  run_until(loop, [&] { return caught != 0; });

  // Removing it should restore the default handler.
  EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGINT));
  sigset_t blocked;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &blocked);
  EXPECT_FALSE(sigismember(&blocked, SIGINT));
  struct sigaction action {};
  ::sigaction(SIGINT, nullptr, &action);
  EXPECT_EQ(action.sa_handler, SIG_DFL);
  // Removing again returns False.
  EXPECT_FALSE(asyncio::remove_signal_handler(loop, SIGINT));
  loop.close();
}

// send_later(thread, sig, delay) sends sig to `thread` after `delay` seconds, from a helper
// thread: the SIGALRM of setitimer(ITIMER_REAL, delay), aimed at the loop's thread.
std::thread send_later(pthread_t thread, int sig, double delay) {
  return std::thread([=] {
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    ::pthread_kill(thread, sig);
  });
}

// test_signal_handling_while_selecting: the signal arrives while the loop waits in epoll.
TEST_F(EventLoopTestsMixin, test_signal_handling_while_selecting) {
  asyncio::event_loop loop;
  int caught = 0;
  auto my_handler = [&] {
    ++caught;
    loop.stop();
  };

  asyncio::add_signal_handler(loop, SIGALRM, my_handler);

  std::thread alarm = send_later(::pthread_self(), SIGALRM, 0.01);  // Send SIGALRM once.
  auto guard = loop.call_later(60, [&] { loop.stop(); });
  loop.run_forever();
  alarm.join();
  EXPECT_EQ(caught, 1);
  guard.cancel();
  asyncio::remove_signal_handler(loop, SIGALRM);
  loop.close();
}

// test_signal_handling_args: the handler takes no arguments here; it is called with what it
// captured, the twin of add_signal_handler(sig, handler, *args).
TEST_F(EventLoopTestsMixin, test_signal_handling_args) {
  asyncio::event_loop loop;
  const std::vector<int> some_args = {42};
  int caught = 0;
  auto my_handler = [&](std::vector<int> args) {
    ++caught;
    EXPECT_EQ(args, some_args);
    loop.stop();
  };

  asyncio::add_signal_handler(loop, SIGALRM, [&, args = some_args] { my_handler(args); });

  std::thread alarm = send_later(::pthread_self(), SIGALRM, 0.1);  // Send SIGALRM once.
  auto guard = loop.call_later(60, [&] { loop.stop(); });
  loop.run_forever();
  alarm.join();
  EXPECT_EQ(caught, 1);
  guard.cancel();
  asyncio::remove_signal_handler(loop, SIGALRM);
  loop.close();
}

// _basetest_create_connection: the connection's protocol writes the request, counts the answer
// until the server closes.
void basetest_create_connection(asyncio::event_loop& loop, asyncio::StreamReader reader, asyncio::StreamWriter writer,
                                bool check_sockname = true) {
  auto pr = std::make_shared<MyProto>(loop);
  auto task = loop.create_task([pr, reader, writer] { pr->serve(reader, writer); });
  loop.run_until_complete(pr->connected);
  EXPECT_TRUE(pr->transport.fileno() == writer.fileno());
  if (check_sockname) {
    EXPECT_NE(writer.get_extra_info("sockname"), asyncio::address{});
  }
  loop.run_until_complete(pr->done);
  EXPECT_GT(pr->nbytes, 0u);
  loop.run_until_complete(task);
}

// test_create_connection
TEST_F(EventLoopTestsMixin, test_create_connection) {
  asyncio::event_loop loop;
  asyncio::Server httpd = loop.run_until_complete([] { return http_server(); });
  auto [reader, writer] = loop.run_until_complete([&] { return asyncio::open_connection("127.0.0.1", httpd.port()); });
  basetest_create_connection(loop, reader, writer);
  httpd.close();
  loop.run_until_complete([&] { httpd.wait_closed(); });
  loop.close();
}

// test_create_unix_connection
TEST_F(EventLoopTestsMixin, test_create_unix_connection) {
  asyncio::event_loop loop;
  unix_socket_path path;
  asyncio::Server httpd = loop.run_until_complete([&] { return http_server(path.path); });
  auto [reader, writer] = loop.run_until_complete([&] { return asyncio::open_unix_connection(path.path); });
  // An unnamed Unix socket's sockname is '' in Python (not None): {"", 0} here.
  EXPECT_EQ(writer.get_extra_info("sockname"), asyncio::address{});
  basetest_create_connection(loop, reader, writer, false);
  httpd.close();
  loop.run_until_complete([&] { httpd.wait_closed(); });
  loop.close();
}

// serve_with(proto) is `lambda: proto` as a server's protocol factory.
asyncio::client_connected serve_with(std::shared_ptr<MyProto> proto) {
  return [proto](asyncio::StreamReader r, asyncio::StreamWriter w) { proto->serve(r, w); };
}

// test_create_server
TEST_F(EventLoopTestsMixin, test_create_server) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyProto>(loop);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::start_server(serve_with(proto), "0.0.0.0", 0); });
  ASSERT_EQ(server.sockets().size(), 1u);
  const int sock = server.sockets()[0];
  auto [host, port] = sockname(sock);
  EXPECT_EQ(host, "0.0.0.0");
  const int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ASSERT_EQ(::send(client, "xxx", 3, 0), 3);

  loop.run_until_complete(proto->connected);
  EXPECT_EQ("CONNECTED", proto->state);

  run_until(loop, [&] { return proto->nbytes > 0; });
  EXPECT_EQ(3u, proto->nbytes);

  // extra info is available
  EXPECT_NE(proto->transport.get_extra_info("sockname"), asyncio::address{});
  EXPECT_EQ("127.0.0.1", proto->transport.get_extra_info("peername").host);

  // close connection
  proto->transport.close();
  loop.run_until_complete(proto->done);

  EXPECT_EQ("CLOSED", proto->state);

  // the client socket must be closed after to avoid ECONNRESET upon recv()/send() on the serving
  // socket
  ::close(client);

  // close server
  server.close();
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// test_create_server_reuse_port: the first half (SO_REUSEPORT off by default); server_config has
// no reuse_port for the second.
TEST_F(EventLoopTestsMixin, test_create_server_reuse_port) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyProto>(loop);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::start_server(serve_with(proto), "0.0.0.0", 0); });
  ASSERT_EQ(server.sockets().size(), 1u);
  const int sock = server.sockets()[0];
  int value = -1;
  socklen_t len = sizeof value;
  ASSERT_EQ(::getsockopt(sock, SOL_SOCKET, SO_REUSEPORT, &value, &len), 0);
  EXPECT_FALSE(value);
  server.close();

  run_briefly(loop);
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// test_create_unix_server
TEST_F(EventLoopTestsMixin, test_create_unix_server) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyProto>(loop);
  unix_socket_path path;
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::start_unix_server(serve_with(proto), path.path); });
  EXPECT_EQ(server.sockets().size(), 1u);

  const int client = unix_connect(path.path);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ASSERT_EQ(::send(client, "xxx", 3, 0), 3);

  loop.run_until_complete(proto->connected);
  EXPECT_EQ("CONNECTED", proto->state);
  run_until(loop, [&] { return proto->nbytes > 0; });
  EXPECT_EQ(3u, proto->nbytes);

  // close connection
  proto->transport.close();
  loop.run_until_complete(proto->done);

  EXPECT_EQ("CLOSED", proto->state);

  // the client socket must be closed after to avoid ECONNRESET upon recv()/send() on the serving
  // socket
  ::close(client);

  // close server
  server.close();
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// test_create_server_addr_in_use
TEST_F(EventLoopTestsMixin, test_create_server_addr_in_use) {
  asyncio::event_loop loop;
  auto ignore = [](asyncio::StreamReader, asyncio::StreamWriter) {};
  asyncio::Server server = loop.run_until_complete([&] { return asyncio::start_server(ignore, "0.0.0.0", 0); });
  auto [host, port] = sockname(server.sockets()[0]);

  try {
    loop.run_until_complete([&, host = host, port = port] { return asyncio::start_server(ignore, host, port); });
    ADD_FAILURE() << "no OSError";
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
  }

  server.close();
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// test_create_server_dual_stack: host=None is "" here (0.0.0.0 and ::).
TEST_F(EventLoopTestsMixin, test_create_server_dual_stack) {
  asyncio::event_loop loop;
  std::shared_ptr<MyProto> f_proto;
  auto factory = [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
    auto proto = f_proto;
    proto->send_get = false;
    proto->serve(r, w);
  };
  f_proto = std::make_shared<MyProto>(loop);
  asyncio::Server server = loop.run_until_complete([&] { return asyncio::start_server(factory, "", 0); });
  const int port = server.port();

  int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ASSERT_EQ(::send(client, "xxx", 3, 0), 3);
  loop.run_until_complete(f_proto->connected);
  f_proto->transport.close();
  loop.run_until_complete(f_proto->done);
  ::close(client);

  f_proto = std::make_shared<MyProto>(loop);
  client = blocking_connect(AF_INET6, "::1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ASSERT_EQ(::send(client, "xxx", 3, 0), 3);
  loop.run_until_complete(f_proto->connected);
  f_proto->transport.close();
  loop.run_until_complete(f_proto->done);
  ::close(client);

  server.close();
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// test_server_close
TEST_F(EventLoopTestsMixin, test_server_close) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyProto>(loop);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::start_server(serve_with(proto), "0.0.0.0", 0); });
  auto [host, port] = sockname(server.sockets()[0]);

  int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ::send(client, "xxx", 3, 0);
  ::close(client);

  server.close();

  client = blocking_connect(AF_INET, "127.0.0.1", port);
  EXPECT_EQ(client, -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  if (client >= 0) ::close(client);
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// MyDatagramProto
struct MyDatagramProto : asyncio::DatagramProtocol {
  std::string state = "INITIAL";
  std::size_t nbytes = 0;
  asyncio::DatagramTransport transport;
  std::optional<asyncio::Future<void>> done;

  explicit MyDatagramProto(asyncio::event_loop* loop = nullptr) {
    if (loop != nullptr) done = loop->create_future();
  }
  void assert_state(const std::string& expected) const {
    if (state != expected) throw std::logic_error("state: " + state + ", expected: " + expected);
  }
  void connection_made(asyncio::DatagramTransport& t) override {
    transport = t;
    assert_state("INITIAL");
    state = "INITIALIZED";
  }
  void datagram_received(std::string data, asyncio::address) override {
    assert_state("INITIALIZED");
    nbytes += data.size();
  }
  void error_received(const asyncio::OSError&) override { assert_state("INITIALIZED"); }
  void connection_lost(std::exception_ptr) override {
    assert_state("INITIALIZED");
    state = "CLOSED";
    if (done) done->set_result();
  }
};

// TestMyDatagramProto answers each datagram with "resp:" + data.
struct TestMyDatagramProto : MyDatagramProto {
  using MyDatagramProto::MyDatagramProto;
  void datagram_received(std::string data, asyncio::address addr) override {
    MyDatagramProto::datagram_received(data, addr);
    transport.sendto("resp:" + data, addr);
  }
};

// _test_create_datagram_endpoint
void test_create_datagram_endpoint(asyncio::address local_addr, int family) {
  asyncio::event_loop loop;
  auto server_conn = loop.run_until_complete([&] {
    return asyncio::create_datagram_endpoint([&] { return std::make_shared<TestMyDatagramProto>(&loop); },
                                             {.local_addr = local_addr, .family = family});
  });
  auto& s_transport = server_conn.first;
  auto& server = server_conn.second;
  auto [host, port] = s_transport.get_extra_info("sockname");

  EXPECT_TRUE(s_transport);
  EXPECT_EQ("INITIALIZED", server->state);
  EXPECT_EQ(server->transport.fileno(), s_transport.fileno());

  auto client_conn = loop.run_until_complete([&, host = host, port = port] {
    return asyncio::create_datagram_endpoint([&] { return std::make_shared<MyDatagramProto>(&loop); },
                                             {.remote_addr = asyncio::address{host, port}});
  });
  auto& transport = client_conn.first;
  auto& client = client_conn.second;

  EXPECT_TRUE(transport);
  EXPECT_EQ("INITIALIZED", client->state);
  EXPECT_EQ(client->transport.fileno(), transport.fileno());

  transport.sendto("xxx");
  run_until(loop, [&] { return server->nbytes != 0; });
  EXPECT_EQ(3u, server->nbytes);
  run_until(loop, [&] { return client->nbytes != 0; });

  // received
  EXPECT_EQ(8u, client->nbytes);

  // extra info is available
  EXPECT_NE(transport.get_extra_info("sockname"), asyncio::address{});

  // close connection
  transport.close();
  loop.run_until_complete(*client->done);
  EXPECT_EQ("CLOSED", client->state);
  server->transport.close();
  loop.run_until_complete(*server->done);
  loop.close();
}

// test_create_datagram_endpoint
TEST_F(EventLoopTestsMixin, test_create_datagram_endpoint) { test_create_datagram_endpoint({"127.0.0.1", 0}, AF_INET); }

// test_create_datagram_endpoint_ipv6
TEST_F(EventLoopTestsMixin, test_create_datagram_endpoint_ipv6) { test_create_datagram_endpoint({"::1", 0}, AF_INET6); }

// MyReadPipeProto over a StreamReader: read_pipe(reader) is its life (CONNECTED, nbytes as data
// arrives, EOF, CLOSED once the pipe ends, with EOF added if it was missed, as connection_lost()
// does for an error such as a pty's EIO).
struct MyReadPipeProto {
  Strings state = {"INITIAL"};
  std::size_t nbytes = 0;
  asyncio::Future<void> done;

  explicit MyReadPipeProto(asyncio::event_loop& loop) : done(loop.create_future()) {}

  void connection_made() {
    if (state != Strings{"INITIAL"}) throw std::logic_error("not INITIAL");
    state.push_back("CONNECTED");
  }
  void read_pipe(asyncio::StreamReader reader) {
    try {
      for (;;) {
        std::string data = reader.read(1024);
        if (data.empty()) {
          state.push_back("EOF");
          break;
        }
        nbytes += data.size();
      }
    } catch (const asyncio::OSError&) {
    }
    if (state.back() != "EOF") state.push_back("EOF");  // It is okay if EOF is missed.
    state.push_back("CLOSED");
    done.set_result();
  }
};

// test_read_pipe
TEST_F(EventLoopTestsMixin, test_read_pipe) {
  asyncio::event_loop loop;
  MyReadPipeProto proto(loop);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const int wpipe = p[1];

  asyncio::StreamReader reader = loop.run_until_complete([&] {
    auto r = asyncio::connect_read_pipe(p[0]);
    proto.connection_made();
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto.state);
    EXPECT_EQ(0u, proto.nbytes);
    return r;
  });
  auto task = loop.create_task([&proto, reader] { proto.read_pipe(reader); });

  ASSERT_EQ(::write(wpipe, "1", 1), 1);
  run_until(loop, [&] { return proto.nbytes >= 1; });
  EXPECT_EQ(1u, proto.nbytes);

  ASSERT_EQ(::write(wpipe, "2345", 4), 4);
  run_until(loop, [&] { return proto.nbytes >= 5; });
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto.state);
  EXPECT_EQ(5u, proto.nbytes);

  ::close(wpipe);
  loop.run_until_complete(proto.done);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), proto.state);
  loop.run_until_complete(task);
  loop.close();
}

// test_unclosed_pipe_transport: the loop closed with both pipe streams still open; their repr()
// still works and shows an open transport (not "closed"), and dropping them afterwards is safe.
TEST_F(EventLoopTestsMixin, test_unclosed_pipe_transport) {
  std::string read_repr;
  std::string write_repr;
  {
    asyncio::event_loop loop;
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);

    // Run and close the loop without closing the transports
    auto [read_transport, write_transport] = loop.run_until_complete(
        [&] { return std::make_pair(asyncio::connect_read_pipe(p[0]), asyncio::connect_write_pipe(p[1])); });
    loop.close();

    read_repr = read_transport.repr();
    write_repr = write_transport.repr();
  }
  EXPECT_TRUE(contains(read_repr, "_UnixPipeTransport fd=")) << read_repr;
  EXPECT_FALSE(contains(read_repr, "closed")) << read_repr;
  EXPECT_TRUE(contains(write_repr, "_UnixPipeTransport fd=")) << write_repr;
  EXPECT_FALSE(contains(write_repr, "closed")) << write_repr;
}

// test_read_pty_output: proto.transport.close() is the end of the read loop: the slave closed, the
// master's read ends (EOF, or EIO as Linux answers, the error connection_lost gets).
TEST_F(EventLoopTestsMixin, test_read_pty_output) {
  asyncio::event_loop loop;
  MyReadPipeProto proto(loop);
  int master = -1;
  int slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  struct termios tio {};
  ::tcgetattr(slave, &tio);
  ::cfmakeraw(&tio);  // Python's io.open(master, 'rb', 0) reads the bytes as written: no echo, no CRLF
  ::tcsetattr(slave, TCSANOW, &tio);

  asyncio::StreamReader reader = loop.run_until_complete([&] {
    auto r = asyncio::connect_read_pipe(master);
    proto.connection_made();
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto.state);
    EXPECT_EQ(0u, proto.nbytes);
    return r;
  });
  auto task = loop.create_task([&proto, reader] { proto.read_pipe(reader); });

  ASSERT_EQ(::write(slave, "1", 1), 1);
  run_until(loop, [&] { return proto.nbytes != 0; });
  EXPECT_EQ(1u, proto.nbytes);

  ASSERT_EQ(::write(slave, "2345", 4), 4);
  run_until(loop, [&] { return proto.nbytes >= 5; });
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto.state);
  EXPECT_EQ(5u, proto.nbytes);

  ::close(slave);
  loop.run_until_complete(proto.done);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), proto.state);
  loop.run_until_complete(task);
  loop.close();
}

// MyWritePipeProto over a StreamWriter: CONNECTED once connected, CLOSED once wait_closed()
// returns after close() (connection_lost).
struct MyWritePipeProto {
  std::string state = "INITIAL";
  asyncio::StreamWriter transport;
  asyncio::Future<void> done;

  explicit MyWritePipeProto(asyncio::event_loop& loop) : done(loop.create_future()) {}

  void connection_made(asyncio::StreamWriter t) {
    transport = t;
    if (state != "INITIAL") throw std::logic_error("state: " + state);
    state = "CONNECTED";
  }
  // close() is proto.transport.close() and the loop reaching connection_lost().
  void close() {
    transport.close();
    try {
      transport.wait_closed();
    } catch (const asyncio::OSError&) {
    }
    state = "CLOSED";
    done.set_result();
  }
};

// reader(fd, data) is the test's reader(data): what a non-blocking read of fd brings, appended.
std::size_t read_into(int fd, std::string& data) {
  char chunk[1024];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n > 0) data.append(chunk, static_cast<std::size_t>(n));
  return data.size();
}

// test_write_pipe
TEST_F(EventLoopTestsMixin, test_write_pipe) {
  asyncio::event_loop loop;
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const int rpipe = p[0];
  asyncio::set_nonblocking(rpipe);

  MyWritePipeProto proto(loop);
  asyncio::StreamWriter transport = loop.run_until_complete([&] { return asyncio::connect_write_pipe(p[1]); });
  proto.connection_made(transport);
  EXPECT_EQ("CONNECTED", proto.state);

  transport.write("1");

  std::string data;
  run_until(loop, [&] { return read_into(rpipe, data) >= 1; });
  EXPECT_EQ("1", data);

  transport.write("2345");
  run_until(loop, [&] { return read_into(rpipe, data) >= 5; });
  EXPECT_EQ("12345", data);
  EXPECT_EQ("CONNECTED", proto.state);

  ::close(rpipe);

  // close connection
  loop.run_until_complete([&] { proto.close(); });
  EXPECT_EQ("CLOSED", proto.state);
  loop.close();
}

// test_write_pipe_disconnect_on_close: the reader end goes away; the write transport notices
// without a write and closes (connection_lost): here the writer would be is_closing() and its
// wait_closed() return.
TEST_F(EventLoopTestsMixin, test_write_pipe_disconnect_on_close) {
  asyncio::event_loop loop;
  socket_pair pair;
  asyncio::set_nonblocking(pair.r);

  MyWritePipeProto proto(loop);
  const int wsock = pair.w;
  pair.w = -1;  // detach(): owned by the writer from now on
  asyncio::StreamWriter transport = loop.run_until_complete([&] { return asyncio::connect_write_pipe(wsock); });
  proto.connection_made(transport);
  EXPECT_EQ("CONNECTED", proto.state);

  transport.write("1");
  std::string data = loop.run_until_complete([&] { return asyncio::sock_recv(pair.r, 1024); });
  EXPECT_EQ("1", data);

  ::close(pair.r);
  pair.r = -1;

  loop.run_until_complete([&] {
    transport.wait_closed();
    proto.state = "CLOSED";
  });
  EXPECT_TRUE(transport.is_closing());
  EXPECT_EQ("CLOSED", proto.state);
  loop.close();
}

// test_write_pty
TEST_F(EventLoopTestsMixin, test_write_pty) {
  asyncio::event_loop loop;
  int master = -1;
  int slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  asyncio::set_nonblocking(master);

  MyWritePipeProto proto(loop);
  asyncio::StreamWriter transport = loop.run_until_complete([&] { return asyncio::connect_write_pipe(slave); });
  proto.connection_made(transport);
  EXPECT_EQ("CONNECTED", proto.state);

  transport.write("1");

  std::string data;
  run_until(
      loop, [&] { return read_into(master, data) >= 1; }, 30);
  EXPECT_EQ("1", data);

  transport.write("2345");
  run_until(
      loop, [&] { return read_into(master, data) >= 5; }, 30);
  EXPECT_EQ("12345", data);
  EXPECT_EQ("CONNECTED", proto.state);

  ::close(master);

  // close connection
  loop.run_until_complete([&] { proto.close(); });
  EXPECT_EQ("CLOSED", proto.state);
  loop.close();
}

// test_bidirectional_pty
TEST_F(EventLoopTestsMixin, test_bidirectional_pty) {
  asyncio::event_loop loop;
  int master = -1;
  int read_slave = -1;
  ASSERT_EQ(::openpty(&master, &read_slave, nullptr, nullptr, nullptr), 0);
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(read_slave, F_SETFD, FD_CLOEXEC);
  const int write_slave = ::fcntl(read_slave, F_DUPFD_CLOEXEC, 0);
  struct termios tio {};
  ::tcgetattr(read_slave, &tio);
  ::cfmakeraw(&tio);  // tty.setraw(read_slave)
  ::tcsetattr(read_slave, TCSAFLUSH, &tio);
  asyncio::set_nonblocking(master);

  MyReadPipeProto read_proto(loop);
  asyncio::StreamReader read_transport =
      loop.run_until_complete([&] { return asyncio::connect_read_pipe(read_slave); });
  read_proto.connection_made();
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto.state);
  EXPECT_EQ(0u, read_proto.nbytes);
  auto read_task = loop.create_task([&read_proto, read_transport] { read_proto.read_pipe(read_transport); });

  MyWritePipeProto write_proto(loop);
  asyncio::StreamWriter write_transport =
      loop.run_until_complete([&] { return asyncio::connect_write_pipe(write_slave); });
  write_proto.connection_made(write_transport);
  EXPECT_EQ("CONNECTED", write_proto.state);

  std::string data;
  write_transport.write("1");
  run_until(
      loop, [&] { return read_into(master, data) >= 1; }, 30);
  EXPECT_EQ("1", data);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto.state);
  EXPECT_EQ("CONNECTED", write_proto.state);

  ASSERT_EQ(::write(master, "a", 1), 1);
  run_until(
      loop, [&] { return read_proto.nbytes >= 1; }, 30);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto.state);
  EXPECT_EQ(1u, read_proto.nbytes);
  EXPECT_EQ("CONNECTED", write_proto.state);

  write_transport.write("2345");
  run_until(
      loop, [&] { return read_into(master, data) >= 5; }, 30);
  EXPECT_EQ("12345", data);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto.state);
  EXPECT_EQ("CONNECTED", write_proto.state);

  ASSERT_EQ(::write(master, "bcde", 4), 4);
  run_until(
      loop, [&] { return read_proto.nbytes >= 5; }, 30);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto.state);
  EXPECT_EQ(5u, read_proto.nbytes);
  EXPECT_EQ("CONNECTED", write_proto.state);

  ::close(master);

  // read_transport.close(): the read loop ends with the master gone (EOF or EIO).
  loop.run_until_complete(read_proto.done);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), read_proto.state);
  loop.run_until_complete(read_task);

  loop.run_until_complete([&] { write_proto.close(); });
  EXPECT_EQ("CLOSED", write_proto.state);
  loop.close();
}

// test_prompt_cancellation: the elapsed-time bound (< 0.1 s) is wall-clock and not asserted; the
// ov (overlapped, Windows) and _stop_serving parts have no twin.
TEST_F(EventLoopTestsMixin, test_prompt_cancellation) {
  asyncio::event_loop loop;
  socket_pair pair;
  asyncio::set_nonblocking(pair.r);
  const int r = pair.r;
  auto f = loop.create_task([r] { return asyncio::sock_recv(r, 1); });

  auto main = [&]() -> std::string {
    std::string res;
    try {
      loop.call_soon([&] { f.cancel(); });
      asyncio::await(f);
      res = "none";
    } catch (const asyncio::CancelledError&) {
      res = "cancelled";
    }
    loop.stop();
    return res;
  };

  auto t = loop.create_task(main);
  loop.run_forever();

  EXPECT_EQ(t.result(), "cancelled");
  EXPECT_THROW(f.result(), asyncio::CancelledError);
  loop.close();
}

// test_remove_fds_after_closing
TEST_F(EventLoopTestsMixin, test_remove_fds_after_closing) {
  asyncio::event_loop loop;
  auto callback = [] {};
  socket_pair pair;
  loop.add_reader(pair.r, callback);
  loop.add_writer(pair.w, callback);
  loop.close();
  EXPECT_FALSE(loop.remove_reader(pair.r));
  EXPECT_FALSE(loop.remove_writer(pair.w));
}

// test_add_fds_after_closing
TEST_F(EventLoopTestsMixin, test_add_fds_after_closing) {
  asyncio::event_loop loop;
  auto callback = [] {};
  socket_pair pair;
  loop.close();
  EXPECT_THROW(loop.add_reader(pair.r, callback), asyncio::RuntimeError);
  EXPECT_THROW(loop.add_writer(pair.w, callback), asyncio::RuntimeError);
}

// ---- SubprocessTestsMixin ----

const asyncio::subprocess_config ALL_PIPES = {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE};

// echo.py: copies its input to its output.
asyncio::Process spawn_echo() { return asyncio::create_subprocess_exec("cat", {}, ALL_PIPES); }

// echo2.py: one read of its input, written back as OUT:<data> to stdout and ERR:<data> to stderr.
asyncio::Process spawn_echo2(const asyncio::subprocess_config& config = ALL_PIPES) {
  return asyncio::create_subprocess_exec(
      "/bin/sh", {"-c", "d=$(dd bs=1024 count=1 2>/dev/null); printf 'OUT:%s' \"$d\"; printf 'ERR:%s' \"$d\" >&2"},
      config);
}

// test_subprocess_exec
TEST_F(SubprocessTestsMixin, test_subprocess_exec) {
  asyncio::run([] {
    auto transp = spawn_echo();

    asyncio::StreamWriter& stdin_ = transp.stdin_();
    stdin_.write("Python The Winner");
    std::string data = transp.stdout_().readexactly(17);
    transp.kill();  // transp.close()
    EXPECT_EQ(transp.wait(), -SIGKILL);
    EXPECT_EQ("Python The Winner", data);
  });
}

// test_subprocess_interactive
TEST_F(SubprocessTestsMixin, test_subprocess_interactive) {
  asyncio::run([] {
    auto transp = spawn_echo();

    asyncio::StreamWriter& stdin_ = transp.stdin_();
    stdin_.write("Python ");
    std::string data = transp.stdout_().read(1024);
    EXPECT_EQ("Python ", data);

    stdin_.write("The Winner");
    data += transp.stdout_().readexactly(10);
    EXPECT_EQ("Python The Winner", data);

    transp.kill();  // transp.close()
    EXPECT_EQ(transp.wait(), -SIGKILL);
  });
}

// test_subprocess_shell: every pipe disconnected (stdout and stderr at EOF) once the child is done.
TEST_F(SubprocessTestsMixin, test_subprocess_shell) {
  asyncio::run([] {
    auto transp = asyncio::create_subprocess_shell("echo Python", ALL_PIPES);

    transp.stdin_().close();
    std::string out = transp.stdout_().read();
    std::string err = transp.stderr_().read();
    EXPECT_EQ(0, transp.wait());
    EXPECT_TRUE(transp.stdin_().is_closing());
    EXPECT_TRUE(transp.stdout_().at_eof());
    EXPECT_TRUE(transp.stderr_().at_eof());
    EXPECT_EQ(out, "Python\n");
    EXPECT_EQ(err, "");
  });
}

// test_subprocess_exitcode: stdin/stdout/stderr=None is the default (inherit).
TEST_F(SubprocessTestsMixin, test_subprocess_exitcode) {
  asyncio::run([] {
    auto transp = asyncio::create_subprocess_shell("exit 7");
    EXPECT_EQ(7, transp.wait());
  });
}

// test_subprocess_close_after_finish: without PIPEs the pipe "transports" are empty streams.
TEST_F(SubprocessTestsMixin, test_subprocess_close_after_finish) {
  asyncio::run([] {
    auto transp = asyncio::create_subprocess_shell("exit 7");
    EXPECT_FALSE(transp.stdin_());
    EXPECT_FALSE(transp.stdout_());
    EXPECT_FALSE(transp.stderr_());
    EXPECT_EQ(7, transp.wait());
    EXPECT_EQ(transp.returncode(), 7);
  });
}

// test_subprocess_kill
TEST_F(SubprocessTestsMixin, test_subprocess_kill) {
  asyncio::run([] {
    auto transp = spawn_echo();
    transp.kill();
    EXPECT_EQ(-SIGKILL, transp.wait());
  });
}

// test_subprocess_terminate
TEST_F(SubprocessTestsMixin, test_subprocess_terminate) {
  asyncio::run([] {
    auto transp = spawn_echo();
    transp.terminate();
    EXPECT_EQ(-SIGTERM, transp.wait());
  });
}

// test_subprocess_send_signal: bpo-31034: the child gets the default SIGHUP handler even if the
// parent ignores it.
TEST_F(SubprocessTestsMixin, test_subprocess_send_signal) {
  struct sigaction dfl {};
  struct sigaction old_handler {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGHUP, &dfl, &old_handler);
  asyncio::run([] {
    auto transp = spawn_echo();
    transp.send_signal(SIGHUP);
    EXPECT_EQ(-SIGHUP, transp.wait());
  });
  ::sigaction(SIGHUP, &old_handler, nullptr);
}

// test_subprocess_stderr
TEST_F(SubprocessTestsMixin, test_subprocess_stderr) {
  asyncio::run([] {
    auto transp = spawn_echo2();
    transp.stdin_().write("test");
    std::string out = transp.stdout_().read();
    std::string err = transp.stderr_().read();
    const int returncode = transp.wait();

    EXPECT_EQ("OUT:test", out);
    EXPECT_EQ(err.rfind("ERR:test", 0), 0u) << err;
    EXPECT_EQ(0, returncode);
  });
}

// test_subprocess_stderr_redirect_to_stdout
TEST_F(SubprocessTestsMixin, test_subprocess_stderr_redirect_to_stdout) {
  asyncio::run([] {
    auto transp = spawn_echo2({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::STDOUT});
    EXPECT_TRUE(transp.stdout_());
    EXPECT_FALSE(transp.stderr_());

    transp.stdin_().write("test");
    std::string out = transp.stdout_().read();
    const int returncode = transp.wait();
    EXPECT_EQ(out.rfind("OUT:testERR:test", 0), 0u) << out;
    EXPECT_EQ(0, returncode);
  });
}

}  // namespace cpython_events_io_port
