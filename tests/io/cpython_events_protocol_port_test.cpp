// cpython_events_protocol_port_test.cpp: CPython's Lib/test/test_asyncio/test_events.py, the
// protocol-based methods of EventLoopTestsMixin (MyProto, MyReadPipeProto, MyWritePipeProto with
// create_connection, create_server, connect_accepted_socket, connect_read_pipe/connect_write_pipe),
// method by method, with io/protocols.hpp; and Lib/test/test_asyncio/test_buffered_proto.py
// (BufferedProtocol). Read at commits 0136fae70b2ee9a68a468f6c922023472b16b5e9 (test_events.py,
// the version the index stores; these methods are the same in 3.12) and
// 0ba5eb416537159208553dbbfa08503fbd7e4d5c (test_buffered_proto.py; 3.12's get_buffer(sizehint)
// makes a fresh 100-byte buffer per call, as here). tests/io/cpython_events_io_port_test.cpp
// ports the same methods with streams in place of protocols; this file ports them as they are in
// Python. The Python mixins run on several selector classes; they run once here, on the epoll loop.
//
// The fixture is EventLoopTestsMixinProtocols: io_tests already has an EventLoopTestsMixin suite
// (the streams port) with the same method names.
//
// Mapping: `loop.run_until_complete(loop.create_connection(...))` is
// loop.run_until_complete([&] { return asyncio::create_connection(...); }) (protocol entry points
// run in a task); MyProto's `loop` futures are Future<void>s of the test's loop; its
// _assert_state() is an EXPECT (a Python AssertionError in a callback would only be logged).
// test_utils.run_test_server() (a thread serving HTTP/1.0) is a start_server() on the same loop
// answering the request; Python's blocking client sockets stay blocking sockets of the test.
//
// Ported (test_events.py): test_create_connection, test_create_unix_connection,
// test_create_connection_sock, test_create_connection_local_addr,
// test_create_connection_local_addr_skip_different_family, test_create_connection_local_addr_nomatch_family,
// test_create_connection_local_addr_in_use, test_connect_accepted_socket, test_create_server,
// test_create_server_reuse_port, test_create_unix_server, test_create_server_sock, test_create_server_addr_in_use,
// test_create_server_dual_stack, test_server_close, test_read_pipe, test_unclosed_pipe_transport,
// test_read_pty_output, test_write_pipe, test_write_pipe_disconnect_on_close, test_write_pty,
// test_bidirectional_pty; (test_buffered_proto.py) test_buffered_proto_create_connection.
//
// Not ported (reason):
//   test_create_ssl_connection, test_create_ssl_unix_connection, test_ssl_connect_accepted_socket,
//     test_connect_accepted_socket_ssl_timeout_for_plain_socket, test_create_server_ssl,
//     test_create_unix_server_ssl, test_create_server_ssl_verify_failed,
//     test_create_unix_server_ssl_verify_failed, test_create_server_ssl_match_failed,
//     test_create_unix_server_ssl_verified, test_create_server_ssl_verified: ported in
//     tests/io/cpython_events_protocol_ssl_port_test.cpp (suite EventLoopTestsMixinProtocolsSsl),
//     which has the TLS fixture and certificates.
//   test_create_server_multiple_hosts_ipv4, _ipv6: mock the socket module to bind 1.2.3.4 etc.
//   test_create_server_trsock: asyncio.trsock.TransportSocket; Server::sockets() are plain fds.
//   test_create_unix_server_path_socket_error: a path and a sock at once is not expressible (the
//     overloads take one or the other).
//   test_internal_fds, test_timeout_rounding, test_prompt_cancellation, the datagram, signal,
//     reader/writer-callback and loop-level methods: not protocol methods (ported in
//     cpython_events_io_port_test.cpp and tests/asyncio/cpython_events_port_test.cpp).
//   BufferedProtocolProactorTests: Windows only.
//
// Deliberate differences the tests assert (docs/io.md "Protocols and transports"):
//   - get_extra_info() returns an address: "pipe" is not one (an empty address; fileno() is the
//     descriptor, -1 once closed), and an unnamed Unix socket's sockname is the empty address
//     (Python's '').
//   - test_create_connection_local_addr_in_use: the strerror names the address as host:port, not
//     as Python's str(tuple).
//   - test_unclosed_pipe_transport: closing the loop drops the transports still open (their fds
//     closed, protocols let go, no callbacks); Python's leaves them open ('open' in repr()).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
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

#include "cpython_test_protocols.hpp"
#include "cpython_test_utils.hpp"

