// asyncio/task.hpp: Task<T>, create_task(), await(), sleep().
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/detail/task_state.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// Context variables, as asyncio uses contextvars: each task starts with a
// copy of the context of the code that created it, or runs in the context
// object given to create_task(fn, name, ctx). context_var<T>, context and
// copy_context() are greenlet's (<greenlet/fiber/context.hpp>): see there for
// what they throw; a context belongs to the thread that runs it.
template <class T>
using context_var = ::greenlet::context_var<T>;
using ::greenlet::context;
using ::greenlet::copy_context;

// Task<T> is a Future<T> whose result comes from a function running in its
// own greenlet. Copies share the task; they keep its outcome, not the
// function, which is destroyed once the task is through with it (see
// event_loop::create_task). Like Future, not thread-safe: loop thread only.
template <class T = void>
class Task : public Future<T> {
 public:
  // Task() is an empty handle (see Future()). Throws nothing.
  Task() noexcept = default;
  // Internal: Task(state) adopts one reference to a task's state; tasks come from create_task().
  // Throws nothing; loop thread only.
  explicit Task(detail::future_value<T>* adopted) noexcept : Future<T>(adopted) {}

  // get_name()/set_name() as asyncio's; the default name is "Task-N", N counted when the task is
  // created. get_name() throws only std::bad_alloc (the default name is made on first use); a
  // name set must not be empty; loop thread only.
  const std::string& get_name() const { return task()->name(); }
  // set_name(name) renames the task, as shown by repr() and get_name(). Throws nothing beyond moving
  // the string; must not be empty; loop thread only.
  void set_name(std::string name) { task()->set_name(std::move(name)); }
  // uncancel() and cancelling() count cancel() requests as asyncio does: uncancel() takes one back
  // and returns how many remain (at zero a pending cancellation is dropped). Throws nothing; must
  // not be empty; loop thread only.
  int uncancel() { return task()->uncancel(); }
  // cancelling() is the number of pending cancel() requests (not undone by uncancel()). Throws
  // nothing; must not be empty; loop thread only.
  int cancelling() const { return task()->cancelling(); }
  // get_context() is asyncio's Task.get_context() (3.12): the context the task runs in, as a
  // copy with the values it holds now: before the task runs, those it was created with (its
  // creator's, or those of the context given to create_task()); after, with what the task set
  // too. Read it with
  // `task.get_context().run([&] { return var.get(); })`. A copy, not the task's context object
  // itself (Python's `task.get_context() is ctx`): running it never conflicts with the task's.
  // Empty once the loop let go of the task unfinished (closed under it). Throws nothing; must not
  // be empty; loop thread only.
  ::greenlet::context get_context() const { return task()->context_copy(); }
  // get_stack(limit) is asyncio's Task.get_stack(limit=): where the task is, as its greenlet's
  // get_stack() (fiber/stack_trace.hpp), oldest frame first, at most the newest `limit` frames:
  // the frames of the function the task runs down to the await it is suspended in, or, in the task
  // itself, to the call. For a task that failed, its traceback: the frames its exception left the
  // function from, down to the throw, recorded as it left (the oldest `limit`; docs/asyncio.md,
  // "Tracebacks"). Empty before the task's first step and once it returned or was cancelled.
  // Throws std::bad_alloc; must not be empty; loop thread only.
  ::greenlet::stack_summary get_stack(std::size_t limit = ::greenlet::no_frame_limit) const {
    return task()->stack(limit);
  }
  // print_stack(limit, out) is Task.print_stack(): "Stack for <repr()> (most recent call last):"
  // ("Traceback for" for a failed task) and get_stack(limit)'s frames as Python's traceback prints
  // them, or "No stack for <repr()>"; then, for a failed task, its exception as Python's
  // traceback.format_exception_only() ("runtime_error: boom"). To stderr without `out`. Throws
  // std::bad_alloc and what out throws; loop thread only.
  void print_stack(std::size_t limit = ::greenlet::no_frame_limit) const {
    detail::print_stack_report(task()->stack_report(limit));
  }
  void print_stack(std::size_t limit, std::ostream& out) const { out << task()->stack_report(limit); }

