// http_hello_asio.cpp: the Boost.Asio peer of examples/http_hello.cpp for the
// wrk benchmark (bench/tools/http_wrk.py): the same HTTP/1.1 keep-alive
// "Hello, World!" answer to every request, one io_context on one thread.
//   http_hello_asio [port=8080] [callback|coroutine]
// callback: completion handlers, a session object per connection (the usual
// fastest way to write it with Asio); coroutine: C++20 coroutines (co_spawn,
// use_awaitable), sequential code as in our example. Each reads one request
// head up to "\r\n\r\n" (bytes after it stay buffered for the next request),
// writes the response, and closes after a request with "Connection: close".
// Only listens on 127.0.0.1.
#include <utility>  // first: Boost 1.74's asio/awaitable.hpp uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "Connection: keep-alive\r\n\r\nHello, World!";

bool wants_close(std::string_view head) { return head.find("Connection: close") != std::string_view::npos; }

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void read() {
    net::async_read_until(socket_, net::dynamic_buffer(in_), "\r\n\r\n",
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            if (ec) return;  // the client closed the connection
                            const bool close = wants_close(std::string_view(self->in_).substr(0, n));
                            self->in_.erase(0, n);
                            self->write(close);
                          });
  }

 private:
  void write(bool close) {
    net::async_write(socket_, net::buffer(response),
                     [self = shared_from_this(), close](boost::system::error_code ec, std::size_t) {
                       if (!ec && !close) self->read();
                     });
  }

  tcp::socket socket_;
  std::string in_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket))->read();
    }
    accept(acceptor);
  });
}

net::awaitable<void> coroutine_session(tcp::socket socket) {
  std::string in;
  try {
    for (;;) {
      std::size_t n = co_await net::async_read_until(socket, net::dynamic_buffer(in), "\r\n\r\n", net::use_awaitable);
      const bool close = wants_close(std::string_view(in).substr(0, n));
      in.erase(0, n);
      co_await net::async_write(socket, net::buffer(response), net::use_awaitable);
      if (close) break;
    }
  } catch (const boost::system::system_error&) {
    // the client closed the connection
  }
}

net::awaitable<void> coroutine_accept(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(net::use_awaitable);
    socket.set_option(tcp::no_delay(true));
    net::co_spawn(acceptor.get_executor(), coroutine_session(std::move(socket)), net::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  const bool coroutine = argc > 2 && std::strcmp(argv[2], "coroutine") == 0;
  net::io_context io{1};
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), static_cast<unsigned short>(port)));
  if (coroutine) {
    net::co_spawn(io, coroutine_accept(acceptor), net::detached);
  } else {
    accept(acceptor);
  }
  std::printf("HTTP on http://127.0.0.1:%d/ (Asio, %s)\n", acceptor.local_endpoint().port(),
              coroutine ? "coroutine" : "callback");
  std::fflush(stdout);
  io.run();
}