namespace cpython_events_protocol_port {

namespace asyncio = greenlet::asyncio;
using Strings = std::vector<std::string>;

using EventLoopTestsMixinProtocols = greenlet_test::GreenletTest;
using BufferedProtocolSelectorTests = greenlet_test::GreenletTest;

using namespace cpython_test_utils;
using namespace cpython_test_protocols;

// MyReadPipeProto: the states as a list; a missed EOF is fine.
struct MyReadPipeProto : asyncio::Protocol {
  Strings state{"INITIAL"};
  std::size_t nbytes = 0;
  asyncio::Transport transport;
  asyncio::Future<void> done;

  explicit MyReadPipeProto(asyncio::event_loop& loop) : done(loop.create_future()) {}

  void connection_made(asyncio::Transport& t) override {
    transport = t;
    EXPECT_EQ((Strings{"INITIAL"}), state);
    state.push_back("CONNECTED");
  }
  void data_received(std::string_view data) override {
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), state);
    nbytes += data.size();
  }
  bool eof_received() override {
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), state);
    state.push_back("EOF");
    return false;
  }
  void connection_lost(std::exception_ptr) override {
    if (std::find(state.begin(), state.end(), "EOF") == state.end()) state.push_back("EOF");  // a missed EOF is okay
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF"}), state);
    state.push_back("CLOSED");
    done.set_result();
  }
};

struct MyWritePipeProto : asyncio::BaseProtocol {
  std::string state = "INITIAL";
  asyncio::Transport transport;
  asyncio::Future<void> done;

  explicit MyWritePipeProto(asyncio::event_loop& loop) : done(loop.create_future()) {}

  void connection_made(asyncio::Transport& t) override {
    transport = t;
    EXPECT_EQ("INITIAL", state);
    state = "CONNECTED";
  }
  void connection_lost(std::exception_ptr) override {
    EXPECT_EQ("CONNECTED", state);
    state = "CLOSED";
    done.set_result();
  }
};

void close_server(asyncio::event_loop& loop, asyncio::Server& server) {
  server.close();
  loop.run_until_complete([&] { server.wait_closed(); });
}

// _basetest_create_connection
void basetest_create_connection(asyncio::event_loop& loop, asyncio::Transport tr, const std::shared_ptr<MyProto>& pr,
                                bool check_sockname = true) {
  ASSERT_NE(nullptr, pr);
  EXPECT_EQ(pr->transport.fileno(), tr.fileno());  // assertIs(pr.transport, tr)
  EXPECT_EQ(pr, tr.get_protocol());
  if (check_sockname) {
    EXPECT_NE(tr.get_extra_info("sockname"), asyncio::address{});
  }
  loop.run_until_complete(*pr->done);
  EXPECT_GT(pr->nbytes, 0u);
  tr.close();
}

// test_create_connection
TEST_F(EventLoopTestsMixinProtocols, test_create_connection) {
  asyncio::event_loop loop;
  asyncio::Server httpd = loop.run_until_complete([] { return http_server(); });
  auto [tr, pr] = loop.run_until_complete([&] {
    return asyncio::create_connection([&] { return std::make_shared<MyProto>(loop); }, "127.0.0.1", httpd.port());
  });
  basetest_create_connection(loop, tr, pr);
  close_server(loop, httpd);
  loop.close();
}

// test_create_unix_connection: an unnamed Unix socket's sockname is '' in Python (not None), the
// empty address here: check_sockname is false, as on the platforms Python calls broken.
TEST_F(EventLoopTestsMixinProtocols, test_create_unix_connection) {
  asyncio::event_loop loop;
  unix_socket_path path;
  asyncio::Server httpd = loop.run_until_complete([&] { return http_server(path.path); });
  auto [tr, pr] = loop.run_until_complete(
      [&] { return asyncio::create_unix_connection([&] { return std::make_shared<MyProto>(loop); }, path.path); });
  EXPECT_EQ(path.path, tr.get_extra_info("peername").host);
  basetest_create_connection(loop, tr, pr, false);
  close_server(loop, httpd);
  loop.close();
}

// test_create_connection_sock: test_events.py's in the stored version (test_sock_lowlevel.py's in
// 3.12, where cpython_sock_lowlevel_port_test.cpp left it out: it needs a protocol).
TEST_F(EventLoopTestsMixinProtocols, test_create_connection_sock) {
  asyncio::event_loop loop;
  asyncio::Server httpd = loop.run_until_complete([] { return http_server(); });
  const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  asyncio::set_nonblocking(sock);
  loop.run_until_complete([&] { asyncio::sock_connect(sock, "127.0.0.1", httpd.port()); });

  auto [tr, pr] = loop.run_until_complete([&] {
    return asyncio::create_connection([&] { return std::make_shared<MyProto>(loop); }, asyncio::connected_socket{sock});
  });
  EXPECT_EQ(sock, tr.fileno());
  loop.run_until_complete(*pr->done);
  EXPECT_GT(pr->nbytes, 0u);
  tr.close();
  close_server(loop, httpd);
  loop.close();
}