  // set_result() and set_exception() are not a task's: its result is what its function returns or
  // throws (asyncio: "Task does not support set_result operation"). Deleted on a Task; through a
  // Future<T>& that refers to a task they throw RuntimeError (invalid_state).
  template <class... U>
  void set_result(U&&...) = delete;
  template <class E>
  void set_exception(E&&) = delete;

 private:
  // task() is the task's state; throws RuntimeError (invalid_state) for an empty handle.
  detail::task_state* task() const { return this->checked()->as_task(); }
};

namespace detail {
// make_requested_task<R, F>(fn, loop, request) is a task_request's maker: the task of the function
// that `fn` points to a pointer to (an F&&, moved from or copied as F says; a pointer to the pointer,
// since F may be a function, whose address is no object pointer), named as the request says, not
// started yet.
template <class R, class F>
task_state* make_requested_task(void* fn, loop_core* loop, const task_request& request) {
  auto* function = *static_cast<std::add_pointer_t<std::remove_reference_t<F>>*>(fn);
  return new_task_impl<task_impl<R, std::decay_t<F>>>(loop, request.name, std::forward<F>(*function));
}

// eager_start_of(when) is the task_options::eager_start a first_step stands for (first_step_for()'s
// inverse), for a task factory's request. Throws nothing.
inline std::optional<bool> eager_start_of(task_state::first_step when) noexcept {
  if (when == task_state::first_step::per_loop) return std::nullopt;
  return when == task_state::first_step::eager;
}

// new_task_directly(core, fn, name, ctx, when) is a task of fn on the loop `core`, in the context
// object *ctx if given (else a copy of the caller's), its first step taken as `when` says, made
// without the loop's custom task factory. Throws RuntimeError (closed loop, another thread),
// greenlet::error (context_entered), std::bad_alloc; fn never runs then.
template <class F>
auto new_task_directly(loop_core* core, F&& fn, std::string name, ::greenlet::context* ctx,
                       task_state::first_step when) {
  using R = stored_result_t<std::decay_t<F>&>;
  core->check_loop_thread();
  core->check_open();
  if (ctx != nullptr && ctx->entered()) ::greenlet::detail::throw_context_entered();
  auto* state = new_task_impl<task_impl<R, std::decay_t<F>>>(core, std::move(name), std::forward<F>(fn));
  Task<R> task(state);
  state->start_in(core, ctx, when);
  return task;
}

// new_task_through_factory(core, fn, name, ctx, when) is new_task() with a custom task factory set
// on the loop: the task that factory makes (run_task_factory()). Out of line and cold, so that the
// request and its cleanup stay out of every create_task() without a factory, which keeps the code
// it had before factories existed. Throws as new_task_directly() and as the factory.
template <class F>
[[gnu::noinline, gnu::cold]] auto new_task_through_factory(loop_core* core, F&& fn, std::string name,
                                                           ::greenlet::context* ctx, task_state::first_step when) {
  using R = stored_result_t<std::decay_t<F>&>;
  core->check_loop_thread();
  core->check_open();
  auto* function = std::addressof(fn);
  task_request request(std::move(name), ctx, eager_start_of(when), &make_requested_task<R, F>, &function, core);
  task_state* made = run_task_factory(core, request);
  return Task<R>(static_cast<task_impl<R, std::decay_t<F>>*>(made));
}

// new_task(core, fn, name, ctx, when) is what the create_task() calls share: new_task_directly(),
// or new_task_through_factory() with a custom task factory set on the loop. Throws as those; fn
// never runs then, unless the factory made the task before it threw.
template <class F>
auto new_task(loop_core* core, F&& fn, std::string name, ::greenlet::context* ctx, task_state::first_step when) {
  if (core->task_factory_fn != nullptr) [[unlikely]] {
    return new_task_through_factory(core, std::forward<F>(fn), std::move(name), ctx, when);
  }
  return new_task_directly(core, std::forward<F>(fn), std::move(name), ctx, when);
}

// create_scheduled_task(loop, fn) is loop.create_task(fn) whose first step is on a later
// iteration whatever the loop's task factory, made without a custom one: for a task its creator
// sets up further after create_task() returns (an async generator's body). Throws as
// create_task().
template <class F>
auto create_scheduled_task(event_loop& loop, F&& fn) {
  return new_task_directly(loop.core(), std::forward<F>(fn), {}, nullptr, task_state::first_step::scheduled);
}
}  // namespace detail

