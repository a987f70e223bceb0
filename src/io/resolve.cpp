// resolve.cpp: name resolution. getaddrinfo blocks, so names go to the
// loop's default executor (run_in_executor(nullptr), as asyncio's
// loop.getaddrinfo); numeric hosts (the common case here) resolve inline,
// without a round trip through a thread.
#include "io/resolve.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/executor.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/errors.hpp"
#include "greenlet/io/names.hpp"
#include "io/loop_resolver.hpp"

namespace greenlet::asyncio::detail {

namespace {

struct lookup {
  std::vector<addrinfo_entry> out;
  std::vector<resolved_address> raw;  // the same answers as socket addresses
  int rc = 0;
  int sys_errno = 0;  // errno, when rc is EAI_SYSTEM
};

lookup run_getaddrinfo(const std::string& host, const std::string& service, const addrinfo& hints) {
  addrinfo* list = nullptr;
  lookup result;
  result.rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  if (result.rc == EAI_SYSTEM) result.sys_errno = errno;
  if (result.rc != 0) return result;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    resolved_address a;
    a.family = ai->ai_family;
    a.len = ai->ai_addrlen;
    std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
    result.raw.push_back(a);
    result.out.push_back({ai->ai_family, ai->ai_socktype, ai->ai_protocol,
                          ai->ai_canonname != nullptr ? ai->ai_canonname : "",
                          format_address(ai->ai_addr, ai->ai_addrlen)});
  }
  ::freeaddrinfo(list);
  return result;
}

const char* eai_name(int rc) {
  switch (rc) {
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
    case EAI_SYSTEM: return "EAI_SYSTEM";
#ifdef EAI_NODATA
    case EAI_NODATA: return "EAI_NODATA";
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
#endif
    default: return "EAI_?";
  }
}

// failure(host, port, lookup) is the gaierror for a failed lookup: it
// names the host, getaddrinfo's reason and what to check.
gaierror failure(const std::string& host, const std::string& port, const lookup& result) {
  std::string reason = result.rc == EAI_SYSTEM ? std::strerror(result.sys_errno) : ::gai_strerror(result.rc);
  std::string hint;
  switch (result.rc) {
    case EAI_AGAIN:
      hint = "; the name server did not answer in time: check the network and /etc/resolv.conf, or retry";
      break;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_FAIL:
      hint = "; check the spelling of the host name, /etc/hosts and the DNS configuration (/etc/resolv.conf)";
      break;
    default: break;
  }
  return gaierror(
      "cannot resolve host '" + host + "' (port " + port + "): " + reason + " [" + eai_name(result.rc) + "]" + hint,
      result.rc);
}

}  // namespace

namespace {

void check_host_and_port(const std::string& host, int port, const char* call) {
  // Checked here, before getaddrinfo, which takes the port as text and
  // wraps it modulo 65536 (70000 listened on 4464) and cuts the host at a
  // NUL: Python raises OverflowError('bind(): port must be 0-65535.') and
  // ValueError('embedded null character') instead.
  if (port < 0 || port > 65535) {
    throw std::out_of_range(std::string(call) + ": port " + std::to_string(port) + " must be 0-65535");
  }
  if (host.find('\0') != std::string::npos) throw ValueError("embedded null character");
}

// lookup_anywhere(host, service, hints) answers a numeric host inline and
// sends a name to the loop's default executor: getaddrinfo may block for
// seconds (DNS), and the loop goes on meanwhile. Cancelling the task
// cancels the future, which cancels the job if it has not started; a job
// already running finishes on its thread and its outcome is dropped (the
// lambda owns copies of its arguments).
// A name goes to the loop's resolver instead if set_resolver() gave it one, unless the lookup is
// system_getaddrinfo()'s (by_loop_resolver false).
lookup lookup_anywhere(const std::string& host, const std::string& service, addrinfo hints,
                       bool by_loop_resolver = true) {
  addrinfo numeric = hints;
  numeric.ai_flags |= AI_NUMERICHOST;
  lookup result = run_getaddrinfo(host, service, numeric);
  if (result.rc == EAI_NONAME && !host.empty() && (hints.ai_flags & AI_NUMERICHOST) == 0) {
    event_loop& loop = get_running_loop();
    if (by_loop_resolver) {
      if (std::optional<resolver_answer> answer = ask_loop_resolver(loop.core(), host, service, hints)) {
        result.rc = 0;
        result.out = std::move(answer->entries);
        result.raw = std::move(answer->addresses);
        return result;
      }
    }
    Future<lookup> pending =
        run_in_executor(loop, nullptr, [host, service, hints] { return run_getaddrinfo(host, service, hints); });
    result = await(pending);
  }
  return result;
}

}  // namespace

