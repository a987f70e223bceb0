// asyncio/taskgroup.hpp: TaskGroup and ExceptionGroup (structured concurrency).
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// ExceptionGroup carries every exception of a TaskGroup's failed children
// (and of its body), like Python's BaseExceptionGroup. An exception object: not synchronized, share
// one between threads only read-only.
class ExceptionGroup : public std::exception {
 public:
  // ExceptionGroup(message, exceptions) makes the group; what() then reads "message (N
  // sub-exceptions): a; b; ..." listing the members' what(): at most 15 of them and about 2,000
  // characters, then "... and M more sub-exceptions" (a group of 100,000 failed tasks would make
  // megabytes; CPython's traceback shows 15 too). All members stay in exceptions(). Throws
  // std::bad_alloc only. Exception objects are not synchronized: share one between threads only
  // read-only.
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);
  // what() is the message with the count and a description of each member. Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }
  // message() is the group's own message; exceptions() are its members, in
  // the order they happened. Throws nothing; read-only, so any thread.
  const std::string& message() const noexcept { return message_; }
  // exceptions() are the member exceptions, in the order they happened. Throws nothing.
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

  // The two parts of a split: the members that match and the rest, each a group with this
  // group's message, or std::nullopt when it would be empty.
  using split_result = std::pair<std::optional<ExceptionGroup>, std::optional<ExceptionGroup>>;
  // split(condition) is Python's eg.split(condition), what `except*` does: condition(e) is asked
  // of this group, then of each member in order; a member that is itself an ExceptionGroup and
  // does not match is split the same way, so the parts keep the nesting. A part that would hold
  // every member is a copy of this group; an empty one is std::nullopt. Re-raise what you do not
  // handle with `throw *rest;`. Throws what condition throws, std::bad_alloc.
  split_result split(const std::function<bool(const std::exception_ptr&)>& condition) const;
  // Overload of split(condition): split<E...>() matches the exceptions of the types E (or derived
  // from one), as Python's eg.split((E1, E2)):
  //
  //   catch (const asyncio::ExceptionGroup& eg) {   // except* ValueError as matched:
  //     auto [matched, rest] = eg.split<ValueError>();
  //     if (matched) handle(*matched);
  //     if (rest) throw *rest;                      // what no except* clause took
  //   }
  template <class... E>
  requires(sizeof...(E) > 0) split_result split()
  const {
    return split([](const std::exception_ptr& e) { return (holds<E>(e) || ...); });
  }
  // subgroup(condition) and subgroup<E...>() are Python's eg.subgroup(): the matching part of
  // split(), without the rest. Same rules.
  std::optional<ExceptionGroup> subgroup(const std::function<bool(const std::exception_ptr&)>& condition) const {
    return split(condition).first;
  }
  template <class... E>
  requires(sizeof...(E) > 0) std::optional<ExceptionGroup> subgroup()
  const { return split<E...>().first; }

 private:
  template <class E>
  static bool holds(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
  std::string what_;
};

namespace detail {
struct task_group_state;
}

