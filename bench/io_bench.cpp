// io_bench.cpp: echo round trips on 127.0.0.1 TCP: a client task and a
// server task on one loop exchange 64-byte messages, through streams and
// through the raw sock_* calls. Peers:
//   BlockingThreadsEcho  two threads with blocking sockets (the kernel's floor
//                        for a round trip with two context switches)
//   asio_callback_echo   Boost.Asio, one io_context on this thread, completion
//                        handlers (the fastest way to write it with Asio)
//   asio_coroutine_echo  Boost.Asio with C++20 coroutines (co_spawn,
//                        use_awaitable): sequential code, as ours
//   ProtocolEcho         ours with protocols (callbacks, no tasks), the
//                        twin of asio_callback_echo; TlsProtocolEcho over TLS
//   TlsStreamsEcho, asio_ssl_echo  the same over TLS 1.3 (one OpenSSL, the
//                        same certificate), ours against Asio's ssl::stream
//                        with completion handlers
// Every one does StreamsEcho's work: one connection, the client writes 64
// bytes and reads exactly 64 back, the server reads up to 64 KiB and writes
// back what it got; TCP_NODELAY on both ends; one round trip per iteration.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/io.hpp>

#include "io/tls_test_certs.hpp"  // tests/: a CA and a localhost certificate made at run time