// test_create_connection_local_addr
TEST_F(EventLoopTestsMixinProtocols, test_create_connection_local_addr) {
  asyncio::event_loop loop;
  asyncio::Server httpd = loop.run_until_complete([] { return http_server(); });
  const int port = find_unused_port();
  auto [tr, pr] = loop.run_until_complete([&] {
    return asyncio::create_connection([&] { return std::make_shared<MyProto>(loop); }, "127.0.0.1", httpd.port(),
                                      asyncio::local_addr{"127.0.0.1", port});
  });
  const int expected = pr->transport.get_extra_info("sockname").port;
  EXPECT_EQ(port, expected);
  tr.close();
  close_server(loop, httpd);
  loop.close();
}

// local_addr_resolver(port2, answer) is the Python tests' getaddrinfo override: `answer` for
// lookups of port2 (the local address), the system's getaddrinfo() for the rest.
asyncio::resolver_fn local_addr_resolver(int port2, std::vector<asyncio::addrinfo_entry> answer) {
  return [port2, answer](const std::string& host, const std::string& service, const asyncio::addrinfo_hints& hints) {
    if (service == std::to_string(port2)) return answer;
    return asyncio::system_getaddrinfo(host, service, hints);
  };
}

// test_create_connection_local_addr_skip_different_family: the local address resolves to an IPv6
// and an IPv4 address; each attempt binds the one of its own family, and nothing listens on port1:
// an OSError (the connection refused), not a bind failure of the other family.
TEST_F(EventLoopTestsMixinProtocols, test_create_connection_local_addr_skip_different_family) {
  asyncio::event_loop loop;
  const int port1 = find_unused_port();
  const int port2 = find_unused_port();
  asyncio::set_resolver(loop, local_addr_resolver(port2, {{AF_INET6, SOCK_STREAM, 0, "", {"::1", 0}},
                                                          {AF_INET, SOCK_STREAM, 0, "", {"127.0.0.1", 0}}}));
  EXPECT_THROW(loop.run_until_complete([&] {
    return asyncio::create_connection([&] { return std::make_shared<MyProto>(loop); }, "localhost", port1,
                                      asyncio::local_addr{"localhost", port2});
  }),
               asyncio::OSError);
  asyncio::shutdown_default_executor(loop);
  loop.close();
}

// test_create_connection_local_addr_nomatch_family: the local address resolves to IPv6 only.
TEST_F(EventLoopTestsMixinProtocols, test_create_connection_local_addr_nomatch_family) {
  asyncio::event_loop loop;
  const int port1 = find_unused_port();
  const int port2 = find_unused_port();
  asyncio::set_resolver(loop, local_addr_resolver(port2, {{AF_INET6, SOCK_STREAM, 0, "", {"::1", 0}}}));
  EXPECT_THROW(loop.run_until_complete([&] {
    return asyncio::create_connection([&] { return std::make_shared<MyProto>(loop); }, "localhost", port1,
                                      asyncio::local_addr{"localhost", port2});
  }),
               asyncio::OSError);
  asyncio::shutdown_default_executor(loop);
  loop.close();
}

// test_create_connection_local_addr_in_use
TEST_F(EventLoopTestsMixinProtocols, test_create_connection_local_addr_in_use) {
  asyncio::event_loop loop;
  asyncio::Server httpd = loop.run_until_complete([] { return http_server(); });
  try {
    loop.run_until_complete([&] {
      return asyncio::create_connection([&] { return std::make_shared<MyProto>(loop); }, "127.0.0.1", httpd.port(),
                                        asyncio::local_addr{"127.0.0.1", httpd.port()});
    });
    ADD_FAILURE() << "no OSError";
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(EADDRINUSE, e.code().value());
    EXPECT_TRUE(contains(e.what(), "127.0.0.1")) << e.what();
    EXPECT_TRUE(contains(e.what(), std::to_string(httpd.port()))) << e.what();
  }
  close_server(loop, httpd);
  loop.close();
}