// TaskGroup is asyncio.TaskGroup: tasks made with its create_task() are
// awaited when the group ends. The first child that fails cancels the others
// and the task running the group; the failures come out together as an
// ExceptionGroup. Use it through task_group(body), which can see the body's
// own exception, or as a scoped object whose destructor waits (and throws
// the ExceptionGroup unless the scope is already unwinding). Prefer
// task_group(body): in the scoped form, a child that fails while the body
// awaits cancels the body, the CancelledError unwinds the scope, and the
// destructor, which cannot throw a second exception then, sends the
// failures to the loop's exception handler: the scope's caller sees the
// CancelledError, not the ExceptionGroup. Not thread-safe: a task of the
// loop thread only.
class TaskGroup {
 public:
  // TaskGroup() opens a group in the running task. Throws RuntimeError outside a task,
  // std::bad_alloc. A task of the loop thread only.
  TaskGroup();
  ~TaskGroup() noexcept(false);
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // create_task(fn, name) starts fn in a task of the group. RuntimeError
  // once the group is finished (which it is as soon as, at its end, no child
  // is left: a child may add one while it waits there) or shutting down after
  // a failure; fn is then dropped unrun. What event_loop::create_task()
  // throws. A task of the loop thread only.
  template <class F>
  auto create_task(F&& fn) {
    if constexpr (!detail::task_function<F>) {
      detail::reject_uncallable_functor<detail::task_function<F>, F>();
      static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                    "TaskGroup::create_task(fn): fn must be a callable taking no arguments, not the result of a "
                    "call: write tg.create_task([=] { return fetch(1); }), not tg.create_task(fetch(1))");
    } else {
      check_open();
      auto task = get_running_loop().create_task(std::forward<F>(fn));
      adopt(task.state());
      return task;
    }
  }
  // create_task(fn, name) is create_task(fn) for a task named `name`. Throws as that; a task of the
  // loop thread only.
  template <class F, std::convertible_to<std::string> Name>
  auto create_task(F&& fn, Name&& name) {
    if constexpr (!detail::task_function<F>) {
      detail::reject_uncallable_functor<detail::task_function<F>, F>();
      static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                    "TaskGroup::create_task(fn, name): fn must be a callable taking no arguments, not the result "
                    "of a call: write tg.create_task([=] { return fetch(1); }, name)");
    } else {
      check_open();
      auto task = get_running_loop().create_task(std::forward<F>(fn), std::forward<Name>(name));
      adopt(task.state());
      return task;
    }
  }
  // create_task(fn, name, ctx) is create_task(fn, name) for a task that runs in the context object
  // ctx itself (asyncio's TaskGroup.create_task(coro, name=, context=ctx)); see
  // event_loop::create_task(fn, name, ctx) for what that means and throws. A task of the loop
  // thread only.
  template <class F>
  auto create_task(F&& fn, std::string name, ::greenlet::context& ctx) {
    if constexpr (!detail::task_function<F>) {
      detail::reject_uncallable_functor<detail::task_function<F>, F>();
      static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                    "TaskGroup::create_task(fn, name, ctx): fn must be a callable taking no arguments, not the "
                    "result of a call: write tg.create_task([=] { return fetch(1); }, name, ctx)");
    } else {
      check_open();
      auto task = get_running_loop().create_task(std::forward<F>(fn), std::move(name), ctx);
      adopt(task.state());
      return task;
    }
  }

  // create_task(fn, options) is create_task(fn, name) with asyncio's keyword arguments in a
  // task_options (name, context, eager_start): see event_loop::create_task(fn, options). A child
  // that finishes in an eager first step is taken as done at once. A task of the loop thread only.
  template <class F>
  auto create_task(F&& fn, task_options opts) {
    if constexpr (!detail::task_function<F>) {
      detail::reject_uncallable_functor<detail::task_function<F>, F>();
      static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                    "TaskGroup::create_task(fn, options): fn must be a callable taking no arguments, not the "
                    "result of a call: write tg.create_task([=] { return fetch(1); }, {.name = \"n\"})");
    } else {
      check_open();
      auto task = get_running_loop().create_task(std::forward<F>(fn), std::move(opts));
      adopt(task.state());
      return task;
    }
  }

  // join() waits for every child (as leaving `async with` does) and throws
  // the ExceptionGroup of their failures. `body_error` is the exception the
  // body raised, if any: it joins the group (CancelledError aside). Also
  // throws CancelledError if the task running the group was cancelled from
  // outside and no child failed; with failures, the ExceptionGroup wins and
  // that cancellation stays pending, for the task's next wait (asyncio 3.13).
  // A task of the loop thread only.
  void join(std::exception_ptr body_error = nullptr);

 private:
  void check_open() const;
  void adopt(detail::future_state* child);

  std::shared_ptr<detail::task_group_state> state_;
  int uncaught_at_entry_;
  bool joined_ = false;
};

// task_group(body) runs body(group) and then waits for the group's tasks:
//   asyncio::task_group([](asyncio::TaskGroup& tg) {
//     tg.create_task(download_a);
//     tg.create_task(download_b);
//   });  // both done here, or ExceptionGroup
// Returns what body returns, with its type, as timeout() does: body runs in
// the calling task, so a body returning Item& gives a reference to the same
// Item; a value is moved out (the group's tasks, by contrast, hold copies of
// what their functions return: see create_task()). Throws ExceptionGroup of
// the children's (and the body's) failures, the body's own exception if no
// child failed, CancelledError if the running task was cancelled from
// outside, RuntimeError outside a task. A task of the loop thread only.
template <class F>
decltype(auto) task_group(F&& body) {
  TaskGroup group;
  using R = std::invoke_result_t<F&, TaskGroup&>;
  std::exception_ptr body_error;
  if constexpr (std::is_void_v<R>) {
    try {
      body(group);
    } catch (const ::greenlet::GreenletExit&) {
      throw;  // the task is being killed (loop closing): unwind; ~TaskGroup cancels the children
    } catch (...) {
      body_error = std::current_exception();
    }
    group.join(body_error);  // throws the group's failures, or the body's
  } else {
    // A reference is held as a pointer to its object, until the children are joined.
    using held = std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>;
    std::optional<held> result;
    try {
      if constexpr (std::is_reference_v<R>) {
        R returned = body(group);
        result.emplace(std::addressof(returned));
      } else {
        result.emplace(body(group));
      }
    } catch (const ::greenlet::GreenletExit&) {
      throw;  // as above
    } catch (...) {
      body_error = std::current_exception();
    }
    group.join(body_error);
    if constexpr (std::is_reference_v<R>) {
      return static_cast<R>(**result);  // the same reference (an rvalue one as an rvalue)
    } else {
      return R(std::move(*result));
    }
  }
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
