// io/datagram.hpp: asyncio's datagram endpoints (UDP, Unix-domain
// SOCK_DGRAM): create_datagram_endpoint(), a DatagramTransport to send
// with and a DatagramProtocol whose callbacks the loop calls, as in Python:
//
//   struct EchoServerProtocol : asyncio::DatagramProtocol {
//     asyncio::DatagramTransport transport;
//     void connection_made(asyncio::DatagramTransport& t) override { transport = t; }
//     void datagram_received(std::string data, asyncio::address addr) override {
//       transport.sendto(data, addr);
//     }
//   };
//   auto [transport, protocol] = asyncio::create_datagram_endpoint<EchoServerProtocol>(
//       {.local_addr = asyncio::address{"127.0.0.1", 9999}});
//   ...
//   transport.close();
//
// For sequential code on a datagram socket (no callbacks) see
// sock_recvfrom()/sock_sendto() in io/socket.hpp.
#pragma once

#include <sys/socket.h>

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "greenlet/io/address.hpp"
#include "greenlet/io/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace detail {
class datagram_transport;
}  // namespace detail

class DatagramTransport;

// DatagramProtocol is asyncio.DatagramProtocol: derive from it and override
// what you need (each default does nothing). The loop calls them on its
// thread: connection_made() first, then datagram_received() and
// error_received(), and connection_lost() last, once, after close() or
// abort(). As in asyncio, a send that fails at once, or fills the buffer
// past the high-water mark, calls error_received() or pause_writing()
// inside that sendto(). An exception a callback throws goes to the loop's
// exception handler and the endpoint stays open, as in asyncio.
class DatagramProtocol {
 public:
  virtual ~DatagramProtocol() = default;
  // connection_made(t): the endpoint is ready; keep t (a handle) to send. Throws what you throw.
  virtual void connection_made(DatagramTransport& transport);
  // datagram_received(data, addr): one datagram arrived from addr. Throws what you throw.
  virtual void datagram_received(std::string data, address addr);
  // error_received(exc): a send or receive failed (ConnectionRefusedError on a
  // connected endpoint whose peer port is closed, EMSGSIZE, ...). Throws what you throw.
  virtual void error_received(const OSError& exc);
  // connection_lost(exc): the endpoint is closed; exc is null after close()
  // or abort(), else the error that closed it. Throws what you throw.
  virtual void connection_lost(std::exception_ptr exc);
  // pause_writing(): more than the high-water mark of datagrams wait to be
  // sent; resume_writing(): back at or below the low-water mark. sendto()
  // keeps buffering meanwhile, as asyncio's. Throw what you throw (reported).
  virtual void pause_writing();
  // resume_writing(): see pause_writing(). Throws what you throw (reported).
  virtual void resume_writing();
};

// DatagramTransport is asyncio's datagram transport: a handle (copies share
// the endpoint; an empty one, default-made, raises RuntimeError on use). The
// endpoint lives until closed, not until its last handle goes: the loop
// keeps it receiving, as asyncio's selector does. Loop thread only.
class DatagramTransport {
 public:
  DatagramTransport() = default;
  // Internal: made by create_datagram_endpoint(). Throws nothing.
  explicit DatagramTransport(std::shared_ptr<detail::datagram_transport> t) noexcept : t_(std::move(t)) {}

  // sendto(data) sends one datagram to the remote address the endpoint was
  // created with (remote_addr). If the socket's buffer is full it is queued
  // and sent in order when there is room (get_write_buffer_size()). A
  // failed send is handed to the protocol's error_received(), not thrown.
  // Throws ValueError without a remote address; RuntimeError once closing.
  void sendto(std::string_view data);
  // sendto(data, addr) sends to addr: a numeric IPv4/IPv6 address (a name
  // would need a lookup, which cannot wait here: resolve it first), or a
  // path for a Unix-domain endpoint. On an endpoint created with remote_addr,
  // addr must be that address. Throws ValueError (a name: resolve it with getaddrinfo(); another
  // address than remote_addr, NUL in host), std::out_of_range (port),
  // RuntimeError once closing.
  void sendto(std::string_view data, const address& addr);
  // close() stops receiving; datagrams queued are still sent, then the
  // socket closes and connection_lost(nullptr) is called. Idempotent. Throws nothing.
  void close() noexcept;
  // abort() closes at once, dropping queued datagrams; connection_lost(nullptr) follows. Throws nothing.
  void abort() noexcept;
  // is_closing() is true once close() or abort() was called (or an error closed it). Throws nothing.
  bool is_closing() const noexcept;
  // get_extra_info(name): "sockname" (the bound address) or "peername" (the
  // remote address; {"", 0} without one); {"", 0} for other names. Throws RuntimeError if empty.
  address get_extra_info(std::string_view name) const;
  // fileno() is the socket's descriptor (-1 once closed): asyncio's
  // get_extra_info("socket"), for setsockopt(). Throws nothing.
  int fileno() const noexcept;
  // get_write_buffer_size() is the bytes of datagrams queued. Throws nothing.
  std::size_t get_write_buffer_size() const noexcept;
  // set_write_buffer_limits(high, low): the water marks of pause_writing() and
  // resume_writing() (64 KiB and 16 KiB by default; low defaults to high / 4).
  // Throws ValueError if low > high, RuntimeError if empty.
  void set_write_buffer_limits(std::size_t high, std::optional<std::size_t> low = std::nullopt);
  // get_protocol() is the endpoint's protocol (null once connection_lost() ran). Throws nothing.
  std::shared_ptr<DatagramProtocol> get_protocol() const noexcept;
  explicit operator bool() const noexcept { return t_ != nullptr; }