// test_connect_accepted_socket
TEST_F(EventLoopTestsMixinProtocols, test_connect_accepted_socket) {
  asyncio::event_loop loop;
  const std::string message = "test data";
  std::string response;
  const std::string expected_response = "roger";

  struct AcceptedProto : MyBaseProto {
    asyncio::event_loop* loop = nullptr;
    std::string reply;
    using MyBaseProto::MyBaseProto;
    void connection_lost(std::exception_ptr exc) override {
      MyBaseProto::connection_lost(exc);
      auto* l = loop;
      l->call_soon([l] { l->stop(); });
    }
    void data_received(std::string_view data) override {
      MyBaseProto::data_received(data);
      transport.write(reply);
    }
  };

  const int lsock = create_server_socket("127.0.0.1", 0, 1);
  const int port = sockname(lsock).port;

  std::thread thread([&] {
    const int csock = blocking_connect(AF_INET, "127.0.0.1", port);
    if (csock < 0) return;
    ::send(csock, message.data(), message.size(), 0);
    char buf[99];
    const ssize_t n = ::recv(csock, buf, sizeof buf, 0);
    if (n > 0) response.assign(buf, static_cast<std::size_t>(n));
    ::close(csock);
  });

  const int conn = ::accept4(lsock, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  auto proto = std::make_shared<AcceptedProto>(loop);
  proto->loop = &loop;
  proto->reply = expected_response;
  loop.run_until_complete([&] { asyncio::connect_accepted_socket([&] { return proto; }, conn); });
  loop.run_forever();
  proto->transport.close();
  ::close(lsock);

  thread.join();
  EXPECT_EQ("CLOSED", proto->state);
  EXPECT_EQ(message.size(), proto->nbytes);
  EXPECT_EQ(expected_response, response);
  loop.close();
}

// test_create_server
TEST_F(EventLoopTestsMixinProtocols, test_create_server) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyProto>(loop);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::create_server([&] { return proto; }, "0.0.0.0", 0); });
  ASSERT_EQ(1u, server.sockets().size());
  const int sock = server.sockets()[0];
  auto [host, port] = sockname(sock);
  EXPECT_EQ("0.0.0.0", host);
  const int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ASSERT_EQ(3, ::send(client, "xxx", 3, 0));

  loop.run_until_complete(*proto->connected);
  EXPECT_EQ("CONNECTED", proto->state);

  run_until(loop, [&] { return proto->nbytes > 0; });
  EXPECT_EQ(3u, proto->nbytes);

  // extra info is available
  EXPECT_NE(proto->transport.get_extra_info("sockname"), asyncio::address{});
  EXPECT_EQ("127.0.0.1", proto->transport.get_extra_info("peername").host);

  // close connection
  proto->transport.close();
  loop.run_until_complete(*proto->done);

  EXPECT_EQ("CLOSED", proto->state);

  // the client socket must be closed after to avoid ECONNRESET upon recv()/send() on the serving socket
  ::close(client);

  // close server
  close_server(loop, server);
  loop.close();
}

// test_create_server_reuse_port
TEST_F(EventLoopTestsMixinProtocols, test_create_server_reuse_port) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyProto>(loop);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::create_server([&] { return proto; }, "0.0.0.0", 0); });
  ASSERT_EQ(1u, server.sockets().size());
  int on = -1;
  socklen_t len = sizeof on;
  ASSERT_EQ(0, ::getsockopt(server.sockets()[0], SOL_SOCKET, SO_REUSEPORT, &on, &len));
  EXPECT_FALSE(on);
  close_server(loop, server);

  run_briefly(loop);

  proto = std::make_shared<MyProto>(loop);
  server = loop.run_until_complete([&] {
    return asyncio::create_server([&] { return proto; }, "0.0.0.0", 0, asyncio::server_config{.reuse_port = true});
  });
  ASSERT_EQ(1u, server.sockets().size());
  on = -1;
  ASSERT_EQ(0, ::getsockopt(server.sockets()[0], SOL_SOCKET, SO_REUSEPORT, &on, &len));
  EXPECT_TRUE(on);
  close_server(loop, server);
  loop.close();
}

// test_create_unix_server
TEST_F(EventLoopTestsMixinProtocols, test_create_unix_server) {
  asyncio::event_loop loop;
  unix_socket_path path;
  auto proto = std::make_shared<MyProto>(loop);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::create_unix_server([&] { return proto; }, path.path); });
  EXPECT_EQ(1u, server.sockets().size());

  const int client = unix_connect(path.path);
  ASSERT_GE(client, 0);
  ASSERT_EQ(3, ::send(client, "xxx", 3, 0));

  loop.run_until_complete(*proto->connected);
  EXPECT_EQ("CONNECTED", proto->state);
  run_until(loop, [&] { return proto->nbytes > 0; });
  EXPECT_EQ(3u, proto->nbytes);

  // close connection
  proto->transport.close();
  loop.run_until_complete(*proto->done);

  EXPECT_EQ("CLOSED", proto->state);

  ::close(client);
  close_server(loop, server);
  loop.close();
}

