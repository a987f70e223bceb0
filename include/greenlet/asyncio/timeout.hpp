// asyncio/timeout.hpp: asyncio.timeout()/timeout_at() scopes and shield().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/call_graph.hpp"
#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/task.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// Timeout is the scope object of timeout()/timeout_at() (asyncio.Timeout):
// at its deadline the task running the scope is cancelled, and the scope
// turns that cancellation into TimeoutError. Nested scopes behave as in
// asyncio: only the scope whose deadline fired converts the cancellation.
// Use it through timeout()/timeout_at(), whose body may take the Timeout&
// (for reschedule()): they call exit(). A Timeout declared as a plain local
// scope cannot convert: its destructor cannot replace the exception passing
// through it, so the scope then ends in CancelledError.
// Not thread-safe: a task of the loop thread only.
class Timeout {
 public:
  // Timeout(when) enters the scope in the running task; RuntimeError outside
  // one, RuntimeError if the loop is closed. A deadline of nullopt means none
  // (until reschedule()). A task of the loop thread only.
  explicit Timeout(std::optional<double> when);
  ~Timeout();
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  // when() is the deadline on the loop's clock (nullopt: none). Throws nothing; loop thread only.
  std::optional<double> when() const noexcept { return when_; }
  // reschedule(when) moves the deadline (nullopt: none). Throws RuntimeError after the deadline
  // fired or the scope ended. Loop thread only.
  void reschedule(std::optional<double> when);
  // expired() is true once the deadline passed and cancelled the scope. Throws nothing; loop
  // thread only.
  bool expired() const noexcept { return state_ == state::expiring || state_ == state::expired; }

  // Internal: leaves the scope. With the exception leaving the body, throws
  // TimeoutError if this scope's deadline caused it; otherwise returns. A task
  // of the loop thread only.
  void exit(std::exception_ptr error);

 private:
  enum class state { entered, expiring, expired, exited };
  void cancel_timer() noexcept;

  detail::task_state* task_;
  detail::callback_node* timer_ = nullptr;
  std::optional<double> when_;
  int cancelling_at_entry_;
  state state_ = state::entered;
};

namespace detail {
// call_timeout_body(body, scope) is body(scope) if body takes the Timeout&, else body(), with the
// result as body returns it (a reference stays one).
template <class F>
decltype(auto) call_timeout_body(F& body, Timeout& scope) {
  if constexpr (std::is_invocable_v<F&, Timeout&>) {
    return std::invoke(body, scope);
  } else if constexpr (std::is_invocable_v<F&>) {
    return std::invoke(body);
  }  // else: timeout_at()'s static_assert names the fix
}
}  // namespace detail

// timeout_at(when, body) runs body() (or body(Timeout&)) in the calling task
// and raises TimeoutError if it is still running at loop time `when`:
//   auto data = asyncio::timeout_at(loop.time() + 1.0, [&] { return fetch(); });
// Returns what body returns, with its type: a body returning Item& returns a
// reference to the same Item (`-> Item& { return table.at(k); }`), as the
// value of an `async with` block is the object itself in Python; void gives
// void. A value body returns is moved out. Throws TimeoutError, body's own
// exceptions, and RuntimeError outside a task. A task of the loop thread only.
template <class F>
decltype(auto) timeout_at(std::optional<double> when, F&& body) {
  detail::reject_uncallable_functor<std::is_invocable_v<F&> || std::is_invocable_v<F&, Timeout&>, F>();
  static_assert(std::is_invocable_v<F&> || std::is_invocable_v<F&, Timeout&> || detail::has_call_operator<F>,
                "asyncio::timeout(delay, body) / timeout_at(when, body): body must be a callable taking no "
                "arguments or a Timeout&, not the result of a call: write timeout(1.0, [&] { return fetch(1); }), "
                "not timeout(1.0, fetch(1))");
  using R = decltype(detail::call_timeout_body(body, std::declval<Timeout&>()));
  Timeout scope(when);
  try {
    if constexpr (std::is_void_v<R>) {
      detail::call_timeout_body(body, scope);
      scope.exit(nullptr);
    } else {
      R result = detail::call_timeout_body(body, scope);
      scope.exit(nullptr);
      // A reference comes back as the same reference (an rvalue one as an
      // rvalue); a value is moved (or elided) out.
      if constexpr (std::is_reference_v<R>) {
        return static_cast<R>(result);
      } else {
        return result;
      }
    }
  } catch (...) {
    scope.exit(std::current_exception());  // throws TimeoutError if it is ours
    throw;
  }
}

// timeout(delay, body) is timeout_at(loop.time() + delay, body); nullopt
// means no deadline. Returns what body returns, references included, as
// timeout_at(). Throws as timeout_at(); a task of the loop thread only.
template <class F>
decltype(auto) timeout(std::optional<double> delay, F&& body) {
  std::optional<double> when;
  if (delay) when = get_running_loop().time() + *delay;
  return timeout_at(when, std::forward<F>(body));
}