 private:
  std::shared_ptr<detail::datagram_transport> t_;
};

// datagram_endpoint_config is create_datagram_endpoint()'s keyword arguments.
struct datagram_endpoint_config {
  // local_addr: bind to it ({"0.0.0.0", 0}-style; a path for AF_UNIX). A
  // socket path that is a stale socket is replaced, any other file is not.
  std::optional<address> local_addr = std::nullopt;
  // remote_addr: connect to it (sendto() without an address goes there, and
  // only its datagrams arrive). Names are resolved as getaddrinfo() does (io/names.hpp).
  // With allow_broadcast the socket is not connected, as asyncio's: sendto()
  // without an address still goes to remote_addr, and datagrams from any
  // sender arrive (replies to a broadcast come from other addresses).
  std::optional<address> remote_addr = std::nullopt;
  // family: AF_INET, AF_INET6, AF_UNIX (then hosts are paths), or AF_UNSPEC
  // to take the addresses' family. Needed when neither address is given.
  int family = AF_UNSPEC;
  // reuse_port: SO_REUSEPORT, so several endpoints may bind one port.
  bool reuse_port = false;
  // allow_broadcast: SO_BROADCAST, to send to broadcast addresses; with
  // remote_addr, the socket is left unconnected (see remote_addr).
  bool allow_broadcast = false;
  // sock: an existing SOCK_DGRAM socket to use instead (owned from then
  // on, made non-blocking); the other options must then be left unset.
  int sock = -1;
};

namespace detail {
using datagram_protocol_factory = std::function<std::shared_ptr<DatagramProtocol>()>;
// open_datagram_endpoint(factory, config) makes the endpoint and returns
// once connection_made() has run. See create_datagram_endpoint().
DatagramTransport open_datagram_endpoint(const datagram_protocol_factory& factory,
                                         const datagram_endpoint_config& config);
}  // namespace detail

// create_datagram_endpoint(factory, config) is loop.create_datagram_endpoint(
// protocol_factory, local_addr=, remote_addr=, ...): it makes a datagram
// socket (trying each address the names resolve to, as asyncio), calls
// factory() for the protocol, waits until connection_made() has run, and
// returns the transport and the protocol. factory returns a
// std::shared_ptr<P> for a P derived from DatagramProtocol:
//
//   auto [t, p] = asyncio::create_datagram_endpoint(
//       [&] { return std::make_shared<EchoClientProtocol>(message, on_con_lost); },
//       {.remote_addr = asyncio::address{"127.0.0.1", 9999}});
//
// Throws ValueError (no address and no family; sock with addresses; sock
// not a datagram socket), OSError from socket()/bind()/connect() (the
// first failure if every address failed), gaierror, CancelledError (the
// endpoint is closed); RuntimeError outside a task of the running loop.
template <class Factory>
requires std::derived_from<typename std::invoke_result_t<Factory&>::element_type, DatagramProtocol>
auto create_datagram_endpoint(Factory&& factory, const datagram_endpoint_config& config = {})
    -> std::pair<DatagramTransport, std::invoke_result_t<Factory&>> {
  std::invoke_result_t<Factory&> protocol;
  DatagramTransport transport = detail::open_datagram_endpoint(
      [&]() -> std::shared_ptr<DatagramProtocol> {
        protocol = factory();
        return protocol;
      },
      config);
  return {std::move(transport), std::move(protocol)};
}

// create_datagram_endpoint<P>(config) is create_datagram_endpoint() with P's
// default constructor as the factory, as Python's create_datagram_endpoint(P, ...).
template <std::derived_from<DatagramProtocol> P>
std::pair<DatagramTransport, std::shared_ptr<P>> create_datagram_endpoint(const datagram_endpoint_config& config = {}) {
  return create_datagram_endpoint([] { return std::make_shared<P>(); }, config);
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