std::vector<resolved_address> resolve(const std::string& host, int port, bool passive, int family, int socktype) {
  check_host_and_port(host, port, passive ? "bind()" : "connect()");
  const std::string service = std::to_string(port);
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV;
  lookup result = lookup_anywhere(host, service, hints);
  if (result.rc != 0) throw failure(host, service, result);
  if (result.raw.empty()) {
    throw gaierror("cannot resolve host '" + host + "' (port " + service + "): no " +
                       (socktype == SOCK_DGRAM ? "UDP" : "TCP") + " address",
                   EAI_NONAME);
  }
  return std::move(result.raw);
}

std::vector<resolved_address> resolve_for_family(const std::string& host, int port, int family, bool passive,
                                                 int socktype) {
  std::vector<resolved_address> out = resolve(host, port, passive, AF_UNSPEC, socktype);
  std::erase_if(out, [family](const resolved_address& a) { return a.family != family; });
  if (out.empty()) {
    throw gaierror("cannot resolve host '" + host + "' (port " + std::to_string(port) + "): no address of " +
                       (passive ? "the server's family " : "the socket's family ") + family_name(family),
                   EAI_FAMILY);
  }
  return out;
}

std::string family_name(int family) {
  switch (family) {
    case AF_UNIX: return "AF_UNIX";
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    default: return "family " + std::to_string(family);
  }
}

std::string host_port(const sockaddr* addr, socklen_t len) {
  const address a = format_address(addr, len);
  if (addr->sa_family == AF_UNIX) return a.host;
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a false positive) on the chain of
  // operator+ this was.
  std::string out;
  if (addr->sa_family == AF_INET6) {
    out += '[';
    out += a.host;
    if (a.scope_id != 0) {
      out += '%';
      out += std::to_string(a.scope_id);
    }
    out += ']';
  } else {
    out = a.host;
  }
  out += ':';
  out += std::to_string(a.port);
  return out;
}

void apply_ipv6_fields(resolved_address& out, const address& a) noexcept {
  if (out.family != AF_INET6) return;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  in6->sin6_flowinfo = htonl(a.flowinfo);
  if (a.scope_id != 0) in6->sin6_scope_id = a.scope_id;
}

namespace {

// zone_scope(zone, scope) reads an IPv6 zone ("eth0", or an index "2") into scope; false for an
// interface this host does not have (getaddrinfo() then gives the error).
bool zone_scope(const std::string& zone, std::uint32_t& scope) {
  if (const unsigned index = ::if_nametoindex(zone.c_str()); index != 0) {
    scope = index;
    return true;
  }
  if (zone.empty() || zone.size() > 9 || zone.find_first_not_of("0123456789") != std::string::npos) return false;
  scope = static_cast<std::uint32_t>(std::stoul(zone));
  return true;
}

}  // namespace

std::optional<resolved_address> numeric_address(const address& a, int family) {
  if (a.port < 0 || a.port > 65535) throw std::out_of_range("port " + std::to_string(a.port) + " must be 0-65535");
  if (a.host.find('\0') != std::string::npos) throw ValueError("embedded null character");
  resolved_address out;
  if (family != AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out.addr);
    if (::inet_pton(AF_INET, a.host.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons(static_cast<std::uint16_t>(a.port));
      out.family = AF_INET;
      out.len = sizeof(sockaddr_in);
      return out;
    }
  }
  if (family != AF_INET) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    // "fe80::1%eth0" or "fe80::1%2": the zone names the scope, as getaddrinfo() reads it.
    const std::size_t percent = a.host.find('%');
    std::uint32_t scope = a.scope_id;
    if (percent != std::string::npos && !zone_scope(a.host.substr(percent + 1), scope)) return std::nullopt;
    if (::inet_pton(AF_INET6, a.host.substr(0, percent).c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<std::uint16_t>(a.port));
      in6->sin6_flowinfo = htonl(a.flowinfo);
      in6->sin6_scope_id = scope;
      out.family = AF_INET6;
      out.len = sizeof(sockaddr_in6);
      return out;
    }
  }
  return std::nullopt;
}

resolved_address unix_address(const std::string& path, const char* call) {
  resolved_address out;
  auto* un = reinterpret_cast<sockaddr_un*>(&out.addr);
  if (path.size() >= sizeof un->sun_path) throw OSError(ENAMETOOLONG, std::string(call) + "(" + path + ")");
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
  out.family = AF_UNIX;
  out.len = sizeof(sockaddr_un);
  return out;
}

int socket_family(int fd) {
  int family = 0;
  socklen_t len = sizeof family;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0) raise_os_error(errno, "getsockopt(SO_DOMAIN)");
  return family;
}

int lookup_socktype(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) raise_os_error(errno, "getsockopt(SO_TYPE)");
  return type == SOCK_DGRAM ? SOCK_DGRAM : SOCK_STREAM;
}