namespace detail {

// shield_link is what a shield's outer future knows of its inner one: the inner future and the id
// of the callback that completes outer, for as long as that callback is registered (its
// shield_registration clears `inner` when it is destroyed: after it ran, when removed, or with an
// inner future dropped while pending). So outer refers to inner without owning it, and the two
// pending together are no reference cycle.
struct shield_link {
  future_state* inner = nullptr;
  std::uint64_t callback_id = 0;
};
// shield_registration is held, shared, by inner's done callback; its last copy unlinks. It also
// ends the call graph's record that the task which called shield() awaits inner (`caller`, null if
// none), which asyncio keeps until inner is done: here until nothing follows inner any more.
// The registration may outlive inner (a closed loop drops inner's callbacks after inner went): it
// holds `loop`, where the record is, inner being only its key.
struct shield_registration {
  std::shared_ptr<shield_link> link;
  future_state* caller = nullptr;
  loop_core* loop = nullptr;
  shield_registration(std::shared_ptr<shield_link> l, future_state* c, loop_core* on) noexcept
      : link(std::move(l)), caller(c), loop(on) {
    retain(loop);
  }
  shield_registration(const shield_registration&) = delete;
  shield_registration& operator=(const shield_registration&) = delete;
  ~shield_registration() {
    discard_awaited_by(loop, link->inner, caller);
    link->inner = nullptr;
    release(loop);
  }
};

// forget_inner(link) is asyncio's _outer_done_callback: once outer is done while inner is still
// pending, inner's callback is removed, so an exception inner raises later is nobody's and the loop
// reports it ("Task exception was never retrieved") when inner goes, as asyncio's does.
inline void forget_inner(shield_link& link) noexcept {
  if (link.inner != nullptr && !link.inner->done()) link.inner->remove_done_callback(link.callback_id);
}

// shield_result<moved>(in) is what the outer future gets of inner's result: moved out when inner is
// the shield's own task (`moved`) or T cannot be copied (as gather() and await() of a temporary take
// a move-only result), copied otherwise (others may read inner too).
template <bool moved, class T>
decltype(auto) shield_result(Future<T>& in) {
  if constexpr (moved || !std::is_copy_constructible_v<T>) {
    return std::move(in.result());
  } else {
    return in.result();
  }
}

// follow_inner<moved>(outer, in) is asyncio's _inner_done_callback: outer takes inner's outcome. If
// outer was cancelled meanwhile, inner had finished before forget_inner() could detach this (the
// same loop turn): asyncio then marks inner's exception retrieved, and so does this.
template <bool moved, class T>
void follow_inner(Future<T>& outer, Future<T>& in) {
  if (outer.cancelled()) {
    if (!in.cancelled()) (void)in.exception();
    return;
  }
  if (in.cancelled()) {
    outer.cancel();
  } else if (auto error = in.exception()) {
    outer.set_exception(error);
  } else if constexpr (std::is_void_v<T>) {
    outer.set_result();
  } else {
    outer.set_result(shield_result<moved>(in));
  }
}

// shield_future<moved>(inner) is shield(inner); `moved`: inner is the shield's own task, whose
// result nobody else reads.
template <bool moved, class T>
Future<T> shield_future(Future<T> inner) {
  if (inner.done()) return inner;
  // outer is a future of inner's loop, as asyncio's (futures._get_loop(inner)): so a shield can be
  // made before that loop runs (Python's tests shield a future, then run_until_complete() it), and
  // one made while another loop runs does not take that loop's.
  loop_core* loop = inner.state()->loop();
  loop->check_loop_thread();
  Future<T> outer(new future_value<T>(loop));
  auto link = std::make_shared<shield_link>();
  link->inner = inner.state();
  future_state* caller = link_caller_as_awaiting(inner.state());
  std::shared_ptr<shield_registration> registration;
  try {
    registration = std::make_shared<shield_registration>(link, caller, loop);
  } catch (...) {
    discard_awaited_by(loop, inner.state(), caller);
    throw;
  }
  link->callback_id =
      inner.add_done_callback([outer, registration](Future<T>& in) mutable { follow_inner<moved>(outer, in); });
  outer.add_done_callback([link](Future<T>&) { forget_inner(*link); });
  return outer;
}

}  // namespace detail

// shield(f) returns a future that follows f but whose cancellation does not
// cancel f: `await(shield(t))` in a task that gets cancelled raises
// CancelledError there while t goes on. A function is run as a task first.
// Once the shield is done (cancelled) while f still runs, f is on its own, as
// asyncio's: an exception f raises later is reported through the loop's
// exception handler ("Task exception was never retrieved") unless something
// else retrieves it. A result that cannot be copied is moved from f into the
// shield (as gather() takes one): read it from the shield, not from f.
// The shield is a future of f's loop, which need not be running (as asyncio's). Throws RuntimeError
// (wrong_loop) off that loop's thread, std::bad_alloc. Loop thread only.
template <class T>
Future<T> shield(Future<T> inner) {
  return detail::shield_future<false>(std::move(inner));
}
// Overload of shield(Future<T>) for a Task: the shielded future follows inner, whose cancellation
// the outer one does not pass on. Throws as shield(Future<T>); loop thread only.
template <class T>
Future<T> shield(const Task<T>& inner) {
  return shield(static_cast<const Future<T>&>(inner));
}
// Overload of shield(Future<T>) for a function: runs fn as a new task (create_task()) and shields
// it; the task's result (a move-only one too) is moved into the shield, not copied. Throws
// RuntimeError with no running loop; loop thread only.
template <class F, class = std::enable_if_t<std::is_invocable_v<std::decay_t<F>&>>>
auto shield(F&& fn) {
  auto task = create_task(std::forward<F>(fn));
  return detail::shield_future<true>(static_cast<Future<typename decltype(task)::value_type>&>(task));
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