// test_create_server_sock
TEST_F(EventLoopTestsMixinProtocols, test_create_server_sock) {
  asyncio::event_loop loop;
  asyncio::Future<void> proto = loop.create_future();

  struct TestMyProto : MyProto {
    asyncio::Future<void> made;
    explicit TestMyProto(asyncio::Future<void> f) : made(std::move(f)) {}
    void connection_made(asyncio::Transport& t) override {
      MyProto::connection_made(t);
      made.set_result();
    }
  };

  const int sock_ob = create_server_socket("0.0.0.0", 0);
  asyncio::Server server = loop.run_until_complete([&] {
    return asyncio::create_server([&] { return std::make_shared<TestMyProto>(proto); },
                                  asyncio::listening_socket{sock_ob});
  });
  ASSERT_EQ(1u, server.sockets().size());
  const int sock = server.sockets()[0];
  EXPECT_EQ(sock_ob, sock);

  auto [host, port] = sockname(sock);
  EXPECT_EQ("0.0.0.0", host);
  const int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0);
  ::send(client, "xxx", 3, 0);
  ::close(client);
  close_server(loop, server);
  loop.close();
}

// test_create_server_addr_in_use
TEST_F(EventLoopTestsMixinProtocols, test_create_server_addr_in_use) {
  asyncio::event_loop loop;
  const int sock_ob = create_server_socket("0.0.0.0", 0);
  asyncio::Server server =
      loop.run_until_complete([&] { return asyncio::create_server<MyProto>(asyncio::listening_socket{sock_ob}); });
  auto [host, port] = sockname(server.sockets()[0]);

  try {
    loop.run_until_complete([&, host = host, port = port] { return asyncio::create_server<MyProto>(host, port); });
    ADD_FAILURE() << "no OSError";
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(EADDRINUSE, e.code().value());
  }
  close_server(loop, server);
  loop.close();
}

// test_create_server_dual_stack: host=None is "" here (0.0.0.0 and ::), port 0 (every address
// shares the port the first got) in place of find_unused_port() and its retries.
TEST_F(EventLoopTestsMixinProtocols, test_create_server_dual_stack) {
  asyncio::event_loop loop;
  std::optional<asyncio::Future<std::shared_ptr<MyProto>>> f_proto;

  struct TestMyProto : MyProto {
    std::optional<asyncio::Future<std::shared_ptr<MyProto>>>* f = nullptr;
    void connection_made(asyncio::Transport& t) override {
      MyProto::connection_made(t);
      (*f)->set_result(std::static_pointer_cast<MyProto>(t.get_protocol()));
    }
  };
  auto factory = [&] {
    auto p = std::make_shared<TestMyProto>();
    p->f = &f_proto;
    return p;
  };
  f_proto = loop.create_future<std::shared_ptr<MyProto>>();
  asyncio::Server server = loop.run_until_complete([&] { return asyncio::create_server(factory, "", 0); });
  const int port = server.port();

  int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ::send(client, "xxx", 3, 0);
  std::shared_ptr<MyProto> proto = loop.run_until_complete(*f_proto);
  proto->transport.close();
  ::close(client);

  f_proto = loop.create_future<std::shared_ptr<MyProto>>();
  client = blocking_connect(AF_INET6, "::1", port);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ::send(client, "xxx", 3, 0);
  proto = loop.run_until_complete(*f_proto);
  proto->transport.close();
  ::close(client);

  close_server(loop, server);
  loop.close();
}

// test_server_close
TEST_F(EventLoopTestsMixinProtocols, test_server_close) {
  asyncio::event_loop loop;
  asyncio::Server server = loop.run_until_complete([] { return asyncio::create_server<MyProto>("0.0.0.0", 0); });
  auto [host, port] = sockname(server.sockets()[0]);

  int client = blocking_connect(AF_INET, "127.0.0.1", port);
  ASSERT_GE(client, 0);
  ::send(client, "xxx", 3, 0);
  ::close(client);

  server.close();

  client = blocking_connect(AF_INET, "127.0.0.1", port);
  EXPECT_EQ(-1, client);
  EXPECT_EQ(ECONNREFUSED, errno);
  if (client >= 0) ::close(client);
  loop.run_until_complete([&] { server.wait_closed(); });
  loop.close();
}