resolved_address resolve_for_socket(int fd, const address& a, const char* call) {
  const int family = socket_family(fd);
  if (family == AF_UNIX) return unix_address(a.host, call);
  if (family != AF_INET && family != AF_INET6) {
    throw OSError(EAFNOSUPPORT, std::string(call) + "(" + a.host + "): not an AF_INET, AF_INET6 or AF_UNIX socket");
  }
  if (auto numeric = numeric_address(a, family)) return *numeric;
  resolved_address first = resolve_for_family(a.host, a.port, family, false, lookup_socktype(fd)).front();
  apply_ipv6_fields(first, a);
  return first;
}

void remove_stale_socket(const std::string& path) noexcept {
  struct stat st {};
  if (!path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

address format_address(const sockaddr* addr, socklen_t len) {
  address out;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    out.host = text;
    out.port = ntohs(in->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    out.host = text;
    out.port = ntohs(in6->sin6_port);
    out.flowinfo = ntohl(in6->sin6_flowinfo);
    out.scope_id = in6->sin6_scope_id;
  } else if (addr->sa_family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(addr);
    const std::size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    out.host.assign(un->sun_path, ::strnlen(un->sun_path, max));
  }
  return out;
}

}  // namespace greenlet::asyncio::detail

namespace greenlet::asyncio {

namespace {

std::vector<addrinfo_entry> getaddrinfo_with(const std::string& host, const std::string& service, addrinfo_hints hints,
                                             int extra_flags, bool by_loop_resolver = true) {
  addrinfo h{};
  h.ai_family = hints.family;
  h.ai_socktype = hints.type;
  h.ai_protocol = hints.proto;
  h.ai_flags = hints.flags | extra_flags;
  detail::lookup result = detail::lookup_anywhere(host, service, h, by_loop_resolver);
  if (result.rc != 0) throw detail::failure(host, service, result);
  return std::move(result.out);
}

}  // namespace

std::vector<addrinfo_entry> getaddrinfo(const std::string& host, int port, addrinfo_hints hints) {
  detail::check_host_and_port(host, port, "getaddrinfo()");
  return getaddrinfo_with(host, std::to_string(port), hints, AI_NUMERICSERV);
}

namespace {

void check_no_nul(const std::string& host, const std::string& service) {
  if (host.find('\0') != std::string::npos || service.find('\0') != std::string::npos) {
    throw ValueError("embedded null character");
  }
}

}  // namespace

std::vector<addrinfo_entry> getaddrinfo(const std::string& host, const std::string& service, addrinfo_hints hints) {
  check_no_nul(host, service);
  return getaddrinfo_with(host, service, hints, 0);
}

std::vector<addrinfo_entry> system_getaddrinfo(const std::string& host, const std::string& service,
                                               const addrinfo_hints& hints) {
  check_no_nul(host, service);
  return getaddrinfo_with(host, service, hints, 0, false);
}

std::pair<std::string, std::string> getnameinfo(const address& addr, int flags) {
  const std::optional<detail::resolved_address> a = detail::numeric_address(addr, AF_UNSPEC);
  if (!a) {
    throw ValueError("getnameinfo(): '" + addr.host +
                     "' is not a numeric IPv4 or IPv6 address (getaddrinfo() turns names into addresses)");
  }
  struct answer {
    int rc = 0;
    int sys_errno = 0;
    std::string host, service;
  };
  auto ask = [sa = *a, flags] {
    answer out;
    char host[NI_MAXHOST] = {};
    char service[NI_MAXSERV] = {};
    out.rc = ::getnameinfo(reinterpret_cast<const sockaddr*>(&sa.addr), sa.len, host, sizeof host, service,
                           sizeof service, flags);
    if (out.rc == EAI_SYSTEM) out.sys_errno = errno;
    out.host = host;
    out.service = service;
    return out;
  };
  // Numeric answers need no lookup: inline. Anything else may ask DNS or
  // read /etc/services: on the default executor.
  answer result = (flags & NI_NUMERICHOST) != 0 && (flags & NI_NUMERICSERV) != 0
                      ? ask()
                      : await(run_in_executor(get_running_loop(), nullptr, ask));
  if (result.rc != 0) {
    const std::string reason = result.rc == EAI_SYSTEM ? std::strerror(result.sys_errno) : ::gai_strerror(result.rc);
    throw gaierror("getnameinfo(" + detail::host_port(reinterpret_cast<const sockaddr*>(&a->addr), a->len) +
                       "): " + reason + " [" + detail::eai_name(result.rc) + "]",
                   result.rc);
  }
  return {std::move(result.host), std::move(result.service)};
}

}  // namespace greenlet::asyncio