namespace {

namespace asyncio = greenlet::asyncio;
constexpr std::size_t message = 64;

// A blocking listening socket on 127.0.0.1 with an ephemeral port, which
// *addr receives.
int listen_loopback(sockaddr_in* addr) {
  const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(l, reinterpret_cast<sockaddr*>(addr), sizeof *addr);
  ::listen(l, 1);
  socklen_t len = sizeof *addr;
  ::getsockname(l, reinterpret_cast<sockaddr*>(addr), &len);
  return l;
}

// A connected TCP pair on loopback, both ends blocking.
void tcp_pair(int out[2]) {
  sockaddr_in addr;
  const int l = listen_loopback(&addr);
  out[0] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::connect(out[0], reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  out[1] = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);
  int one = 1;
  for (int i = 0; i < 2; ++i) ::setsockopt(out[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The echo server of StreamsEcho and TlsStreamsEcho: reads what is there, writes it back.
void stream_echo_server(asyncio::StreamReader r, asyncio::StreamWriter w) {
  for (;;) {
    std::string data = r.read(65536);
    if (data.empty()) break;
    w.write(data);
    w.drain();
  }
  w.close();
}

// run_stream_echo(state, config, connect): a server with config on 127.0.0.1, a client made by
// connect(port), one round trip per iteration.
template <class Connect>
void run_stream_echo(benchmark::State& state, asyncio::server_config config, Connect connect) {
  asyncio::run([&] {
    auto server = asyncio::start_server(stream_echo_server, "127.0.0.1", 0, config);
    auto [r, w] = connect(server.port());
    const std::string msg(message, 'x');
    for (auto _ : state) {
      w.write(msg);
      w.drain();
      benchmark::DoNotOptimize(r.readexactly(message));
    }
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  state.SetItemsProcessed(state.iterations());
}

void BM_StreamsEcho(benchmark::State& state) {
  run_stream_echo(state, {}, [](int port) { return asyncio::open_connection("127.0.0.1", port); });
}
BENCHMARK(BM_StreamsEcho)->UseRealTime();

// TlsStreamsEcho: StreamsEcho's work over TLS (the handshake outside the timing).
void BM_TlsStreamsEcho(benchmark::State& state) {
  const tls_test::cert_files& certs = tls_test::files();
  asyncio::ssl_context server_ctx(asyncio::ssl_protocol::tls_server);
  server_ctx.load_cert_chain(certs.server_cert, certs.server_key);
  auto client_ctx = asyncio::ssl_context::create_default_context(asyncio::ssl_purpose::server_auth, certs.ca);
  run_stream_echo(state, {.ssl = server_ctx},
                  [&](int port) { return asyncio::open_connection("127.0.0.1", port, client_ctx); });
}
BENCHMARK(BM_TlsStreamsEcho)->UseRealTime();

// ProtocolEcho: StreamsEcho's work with protocols (io/protocols.hpp), no task per side: the
// server protocol writes back what data_received() got; the client's data_received() is the
// benchmark loop (KeepRunning per round trip), as asio_callback_echo's handler chain.
struct EchoServerProtocol : asyncio::Protocol {
  asyncio::Transport transport;
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void data_received(std::string_view data) override { transport.write(data); }
  void connection_lost(std::exception_ptr) override { transport = {}; }
};

struct EchoClientProtocol : asyncio::Protocol {
  benchmark::State& state;
  asyncio::Future<void> done;
  asyncio::Transport transport;
  const std::string msg = std::string(message, 'x');
  std::size_t received = 0;
  EchoClientProtocol(benchmark::State& s, asyncio::Future<void> d) : state(s), done(std::move(d)) {}
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void round_trip() {
    if (state.KeepRunning()) {
      transport.write(msg);
    } else {
      transport.close();
    }
  }
  void data_received(std::string_view data) override {
    received += data.size();
    if (received < message) return;
    received = 0;
    round_trip();
  }
  void connection_lost(std::exception_ptr) override {
    transport = {};
    done.set_result();
  }
};

// run_protocol_echo(state, config, connect): a protocol server with config on 127.0.0.1, a client
// protocol made by connect(factory, port); its data_received() drives the iterations.
template <class Connect>
void run_protocol_echo(benchmark::State& state, asyncio::server_config config, Connect connect) {
  asyncio::run([&] {
    auto server = asyncio::create_server<EchoServerProtocol>("127.0.0.1", 0, config);
    auto done = asyncio::get_running_loop().create_future<void>();
    auto [transport, client] =
        connect([&] { return std::make_shared<EchoClientProtocol>(state, done); }, server.port());
    client->round_trip();
    asyncio::await(done);
    server.close();
    server.wait_closed();
  });
  state.SetItemsProcessed(state.iterations());
}

void BM_ProtocolEcho(benchmark::State& state) {
  run_protocol_echo(state, {},
                    [](auto factory, int port) { return asyncio::create_connection(factory, "127.0.0.1", port); });
}
BENCHMARK(BM_ProtocolEcho)->UseRealTime();

// TlsProtocolEcho: ProtocolEcho over TLS 1.3 (the handshake outside the timing).
void BM_TlsProtocolEcho(benchmark::State& state) {
  const tls_test::cert_files& certs = tls_test::files();
  asyncio::ssl_context server_ctx(asyncio::ssl_protocol::tls_server);
  server_ctx.load_cert_chain(certs.server_cert, certs.server_key);
  auto client_ctx = asyncio::ssl_context::create_default_context(asyncio::ssl_purpose::server_auth, certs.ca);
  run_protocol_echo(state, {.ssl = server_ctx}, [&](auto factory, int port) {
    return asyncio::create_connection(factory, "127.0.0.1", port, client_ctx);
  });
}
BENCHMARK(BM_TlsProtocolEcho)->UseRealTime();

// StreamsBulkRead: a thread sends 64 MiB through a blocking socket as fast as
// it can and one task reads it with read(65536) until EOF: the throughput of
// a single fast stream, which the reader's yields to the loop (one per
// 256 KiB read without a poll, see stream_transport::read_budget) must keep.
void BM_StreamsBulkRead(benchmark::State& state) {
  constexpr std::size_t total = 64 << 20;
  std::size_t got = 0;
  asyncio::run([&] {
    for (auto _ : state) {
      sockaddr_in addr;
      const int l = listen_loopback(&addr);
      std::thread writer([l] {
        const int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
        const std::string chunk(1 << 20, 'x');
        for (std::size_t sent = 0; sent < total;) {
          const ssize_t n = ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<std::size_t>(n);
        }
        ::close(c);
      });
      auto [r, w] = asyncio::open_connection("127.0.0.1", ntohs(addr.sin_port));
      for (;;) {
        const std::string data = r.read(65536);
        if (data.empty()) break;
        got += data.size();
      }
      w.close();
      writer.join();  // it has closed its end: EOF came
      ::close(l);
    }
  });
  state.SetBytesProcessed(static_cast<std::int64_t>(got));
}
BENCHMARK(BM_StreamsBulkRead)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SockEcho(benchmark::State& state) {
  int fds[2];
  tcp_pair(fds);
  asyncio::set_nonblocking(fds[0]);
  asyncio::set_nonblocking(fds[1]);
  asyncio::run([&] {
    auto echo = asyncio::create_task([&] {
      char buf[4096];
      for (;;) {
        std::size_t n = asyncio::sock_recv_into(fds[1], buf, sizeof buf);
        if (n == 0) break;
        asyncio::sock_sendall(fds[1], std::string_view(buf, n));
      }
    });
    const std::string msg(message, 'x');
    char buf[message];
    for (auto _ : state) {
      asyncio::sock_sendall(fds[0], msg);
      std::size_t got = 0;
      while (got < message) got += asyncio::sock_recv_into(fds[0], buf + got, message - got);
    }
    ::shutdown(fds[0], SHUT_WR);
    asyncio::await(echo);
  });
  ::close(fds[0]);
  ::close(fds[1]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SockEcho)->UseRealTime();

// Peer: blocking sockets, an echo thread.
void BM_BlockingThreadsEcho(benchmark::State& state) {
  int fds[2];
  tcp_pair(fds);
  std::thread echo([fd = fds[1]] {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      ::send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    }
  });
  const std::string msg(message, 'x');
  char buf[message];
  for (auto _ : state) {
    ::send(fds[0], msg.data(), msg.size(), MSG_NOSIGNAL);
    std::size_t got = 0;
    while (got < message) got += static_cast<std::size_t>(::recv(fds[0], buf + got, message - got, 0));
  }
  ::shutdown(fds[0], SHUT_WR);
  echo.join();
  ::close(fds[0]);
  ::close(fds[1]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BlockingThreadsEcho)->UseRealTime();

// Peer: Boost.Asio. A connected pair on 127.0.0.1 made through an acceptor of
// the same io_context; concurrency hint 1 (one thread runs it).
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct AsioPair {
  net::io_context io{1};
  tcp::socket client{io};
  tcp::socket server{io};
  AsioPair() {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    client.set_option(tcp::no_delay(true));
    server.set_option(tcp::no_delay(true));
  }
};

// Completion handlers: the server reads what is there and writes it back;
// the client's handler chain is the benchmark loop (KeepRunning per round trip).
// Stream is a tcp::socket, or an ssl::stream over one (asio_ssl_echo).
template <class Stream>
struct AsioCallbackServer {
  Stream& socket;
  std::vector<char> buf = std::vector<char>(65536);
  void read() {
    socket.async_read_some(net::buffer(buf), [this](boost::system::error_code ec, std::size_t n) {
      if (ec) return;  // end of stream: the client shut down its side
      net::async_write(socket, net::buffer(buf.data(), n), [this](boost::system::error_code ec2, std::size_t) {
        if (!ec2) read();
      });
    });
  }
};

template <class Stream>
struct AsioCallbackClient {
  Stream& socket;
  benchmark::State& state;
  const std::string msg = std::string(message, 'x');
  std::array<char, message> in{};
  void round_trip() {
    if (!state.KeepRunning()) {
      socket.lowest_layer().shutdown(tcp::socket::shutdown_send);
      return;
    }
    net::async_write(socket, net::buffer(msg), [this](boost::system::error_code ec, std::size_t) {
      if (ec) return state.SkipWithError("asio write failed");
      net::async_read(socket, net::buffer(in), [this](boost::system::error_code ec2, std::size_t) {
        if (ec2) return state.SkipWithError("asio read failed");
        round_trip();
      });
    });
  }
};

void BM_asio_callback_echo(benchmark::State& state) {
  AsioPair pair;
  AsioCallbackServer<tcp::socket> server{pair.server};
  AsioCallbackClient<tcp::socket> client{pair.client, state};
  server.read();
  client.round_trip();
  pair.io.run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_asio_callback_echo)->UseRealTime();

net::awaitable<void> asio_coroutine_server(tcp::socket& socket) {
  std::vector<char> buf(65536);
  try {
    for (;;) {
      std::size_t n = co_await socket.async_read_some(net::buffer(buf), net::use_awaitable);
      co_await net::async_write(socket, net::buffer(buf.data(), n), net::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // end of stream: the client shut down its side
  }
}

net::awaitable<void> asio_coroutine_client(tcp::socket& socket, benchmark::State& state) {
  const std::string msg(message, 'x');
  std::array<char, message> in{};
  for (auto _ : state) {
    co_await net::async_write(socket, net::buffer(msg), net::use_awaitable);
    co_await net::async_read(socket, net::buffer(in), net::use_awaitable);
  }
  socket.shutdown(tcp::socket::shutdown_send);
}

void BM_asio_coroutine_echo(benchmark::State& state) {
  AsioPair pair;
  net::co_spawn(pair.io, asio_coroutine_server(pair.server), net::detached);
  net::co_spawn(pair.io, asio_coroutine_client(pair.client, state), [&state](std::exception_ptr e) {
    if (e) state.SkipWithError("asio coroutine client failed");
  });
  pair.io.run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_asio_coroutine_echo)->UseRealTime();

// Peer: Asio's ssl::stream on AsioPair's sockets, asio_callback_echo's handlers, TLS 1.3 with the
// same certificate and CA as TlsStreamsEcho (the handshake outside the timing).
using ssl_socket = net::ssl::stream<tcp::socket&>;

void BM_asio_ssl_echo(benchmark::State& state) {
  const tls_test::cert_files& certs = tls_test::files();
  AsioPair pair;
  net::ssl::context server_ctx(net::ssl::context::tls_server);
  server_ctx.use_certificate_chain_file(certs.server_cert);
  server_ctx.use_private_key_file(certs.server_key, net::ssl::context::pem);
  net::ssl::context client_ctx(net::ssl::context::tls_client);
  client_ctx.load_verify_file(certs.ca);
  client_ctx.set_verify_mode(net::ssl::verify_peer);
  ssl_socket server_stream(pair.server, server_ctx);
  ssl_socket client_stream(pair.client, client_ctx);
  boost::system::error_code server_ec, client_ec;
  server_stream.async_handshake(net::ssl::stream_base::server, [&](boost::system::error_code ec) { server_ec = ec; });
  client_stream.async_handshake(net::ssl::stream_base::client, [&](boost::system::error_code ec) { client_ec = ec; });
  pair.io.run();
  pair.io.restart();
  if (server_ec || client_ec) {
    state.SkipWithError("asio ssl handshake failed");
    return;
  }
  AsioCallbackServer<ssl_socket> server{server_stream};
  AsioCallbackClient<ssl_socket> client{client_stream, state};
  server.read();
  client.round_trip();
  pair.io.run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_asio_ssl_echo)->UseRealTime();

}  // namespace