// test_read_pipe
TEST_F(EventLoopTestsMixinProtocols, test_read_pipe) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyReadPipeProto>(loop);
  os_pipe pipe;
  const int rpipe = std::exchange(pipe.r, -1);  // the transport's from now on

  loop.run_until_complete([&] {
    auto [t, p] = asyncio::connect_read_pipe([&] { return proto; }, rpipe);
    EXPECT_EQ(proto, p);
    EXPECT_EQ(t.fileno(), proto->transport.fileno());
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto->state);
    EXPECT_EQ(0u, proto->nbytes);
  });

  ASSERT_EQ(1, ::write(pipe.w, "1", 1));
  run_until(loop, [&] { return proto->nbytes >= 1; });
  EXPECT_EQ(1u, proto->nbytes);

  ASSERT_EQ(4, ::write(pipe.w, "2345", 4));
  run_until(loop, [&] { return proto->nbytes >= 5; });
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto->state);
  EXPECT_EQ(5u, proto->nbytes);

  ::close(std::exchange(pipe.w, -1));
  loop.run_until_complete(proto->done);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), proto->state);
  // extra info: "pipe" is no address; the descriptor is closed.
  EXPECT_EQ(asyncio::address{}, proto->transport.get_extra_info("pipe"));
  EXPECT_EQ(-1, proto->transport.fileno());
  loop.close();
}

// test_unclosed_pipe_transport: the loop closed with the transports open (Python issue #314:
// repr() raised). Here closing the loop drops them: closed, fds closed, protocols let go, no
// callbacks; the handles stay safe to use.
TEST_F(EventLoopTestsMixinProtocols, test_unclosed_pipe_transport) {
  auto loop = std::make_unique<asyncio::event_loop>();
  auto read_proto = std::make_shared<MyReadPipeProto>(*loop);
  auto write_proto = std::make_shared<MyWritePipeProto>(*loop);
  os_pipe pipe;
  const int rpipe = std::exchange(pipe.r, -1);
  const int wpipe = std::exchange(pipe.w, -1);

  auto [read_transport, write_transport] = loop->run_until_complete([&] {
    auto rt = asyncio::connect_read_pipe([&] { return read_proto; }, rpipe).first;
    auto wt = asyncio::connect_write_pipe([&] { return write_proto; }, wpipe).first;
    return std::make_pair(rt, wt);
  });
  // Run and close the loop without closing the transports
  loop->close();

  EXPECT_TRUE(read_transport.is_closing());
  EXPECT_TRUE(write_transport.is_closing());
  EXPECT_EQ(-1, read_transport.fileno());
  EXPECT_EQ(-1, write_transport.fileno());
  EXPECT_EQ(nullptr, read_transport.get_protocol());
  EXPECT_EQ(nullptr, write_transport.get_protocol());
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto->state);  // no connection_lost
  EXPECT_EQ("CONNECTED", write_proto->state);
  // The handles outlive the loop safely: every call is a no-op (a write is dropped).
  loop.reset();
  read_transport.close();
  write_transport.write("dropped");
  write_transport.abort();
  read_transport.pause_reading();
  read_transport.resume_reading();
  EXPECT_EQ(0u, write_transport.get_write_buffer_size());
  read_proto->transport = {};
  write_proto->transport = {};
}

// test_read_pty_output
TEST_F(EventLoopTestsMixinProtocols, test_read_pty_output) {
  asyncio::event_loop loop;
  auto proto = std::make_shared<MyReadPipeProto>(loop);
  int master = -1, slave = -1;
  ASSERT_EQ(0, ::openpty(&master, &slave, nullptr, nullptr, nullptr));

  loop.run_until_complete([&] {
    auto [t, p] = asyncio::connect_read_pipe([&] { return proto; }, master);
    EXPECT_EQ(proto, p);
    EXPECT_EQ(t.fileno(), proto->transport.fileno());
    EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto->state);
    EXPECT_EQ(0u, proto->nbytes);
  });

  ASSERT_EQ(1, ::write(slave, "1", 1));
  run_until(loop, [&] { return proto->nbytes > 0; });
  EXPECT_EQ(1u, proto->nbytes);

  ASSERT_EQ(4, ::write(slave, "2345", 4));
  run_until(loop, [&] { return proto->nbytes >= 5; });
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), proto->state);
  EXPECT_EQ(5u, proto->nbytes);

  ::close(slave);
  proto->transport.close();
  loop.run_until_complete(proto->done);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), proto->state);
  EXPECT_EQ(asyncio::address{}, proto->transport.get_extra_info("pipe"));
  loop.close();
}

// reader(fd, data) is the Python test's reader(): one read appended; the total size.
std::size_t reader(int fd, std::string& data) {
  char chunk[1024];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n > 0) data.append(chunk, static_cast<std::size_t>(n));
  return data.size();
}

