// tcp_connect.cpp: a TCP client socket connected to one of a host's addresses (see
// tcp_connect.hpp). The Happy Eyeballs race runs each attempt as a task of its own, so that an
// address that drops packets does not hold the others up.
#include "io/tcp_connect.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/asyncio/taskgroup.hpp"
#include "greenlet/asyncio/tasks.hpp"
#include "greenlet/errors.hpp"
#include "greenlet/io/errors.hpp"
#include "greenlet/io/socket.hpp"
#include "io/loop_resolver.hpp"
#include "io/owned_fd.hpp"

namespace greenlet::asyncio::detail {

namespace {

// bind_local(fd, family, locals, addr, len) binds fd, about to connect to addr, to the first of
// locals in fd's family, as asyncio's _connect_sock(): the others are skipped; if every bind
// fails, the last failure is raised, naming the address; if none is of the family, OSError
// (EAFNOSUPPORT) "no matching local address".
void bind_local(int fd, int family, const std::vector<resolved_address>& locals, const sockaddr* addr, socklen_t len) {
  int err = 0;
  std::string failed;
  for (const resolved_address& l : locals) {
    if (l.family != family) continue;
    const auto* local = reinterpret_cast<const sockaddr*>(&l.addr);
    if (::bind(fd, local, l.len) == 0) return;
    err = errno;
    failed = host_port(local, l.len);
  }
  if (err != 0) raise_os_error(err, "error while attempting to bind on address " + failed + " (local_addr)");
  throw OSError(EAFNOSUPPORT, "no matching local address with family=" + family_name(family) + " found to connect to " +
                                  host_port(addr, len) + ": local_addr has no address of that family");
}

// connect_from(a, locals) is connect_socket() to a, bound first to one of locals if given. The
// socket is closed if it does not connect, cancellation included.
int connect_from(const resolved_address& a, const std::vector<resolved_address>* locals) {
  const auto* addr = reinterpret_cast<const sockaddr*>(&a.addr);
  owned_fd fd{::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) raise_os_error(errno, "socket");
  if (locals != nullptr) bind_local(fd.fd, a.family, *locals, addr, a.len);
  sock_connect(fd.fd, addr, a.len);
  if (a.family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd.release();
}

void check_options(const connect_options& options) {
  if (options.family != AF_UNSPEC && options.family != AF_INET && options.family != AF_INET6) {
    throw ValueError("connect_options.family must be AF_INET, AF_INET6 or AF_UNSPEC (both), not " +
                     std::to_string(options.family) + "; a Unix-domain socket is open_unix_connection()'s");
  }
  if (options.happy_eyeballs_delay && !(*options.happy_eyeballs_delay >= 0)) {
    throw ValueError(
        "connect_options.happy_eyeballs_delay must be a number of seconds >= 0 (RFC 8305 recommends "
        "0.25), or unset to try the addresses one at a time");
  }
  if (options.interleave && *options.interleave < 0) {
    throw ValueError("connect_options.interleave must be >= 0 (0 keeps getaddrinfo()'s order), not " +
                     std::to_string(*options.interleave));
  }
}

// ask_resolver(host, port, options) is options.resolver's answer for the name host, as socket
// addresses of options.family (any if AF_UNSPEC), checked as a loop resolver's are.
std::vector<resolved_address> ask_resolver(const std::string& host, int port, const connect_options& options) {
  std::vector<addrinfo_entry> entries;
  for (address& a : options.resolver(host, port)) entries.push_back({0, 0, 0, "", std::move(a)});
  return check_resolver_answer("connect_options.resolver", host, std::to_string(port),
                               {.family = options.family, .type = SOCK_STREAM}, std::move(entries))
      .addresses;
}

// lookup(host, port, passive, options) is host's addresses: through options.resolver for a name
// if there is one, else resolve().
std::vector<resolved_address> lookup(const std::string& host, int port, bool passive, const connect_options& options) {
  if (!options.resolver || host.empty() || numeric_address(address{host, port}, AF_UNSPEC)) {
    return resolve(host, port, passive, options.family);
  }
  return ask_resolver(host, port, options);
}

// raise_all_failed(errors, all_errors) throws what a connection that failed on every address
// raises (errors in the order the attempts started, none null).
[[noreturn]] void raise_all_failed(std::vector<std::exception_ptr> errors, bool all_errors) {
  if (all_errors) throw ExceptionGroup("create_connection failed", std::move(errors));
  std::rethrow_exception(errors.back());
}

// One attempt of a race: the socket it connected, or the OSError it failed with.
struct attempt_outcome {
  int fd = -1;
  std::exception_ptr error;
};

// race_state is what the attempt tasks share with the race: the addresses, and whether the race
// is over, after which an attempt that still connects closes its socket itself.
struct race_state {
  std::vector<resolved_address> addrs;
  std::optional<std::vector<resolved_address>> locals;
  bool over = false;
};

// happy_eyeballs(state, delay, peer, all_errors) is staggered_race() over connect_from(): see
// connect_options::happy_eyeballs_delay. It returns only once every attempt it started is done.
int happy_eyeballs(const std::shared_ptr<race_state>& state, double delay, resolved_address& peer, bool all_errors) {
  event_loop& loop = get_running_loop();
  const std::size_t n = state->addrs.size();
  std::vector<Task<attempt_outcome>> attempts;
  attempts.reserve(n);
  std::vector<std::exception_ptr> errors(n);
  std::vector<bool> seen(n, false);
  double last_started = 0;
  const auto start_next = [&] {
    const std::size_t i = attempts.size();
    attempts.push_back(loop.create_task([state, i]() -> attempt_outcome {
      try {
        const int fd = connect_from(state->addrs[i], state->locals ? &*state->locals : nullptr);
        if (state->over) {  // connected after another attempt won: nobody will take it
          ::close(fd);
          return {};
        }
        return {fd, nullptr};
      } catch (const OSError&) {
        return {-1, std::current_exception()};
      }
    }));
    last_started = loop.time();
  };
  // finish(winner) ends the race: every other attempt is cancelled and awaited, and a socket one
  // of them connected meanwhile is closed. A cancel of this task meanwhile is kept for later.
  const auto finish = [&](std::optional<std::size_t> winner) {
    state->over = true;
    std::exception_ptr cancelled;
    for (std::size_t i = 0; i < attempts.size(); ++i) {
      if (winner == i) continue;
      if (!attempts[i].done()) {
        if (auto c = cancel_and_wait(attempts[i].state(), "")) cancelled = c;
      }
      if (attempts[i].cancelled()) continue;
      if (attempts[i].exception()) continue;  // retrieved, so the loop does not report it
      if (const int fd = attempts[i].result().fd; fd >= 0) ::close(fd);
    }
    return cancelled;
  };
  int fd = -1;
  try {
    start_next();
    while (true) {
      bool previous_failed = false;
      for (std::size_t i = 0; i < attempts.size(); ++i) {
        if (seen[i] || !attempts[i].done()) continue;
        seen[i] = true;
        attempt_outcome outcome = attempts[i].result();  // another exception than OSError ends the race
        if (outcome.fd >= 0) {
          fd = outcome.fd;
          peer = state->addrs[i];
          if (auto cancelled = finish(i)) {
            ::close(fd);
            std::rethrow_exception(cancelled);
          }
          return fd;
        }
        errors[i] = outcome.error;
        if (i + 1 == attempts.size()) previous_failed = true;
      }
      const bool all_started = attempts.size() == n;
      if (all_started && std::find(seen.begin(), seen.end(), false) == seen.end()) break;
      if (!all_started && (previous_failed || loop.time() >= last_started + delay)) {
        start_next();
        continue;
      }
      std::vector<Task<attempt_outcome>> running;
      for (std::size_t i = 0; i < attempts.size(); ++i) {
        if (!seen[i]) running.push_back(attempts[i]);
      }
      std::optional<double> timeout;  // an infinite delay: only a failure starts the next
      if (!all_started && std::isfinite(delay)) timeout = last_started + delay - loop.time();
      (void)wait(running, timeout, FIRST_COMPLETED);
    }
  } catch (const GreenletExit&) {
    // The loop is being torn down and this task killed: no waiting now. The attempts are the
    // loop's tasks too, killed in turn, and close their sockets as they unwind.
    state->over = true;
    throw;
  } catch (...) {
    if (fd >= 0) throw;  // finish() already ran
    const std::exception_ptr first = std::current_exception();
    finish(std::nullopt);
    std::rethrow_exception(first);
  }
  raise_all_failed(std::move(errors), all_errors);
}

// interleave_by_family(addrs, first_family_count) is asyncio's _interleave_addrinfos():
// first_family_count addresses of the family addrs starts with, then one address of each family
// in turn, families in the order they first appear. 0 returns addrs as they are.
std::vector<resolved_address> interleave_by_family(const std::vector<resolved_address>& addrs,
                                                   std::size_t first_family_count) {
  if (first_family_count == 0 || addrs.empty()) return addrs;
  std::vector<std::vector<resolved_address>> by_family;
  for (const resolved_address& a : addrs) {
    auto it = std::find_if(by_family.begin(), by_family.end(), [&](const std::vector<resolved_address>& group) {
      return group.front().family == a.family;
    });
    if (it == by_family.end()) {
      by_family.push_back({a});
    } else {
      it->push_back(a);
    }
  }
  std::vector<resolved_address> out;
  out.reserve(addrs.size());
  std::vector<std::size_t> taken(by_family.size(), 0);
  taken[0] = std::min(first_family_count - 1, by_family[0].size());
  out.insert(out.end(), by_family[0].begin(), by_family[0].begin() + static_cast<std::ptrdiff_t>(taken[0]));
  while (out.size() < addrs.size()) {
    for (std::size_t f = 0; f < by_family.size(); ++f) {
      if (taken[f] < by_family[f].size()) out.push_back(by_family[f][taken[f]++]);
    }
  }
  return out;
}

// connect_first(addrs, locals, options, peer) is connect_tcp() once the addresses are known:
// addrs in the order to try (interleaved already), each socket bound first to one of *locals if
// locals is not null. Throws the last address's error, or with options.all_errors an
// ExceptionGroup of all of them; CancelledError once every attempt it started is over.
int connect_first(const std::vector<resolved_address>& addrs, const std::vector<resolved_address>* locals,
                  const connect_options& options, resolved_address& peer) {
  if (addrs.empty()) throw ValueError("connect_first(): no address to connect to");
  if (options.happy_eyeballs_delay) {
    auto state = std::make_shared<race_state>();
    state->addrs = addrs;
    if (locals != nullptr) state->locals = *locals;
    return happy_eyeballs(state, *options.happy_eyeballs_delay, peer, options.all_errors);
  }
  std::vector<std::exception_ptr> errors;
  for (const resolved_address& a : addrs) {
    try {
      const int fd = connect_from(a, locals);
      peer = a;
      return fd;
    } catch (const OSError&) {
      errors.push_back(std::current_exception());
    }
  }
  raise_all_failed(std::move(errors), options.all_errors);
}

}  // namespace

int connect_socket(int family, const sockaddr* addr, socklen_t len) {
  resolved_address a;
  a.family = family;
  a.len = len;
  std::memcpy(&a.addr, addr, len);
  return connect_from(a, nullptr);
}

int connect_tcp(const std::string& host, int port, const connect_options& options, resolved_address& peer) {
  check_options(options);
  std::vector<resolved_address> addrs = lookup(host, port, false, options);
  std::vector<resolved_address> locals;
  // Passive: an empty host is the wildcard address of each family, any local interface.
  if (options.local) locals = lookup(options.local->host, options.local->port, true, options);
  const int interleave = options.interleave.value_or(options.happy_eyeballs_delay ? 1 : 0);
  if (interleave > 0) addrs = interleave_by_family(addrs, static_cast<std::size_t>(interleave));
  return connect_first(addrs, options.local ? &locals : nullptr, options, peer);
}

}  // namespace greenlet::asyncio::detail
