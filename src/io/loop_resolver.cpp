// loop_resolver.cpp: set_resolver()'s registry of loop resolvers, and the
// checks on a resolver's answers (a loop's, or a connect_options::resolver). Process-wide (loops of several threads may
// have one), keyed by the loop's core, and guarded by a mutex that is never held while a resolver runs: a resolver
// awaits, and other tasks look up meanwhile.
#include "io/loop_resolver.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/fiber/greenlet.hpp"
#include "greenlet/io/errors.hpp"

namespace greenlet::asyncio {

namespace detail {

namespace {

struct resolver_entry {
  // Shared, so that a lookup holds the resolver it called while a set_resolver() replaces it.
  std::shared_ptr<const resolver_fn> fn;
  std::uint64_t close_hook = 0;  // the loop's close hook that removes the entry
};

std::mutex registry_mutex;

// A map, not a hash table: nothing of it stays allocated once the last loop with a resolver closes.
std::map<loop_core*, resolver_entry>& registry() {
  static std::map<loop_core*, resolver_entry> r;
  return r;
}

std::shared_ptr<const resolver_fn> resolver_of(loop_core* core) {
  std::lock_guard lock(registry_mutex);
  const auto it = registry().find(core);
  return it == registry().end() ? nullptr : it->second.fn;
}

// take_entry(core) removes core's entry and returns it (empty if none).
resolver_entry take_entry(loop_core* core) {
  std::lock_guard lock(registry_mutex);
  const auto it = registry().find(core);
  if (it == registry().end()) return {};
  resolver_entry entry = std::move(it->second);
  registry().erase(it);
  return entry;
}

// resolver_call_guard marks the calling greenlet as inside a loop resolver for its lifetime, and
// refuses a second mark: a lookup of that greenlet from within the resolver would ask it again,
// and recurse until the stack overflows. The marks of this thread's greenlets form a list threaded
// through the guards on their stacks (several tasks may be inside resolvers at once, each awaiting),
// so marking allocates nothing.
class resolver_call_guard {
 public:
  explicit resolver_call_guard(const std::string& host) : self_(::greenlet::getcurrent().impl()) {
    for (const resolver_call_guard* g = first; g != nullptr; g = g->next_) {
      if (g->self_ == self_) {
        throw RuntimeError(asyncio_errc::resolver_recursion,
                           "looking up host '" + host +
                               "' from within the loop's resolver would ask that resolver again, without end: a "
                               "resolver looks names up with asyncio::system_getaddrinfo() (Python's "
                               "super().getaddrinfo()) or with a resolver of its own");
      }
    }
    next_ = first;
    if (next_ != nullptr) next_->prev_ = this;
    first = this;
  }
  resolver_call_guard(const resolver_call_guard&) = delete;
  resolver_call_guard& operator=(const resolver_call_guard&) = delete;
  ~resolver_call_guard() {
    (prev_ != nullptr ? prev_->next_ : first) = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
  }

 private:
  static thread_local resolver_call_guard* first;
  ::greenlet::detail::greenlet_impl* self_;
  resolver_call_guard* prev_ = nullptr;
  resolver_call_guard* next_ = nullptr;
};

thread_local resolver_call_guard* resolver_call_guard::first = nullptr;

// matches(wanted, answered) is whether an answer's type or protocol suits the hint (0: any).
bool matches(int wanted, int answered) { return wanted == 0 || answered == wanted; }

}  // namespace

resolver_answer check_resolver_answer(const std::string& who, const std::string& host, const std::string& service,
                                      const addrinfo_hints& hints, std::vector<addrinfo_entry> entries) {
  resolver_answer out;
  bool other_type = false;  // an answer dropped for its type or protocol
  for (addrinfo_entry& entry : entries) {
    const std::optional<resolved_address> a = numeric_address(entry.addr, AF_UNSPEC);
    if (!a) {
      throw ValueError(who + " answered \"" + entry.addr.host + "\" for host '" + host +
                       "': a resolver returns numeric addresses (\"192.0.2.1\", \"2001:db8::1\")");
    }
    if (entry.family == 0) entry.family = a->family;
    if (entry.family != a->family) {
      throw ValueError(who + " answered " + entry.addr.host + " as " + family_name(entry.family) + " for host '" +
                       host + "': an answer's family is its address's (" + family_name(a->family) + "), or 0");
    }
    if (entry.type == 0) entry.type = hints.type;
    if (entry.proto == 0) entry.proto = hints.proto;
    if (hints.family != AF_UNSPEC && entry.family != hints.family) continue;
    if (!matches(hints.type, entry.type) || !matches(hints.proto, entry.proto)) {
      other_type = true;
      continue;
    }
    out.addresses.push_back(*a);
    out.entries.push_back(std::move(entry));
  }
  if (out.entries.empty()) {
    throw gaierror("cannot resolve host '" + host + "' (port " + service + "): " + who + " returned no address" +
                       (hints.family == AF_UNSPEC ? "" : " of family " + family_name(hints.family)) +
                       (other_type ? ", only answers of another type or protocol" : ""),
                   EAI_NONAME);
  }
  return out;
}

std::optional<resolver_answer> ask_loop_resolver(loop_core* core, const std::string& host, const std::string& service,
                                                 const addrinfo& hints) {
  const std::shared_ptr<const resolver_fn> fn = resolver_of(core);
  if (!fn) return std::nullopt;
  const addrinfo_hints asked{hints.ai_family, hints.ai_socktype, hints.ai_protocol, hints.ai_flags};
  std::vector<addrinfo_entry> entries;
  {
    resolver_call_guard guard(host);
    entries = (*fn)(host, service, asked);
  }
  return check_resolver_answer("the loop's resolver", host, service, asked, std::move(entries));
}

}  // namespace detail

void set_resolver(event_loop& loop, resolver_fn fn) {
  detail::loop_core* core = loop.core();
  core->check_loop_thread();
  core->check_open();
  if (!fn) {
    const detail::resolver_entry old = detail::take_entry(core);
    if (old.close_hook != 0) core->remove_close_hook(old.close_hook);
    return;
  }
  auto shared = std::make_shared<const resolver_fn>(std::move(fn));
  {
    std::lock_guard lock(detail::registry_mutex);
    if (const auto it = detail::registry().find(core); it != detail::registry().end()) {
      // The old resolver goes when `shared` does, after the lock: its captures' destructors may do anything.
      it->second.fn.swap(shared);
      return;
    }
  }
  // The hook holds the core, not the event_loop: it may run after the event_loop is gone.
  const std::uint64_t hook = core->add_close_hook([core] { detail::take_entry(core); });
  std::lock_guard lock(detail::registry_mutex);
  detail::registry()[core] = detail::resolver_entry{std::move(shared), hook};
}

resolver_fn get_resolver(event_loop& loop) {
  const std::shared_ptr<const resolver_fn> fn = detail::resolver_of(loop.core());
  return fn ? *fn : resolver_fn();
}

}  // namespace greenlet::asyncio