template <class F>
auto event_loop::create_task(F&& fn) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "loop.create_task(fn): fn must be a callable taking no arguments, not the result of a call: "
                  "write loop.create_task([=] { return fetch(1); }), not loop.create_task(fetch(1))");
  } else {
    return detail::new_task(core_.get(), std::forward<F>(fn), {}, nullptr, detail::task_state::first_step::per_loop);
  }
}

template <class F, std::convertible_to<std::string> Name>
auto event_loop::create_task(F&& fn, Name&& name) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "loop.create_task(fn, name): fn must be a callable taking no arguments, not the result of a "
                  "call: write loop.create_task([=] { return fetch(1); }, name), not loop.create_task(fetch(1))");
  } else {
    return detail::new_task(core_.get(), std::forward<F>(fn), std::string(std::forward<Name>(name)), nullptr,
                            detail::task_state::first_step::per_loop);
  }
}

template <class F>
auto event_loop::create_task(F&& fn, std::string name, ::greenlet::context& ctx) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "loop.create_task(fn, name, ctx): fn must be a callable taking no arguments, not the result of "
                  "a call: write loop.create_task([=] { return fetch(1); }, name, ctx)");
  } else {
    return detail::new_task(core_.get(), std::forward<F>(fn), std::move(name), &ctx,
                            detail::task_state::first_step::per_loop);
  }
}

template <class F>
auto event_loop::create_task(F&& fn, task_options opts) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "loop.create_task(fn, options): fn must be a callable taking no arguments, not the result of a "
                  "call: write loop.create_task([=] { return fetch(1); }, {.name = \"n\"})");
  } else {
    return detail::new_task(core_.get(), std::forward<F>(fn), std::move(opts.name), opts.context,
                            detail::first_step_for(opts.eager_start));
  }
}

namespace detail {
template <class X>
struct is_future : std::false_type {};
template <class T>
struct is_future<Future<T>> : std::true_type {};
template <class T>
struct is_future<Task<T>> : std::true_type {};
}  // namespace detail

// create_task(fn) is get_running_loop().create_task(fn). Throws RuntimeError if no loop runs on
// this thread, std::bad_alloc. Loop thread only.
template <class F>
auto create_task(F&& fn) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "asyncio::create_task(fn): fn must be a callable taking no arguments, not the result of a call: "
                  "write create_task([=] { return fetch(1); }), not create_task(fetch(1)), which calls fetch "
                  "now, in this task");
  } else {
    return get_running_loop().create_task(std::forward<F>(fn));
  }
}
// create_task(fn, name) is get_running_loop().create_task(fn, name). Throws as create_task(fn).
// Loop thread only.
template <class F, std::convertible_to<std::string> Name>
auto create_task(F&& fn, Name&& name) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "asyncio::create_task(fn, name): fn must be a callable taking no arguments, not the result of a "
                  "call: write create_task([=] { return fetch(1); }, name), not create_task(fetch(1), name)");
  } else {
    return get_running_loop().create_task(std::forward<F>(fn), std::forward<Name>(name));
  }
}
// create_task(fn, name, ctx) is get_running_loop().create_task(fn, name, ctx), asyncio's
// create_task(coro, name=, context=ctx): the task runs in the context object ctx itself (see
// event_loop::create_task). Throws as that and as create_task(fn, name). Loop thread only.
template <class F>
auto create_task(F&& fn, std::string name, ::greenlet::context& ctx) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "asyncio::create_task(fn, name, ctx): fn must be a callable taking no arguments, not the result "
                  "of a call: write create_task([=] { return fetch(1); }, name, ctx)");
  } else {
    return get_running_loop().create_task(std::forward<F>(fn), std::move(name), ctx);
  }
}