// test_write_pipe
TEST_F(EventLoopTestsMixinProtocols, test_write_pipe) {
  asyncio::event_loop loop;
  os_pipe pipe;
  const int wpipe = std::exchange(pipe.w, -1);

  auto proto = std::make_shared<MyWritePipeProto>(loop);
  auto [transport, p] =
      loop.run_until_complete([&] { return asyncio::connect_write_pipe([&] { return proto; }, wpipe); });
  EXPECT_EQ(proto, p);
  EXPECT_EQ(transport.fileno(), proto->transport.fileno());
  EXPECT_EQ("CONNECTED", proto->state);

  transport.write("1");

  std::string data;
  run_until(loop, [&] { return reader(pipe.r, data) >= 1; });
  EXPECT_EQ("1", data);

  transport.write("2345");
  run_until(loop, [&] { return reader(pipe.r, data) >= 5; });
  EXPECT_EQ("12345", data);
  EXPECT_EQ("CONNECTED", proto->state);

  ::close(std::exchange(pipe.r, -1));

  // extra info: "pipe" is no address
  EXPECT_EQ(asyncio::address{}, proto->transport.get_extra_info("pipe"));

  // close connection
  proto->transport.close();
  loop.run_until_complete(proto->done);
  EXPECT_EQ("CLOSED", proto->state);
  loop.close();
}

// test_write_pipe_disconnect_on_close
TEST_F(EventLoopTestsMixinProtocols, test_write_pipe_disconnect_on_close) {
  asyncio::event_loop loop;
  socket_pair pair;
  asyncio::set_nonblocking(pair.r);
  const int wsock = std::exchange(pair.w, -1);  // detach()

  auto proto = std::make_shared<MyWritePipeProto>(loop);
  auto [transport, p] =
      loop.run_until_complete([&] { return asyncio::connect_write_pipe([&] { return proto; }, wsock); });
  EXPECT_EQ(proto, p);
  EXPECT_EQ(transport.fileno(), proto->transport.fileno());
  EXPECT_EQ("CONNECTED", proto->state);

  transport.write("1");
  std::string data = loop.run_until_complete([&] { return asyncio::sock_recv(pair.r, 1024); });
  EXPECT_EQ("1", data);

  ::close(std::exchange(pair.r, -1));

  loop.run_until_complete(proto->done);
  EXPECT_EQ("CLOSED", proto->state);
  loop.close();
}

// test_write_pty
TEST_F(EventLoopTestsMixinProtocols, test_write_pty) {
  asyncio::event_loop loop;
  int master = -1, slave = -1;
  ASSERT_EQ(0, ::openpty(&master, &slave, nullptr, nullptr, nullptr));

  auto proto = std::make_shared<MyWritePipeProto>(loop);
  auto [transport, p] =
      loop.run_until_complete([&] { return asyncio::connect_write_pipe([&] { return proto; }, slave); });
  EXPECT_EQ(proto, p);
  EXPECT_EQ(transport.fileno(), proto->transport.fileno());
  EXPECT_EQ("CONNECTED", proto->state);

  transport.write("1");

  std::string data;
  run_until(
      loop, [&] { return reader(master, data) >= 1; }, 10);
  EXPECT_EQ("1", data);

  transport.write("2345");
  run_until(
      loop, [&] { return reader(master, data) >= 5; }, 10);
  EXPECT_EQ("12345", data);
  EXPECT_EQ("CONNECTED", proto->state);

  ::close(master);

  EXPECT_EQ(asyncio::address{}, proto->transport.get_extra_info("pipe"));

  // close connection
  proto->transport.close();
  loop.run_until_complete(proto->done);
  EXPECT_EQ("CLOSED", proto->state);
  loop.close();
}

