// resolve.cpp: name resolution. getaddrinfo blocks, so names go to a
// helper thread; numeric hosts (the common case here) resolve inline.
#include "io/resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/errors.hpp"

namespace greenlet::asyncio::detail {

namespace {

struct lookup {
  std::vector<resolved_address> out;
  int rc = 0;
};

lookup run_getaddrinfo(const std::string& host, const std::string& port, bool passive, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags | (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  lookup result;
  result.rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &list);
  if (result.rc != 0) return result;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    resolved_address a;
    a.family = ai->ai_family;
    a.len = ai->ai_addrlen;
    std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
    result.out.push_back(a);
  }
  ::freeaddrinfo(list);
  return result;
}

// The helper thread shares only this block (through an atomic shared_ptr
// count) with the task; `waiter` is touched on the loop thread alone.
struct pending_lookup {
  lookup result;
  future_state* waiter = nullptr;
};

}  // namespace

std::vector<resolved_address> resolve(const std::string& host, int port, bool passive) {
  const std::string service = std::to_string(port);
  lookup result = run_getaddrinfo(host, service, passive, AI_NUMERICHOST);
  if (result.rc == EAI_NONAME) {
    event_loop& loop = get_running_loop();
    auto shared = std::make_shared<pending_lookup>();
    Future<void> done = loop.create_future<void>();
    shared->waiter = done.state();
    event_loop::external_work_guard busy(loop);
    std::thread worker([shared, host, service, passive, core = loop.core()] {
      shared->result = run_getaddrinfo(host, service, passive, AI_ADDRCONFIG);
      try {
        core->call_soon_threadsafe([shared] {
          if (shared->waiter != nullptr && !shared->waiter->done()) {
            static_cast<future_value<void>*>(shared->waiter)->set_result();
          }
        });
      } catch (...) {
        // The loop is closing; the task that waited is being unwound.
      }
    });
    // Join on every way out, cancellation included: the thread uses the
    // loop, which must outlive it. getaddrinfo's own timeouts bound this.
    struct joiner {
      std::thread& t;
      std::shared_ptr<pending_lookup>& s;
      ~joiner() {
        s->waiter = nullptr;
        t.join();
      }
    } guard{worker, shared};
    await(done);
    result = std::move(shared->result);
  }
  if (result.rc != 0) {
    throw gaierror("getaddrinfo(" + host + ", " + service + "): " + ::gai_strerror(result.rc));
  }
  if (result.out.empty()) throw gaierror("getaddrinfo(" + host + "): no addresses");
  return std::move(result.out);
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
  } else if (addr->sa_family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(addr);
    const std::size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    out.host.assign(un->sun_path, ::strnlen(un->sun_path, max));
  }
  return out;
}

}  // namespace greenlet::asyncio::detail