// create_task(fn, options) is get_running_loop().create_task(fn, options): asyncio's
// create_task(coro, name=, context=, eager_start=) as `create_task(fn, {.name = "n", .eager_start =
// true})`. Throws as event_loop::create_task(fn, options). Loop thread only.
template <class F>
auto create_task(F&& fn, task_options opts) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "asyncio::create_task(fn, options): fn must be a callable taking no arguments, not the result "
                  "of a call: write create_task([=] { return fetch(1); }, {.eager_start = true})");
  } else {
    return get_running_loop().create_task(std::forward<F>(fn), std::move(opts));
  }
}

// ensure_future(x) returns a future as it is and wraps a function in a task
// on get_event_loop() (so it works before the loop runs, as in the seed).
// Throws what get_event_loop() and create_task() throw. Loop thread only.
template <class X>
auto ensure_future(X&& x) {
  if constexpr (detail::is_future<std::decay_t<X>>::value) {
    return std::forward<X>(x);
  } else if constexpr (!detail::task_function<X>) {
    detail::reject_uncallable_functor<detail::task_function<X>, X>();
    static_assert(detail::task_function<X> || detail::has_call_operator<X>,
                  "asyncio::ensure_future(x): x must be a future, a task or a callable taking no arguments, not "
                  "the result of a call: write ensure_future([=] { return fetch(1); }), not ensure_future(fetch(1))");
  } else {
    return get_event_loop().create_task(std::forward<X>(x));
  }
}

// await(f) suspends the calling task until f is done and returns its
// result (rethrowing its exception). Callable from any depth of ordinary
// calls inside a task: no async colouring. Throws RuntimeError outside a
// task or for a future of another loop, CancelledError if the task is
// cancelled meanwhile. An lvalue future gives a reference to its result; a
// temporary one gives the result by value. A task of f's loop thread only.
template <class T>
decltype(auto) await(Future<T>& f) {
  detail::await_inline(f.state());
  return f.result();
}
// Overload of await(Future<T>&): await(f) on a temporary future returns its result by value (moved
// out if it cannot be copied). Throws as await(Future<T>&); a task of f's loop thread only.
template <class T>
T await(Future<T>&& f) {
  detail::await_inline(f.state());
  if constexpr (std::is_void_v<T>) {
    f.result();
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return f.result();
  } else {
    return std::move(f.result());
  }
}
// Overload of await(Future<T>&) for a Task: awaits t and returns a reference to its result. Throws
// as await(Future<T>&); a task of t's loop thread only.
template <class T>
decltype(auto) await(Task<T>& t) {
  return await(static_cast<Future<T>&>(t));
}
// Overload of await(Future<T>&&) for a temporary Task: awaits t and returns its result by value.
// Throws as await(Future<T>&); a task of t's loop thread only.
template <class T>
T await(Task<T>&& t) {
  return await(static_cast<Future<T>&&>(t));
}
// await(fn) runs fn in a new task and awaits it, like `await coro()`. Throws as create_task() and
// await(Future<T>&&), including fn's own exception. A task of the running loop only.
template <class F, class = std::enable_if_t<std::is_invocable_v<std::decay_t<F>&>>>
auto await(F&& fn) {
  return await(create_task(std::forward<F>(fn)));
}

// sleep(delay) suspends the calling task for delay seconds; sleep(0) yields
// once to the other ready tasks. Throws CancelledError if cancelled,
// RuntimeError outside a task. A task of the running loop only.
// sleep(0), the loop's hot path, is inlined into the caller: always, as an out-of-line sleep()
// returns after its switch and that return mispredicts (switch_inline.hpp). Left to the inliner,
// it stopped being inlined into a task's function when task_impl::run() grew (the task wrappers'
// branch): the 10-task sleep(0) step went from ~30 to ~45 ns (bench/README.md).
[[gnu::always_inline]] inline void sleep(double delay) {
  if (delay <= 0) {
    detail::sleep_zero();
  } else {
    detail::sleep_for(delay);
  }
}
// sleep(delay, result) returns result afterwards, as asyncio.sleep does. Throws as sleep(delay);
// a task of the running loop only.
template <class T>
T sleep(double delay, T result) {
  sleep(delay);
  return result;
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