// test_bidirectional_pty
// The write transport on the slave stays open while the master writes to it: a pty's input is
// not its reader going away (asyncio watches sockets and FIFOs only for that).
TEST_F(EventLoopTestsMixinProtocols, test_bidirectional_pty) {
  asyncio::event_loop loop;
  int master = -1, read_slave = -1;
  ASSERT_EQ(0, ::openpty(&master, &read_slave, nullptr, nullptr, nullptr));
  const int write_slave = ::dup(read_slave);
  termios raw{};
  ASSERT_EQ(0, ::tcgetattr(read_slave, &raw));
  ::cfmakeraw(&raw);  // tty.setraw()
  ASSERT_EQ(0, ::tcsetattr(read_slave, TCSAFLUSH, &raw));

  auto read_proto = std::make_shared<MyReadPipeProto>(loop);
  auto [read_transport, rp] =
      loop.run_until_complete([&] { return asyncio::connect_read_pipe([&] { return read_proto; }, read_slave); });
  EXPECT_EQ(read_proto, rp);
  EXPECT_EQ(read_transport.fileno(), read_proto->transport.fileno());
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto->state);
  EXPECT_EQ(0u, read_proto->nbytes);

  auto write_proto = std::make_shared<MyWritePipeProto>(loop);
  auto [write_transport, wp] =
      loop.run_until_complete([&] { return asyncio::connect_write_pipe([&] { return write_proto; }, write_slave); });
  EXPECT_EQ(write_proto, wp);
  EXPECT_EQ(write_transport.fileno(), write_proto->transport.fileno());
  EXPECT_EQ("CONNECTED", write_proto->state);

  std::string data;
  write_transport.write("1");
  run_until(
      loop, [&] { return reader(master, data) >= 1; }, 10);
  EXPECT_EQ("1", data);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto->state);
  EXPECT_EQ("CONNECTED", write_proto->state);

  ASSERT_EQ(1, ::write(master, "a", 1));
  run_until(
      loop, [&] { return read_proto->nbytes >= 1; }, 10);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto->state);
  EXPECT_EQ(1u, read_proto->nbytes);
  EXPECT_EQ("CONNECTED", write_proto->state);

  write_transport.write("2345");
  run_until(
      loop, [&] { return reader(master, data) >= 5; }, 10);
  EXPECT_EQ("12345", data);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto->state);
  EXPECT_EQ("CONNECTED", write_proto->state);

  ASSERT_EQ(4, ::write(master, "bcde", 4));
  run_until(
      loop, [&] { return read_proto->nbytes >= 5; }, 10);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED"}), read_proto->state);
  EXPECT_EQ(5u, read_proto->nbytes);
  EXPECT_EQ("CONNECTED", write_proto->state);

  ::close(master);

  read_transport.close();
  loop.run_until_complete(read_proto->done);
  EXPECT_EQ((Strings{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), read_proto->state);

  write_transport.close();
  loop.run_until_complete(write_proto->done);
  EXPECT_EQ("CLOSED", write_proto->state);
  loop.close();
}

// ---- test_buffered_proto.py ----

// ReceiveStuffProto: each get_buffer() is a fresh 100-byte buffer; buffer_updated hands the bytes
// read to cb.
struct ReceiveStuffProto : asyncio::BufferedProtocol {
  std::vector<char> buffer;
  std::function<void(std::string_view)> cb;
  asyncio::Future<void> con_lost_fut;

  ReceiveStuffProto(std::function<void(std::string_view)> cb_, asyncio::Future<void> fut)
      : cb(std::move(cb_)), con_lost_fut(std::move(fut)) {}
  std::span<char> get_buffer(std::size_t) override {
    buffer.assign(100, '\0');
    return buffer;
  }
  void buffer_updated(std::size_t nbytes) override { cb(std::string_view(buffer.data(), nbytes)); }
  void connection_lost(std::exception_ptr exc) override {
    if (exc == nullptr) {
      con_lost_fut.set_result();
    } else {
      con_lost_fut.set_exception(exc);
    }
  }
};

// test_buffered_proto_create_connection
TEST_F(BufferedProtocolSelectorTests, test_buffered_proto_create_connection) {
  asyncio::event_loop loop;
  std::string NOISE;
  for (int i = 0; i < 1024; ++i) NOISE += "12345678+";

  auto client = [&](int port) {
    std::string data;
    asyncio::Transport tr;
    auto on_buf = [&](std::string_view buf) {
      data += buf;
      if (data == NOISE) tr.write("1");
    };
    asyncio::Future<void> conn_lost_fut = asyncio::get_running_loop().create_future();
    auto [t, pr] = asyncio::create_connection(
        [&] { return std::make_shared<ReceiveStuffProto>(on_buf, conn_lost_fut); }, "127.0.0.1", port);
    tr = t;
    asyncio::await(conn_lost_fut);
    EXPECT_EQ(NOISE, data);
  };

  auto on_server_client = [&](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    writer.write(NOISE);
    reader.readexactly(1);
    writer.close();
    writer.wait_closed();
  };

  asyncio::Server srv =
      loop.run_until_complete([&] { return asyncio::start_server(on_server_client, "127.0.0.1", 0); });
  const int port = srv.port();
  loop.run_until_complete([&] { asyncio::wait_for([&] { client(port); }, 5); });

  close_server(loop, srv);
  loop.close();
}

}  // namespace cpython_events_protocol_port
