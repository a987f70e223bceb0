// io/names.hpp: asyncio's loop.getaddrinfo() and loop.getnameinfo(): name
// lookups that let the other tasks run. A numeric address is answered
// inline; a name goes to getaddrinfo()/getnameinfo() on the loop's default
// executor (they may block for seconds on DNS) while the calling task awaits.
//
//   for (const auto& a : asyncio::getaddrinfo("localhost", 80, {.type = SOCK_STREAM}))
//     connect_to(a.family, a.addr);                       // a.addr: address{"127.0.0.1", 80}, ...
//   auto [host, service] = asyncio::getnameinfo({"127.0.0.1", 22});  // {"localhost", "ssh"}
#pragma once

#include <netdb.h>  // AI_*, EAI_* and, through <netinet/in.h>, IPPROTO_*: the values of the hints and answers
#include <sys/socket.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "greenlet/io/address.hpp"
#include "greenlet/io/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// addrinfo_entry is one answer of getaddrinfo(), Python's 5-tuple
// (family, type, proto, canonname, sockaddr).
struct addrinfo_entry {
  // family: AF_INET or AF_INET6.
  int family = 0;
  // type: SOCK_STREAM, SOCK_DGRAM or SOCK_RAW.
  int type = 0;
  // proto: IPPROTO_TCP, IPPROTO_UDP, ...
  int proto = 0;
  // canonname: the canonical name, with AI_CANONNAME in the first answer only; else empty.
  std::string canonname;
  // addr: the address and port (IPv6 scope and flow information are not kept).
  address addr;
};

// addrinfo_hints is getaddrinfo()'s keyword arguments, as Python's.
struct addrinfo_hints {
  // family: AF_INET, AF_INET6, or AF_UNSPEC for both.
  int family = AF_UNSPEC;
  // type: SOCK_STREAM, SOCK_DGRAM, or 0 for every type.
  int type = 0;
  // proto: a protocol number, or 0 for any.
  int proto = 0;
  // flags: AI_* flags (AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, ...).
  int flags = 0;
};

// getaddrinfo(host, port, hints) is `await loop.getaddrinfo(host, port,
// family=, type=, proto=, flags=)`: the addresses host resolves to, in
// getaddrinfo()'s order (or the loop's resolver's, see set_resolver()). An empty host is Python's None (with
// AI_PASSIVE: the wildcard address, else loopback). Throws gaierror (the message names the host, the reason and what to
// check), std::out_of_range for a port outside 0-65535, ValueError for a NUL in host, CancelledError (a lookup already
// running finishes on its thread); RuntimeError outside a task.
std::vector<addrinfo_entry> getaddrinfo(const std::string& host, int port, addrinfo_hints hints = {});
// getaddrinfo(host, service, hints) takes the port as a service name ("http") or number text. Throws as above.
std::vector<addrinfo_entry> getaddrinfo(const std::string& host, const std::string& service, addrinfo_hints hints = {});

class event_loop;

// resolver_fn is a loop's own answer to host names, in place of the system's getaddrinfo() (see
// set_resolver()): resolver(host, service, hints) returns host's addresses, in the order to use them.
using resolver_fn = std::function<std::vector<addrinfo_entry>(const std::string& host, const std::string& service,
                                                              const addrinfo_hints& hints)>;

// set_resolver(loop, fn) makes fn answer every host name looked up in loop's tasks: what Python
// code does by overriding loop.getaddrinfo() in a loop of its own (a DNS cache, a DNS client,
// service discovery, a fixed table in tests). getaddrinfo() asks it, and so do the lookups of
// open_connection(), create_connection(), start_server(), create_server(),
// create_datagram_endpoint(), sock_connect() and sock_sendto() (a connect_options.resolver, when
// given, answers for its own call first). fn runs in the task that looks up, so it may await.
// Its arguments: host, a name (numeric hosts, "" and AI_NUMERICHOST lookups are answered
// without it); service, the port as decimal text ("443") or the service name given to
// getaddrinfo(host, service); hints, as given (the library's own lookups ask for SOCK_STREAM).
// Its answers hold numeric addresses with their ports; family 0 is the address's, type 0 takes
// hints.type. Answers of a family or type other than the hints' are dropped; none left is
// gaierror (EAI_NONAME), a name as an answer's address ValueError; what fn throws comes out of
// the lookup. Inside fn, system_getaddrinfo() is Python's super().getaddrinfo(); a lookup that
// would ask fn again from within fn in the same task is RuntimeError, not endless recursion.
// nullptr goes back to the system's getaddrinfo(). Closing the loop drops fn. Loop thread only;
// RuntimeError if loop is closed or on another thread.
void set_resolver(event_loop& loop, resolver_fn fn);
// get_resolver(loop) is the resolver set_resolver() gave loop, empty if none (a new resolver may
// pass on to it): a copy. Throws std::bad_alloc only; any thread.
resolver_fn get_resolver(event_loop& loop);
// system_getaddrinfo(host, service, hints) is getaddrinfo() without the loop's resolver: the
// system's getaddrinfo() on the default executor (numeric hosts inline), Python's
// super().getaddrinfo() from a loop's override. Throws as getaddrinfo().
std::vector<addrinfo_entry> system_getaddrinfo(const std::string& host, const std::string& service,
                                               const addrinfo_hints& hints = {});

// getnameinfo(addr, flags) is `await loop.getnameinfo((host, port), flags)`:
// the host name and service name of a numeric address (NI_NUMERICHOST,
// NI_NUMERICSERV, NI_NAMEREQD, NI_DGRAM as flags). Throws gaierror (NI_NAMEREQD
// and no name), ValueError if addr.host is not a numeric address,
// std::out_of_range for the port, CancelledError; RuntimeError outside a task.
std::pair<std::string, std::string> getnameinfo(const address& addr, int flags = 0);

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
