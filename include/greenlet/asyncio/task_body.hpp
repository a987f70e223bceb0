// asyncio/task_body.hpp: what a task factory's wrapper receives (task_request::wrap()): the
// task's function, to run once, with the wrapper's own work around it.
#pragma once

#include <exception>
#include <functional>

#include "greenlet/detail/escape_trace.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

class task_request;
class task_body;

// task_wrapper is what task_request::wrap() takes: a function run in each task in place of the
// task's function, which it runs by calling its task_body.
using task_wrapper = std::function<void(task_body&)>;

namespace detail {
class task_state;
// run_wrapper(wrapper, body) calls wrapper(body), then ends as the task must: with what the
// wrapper threw; else with what the body threw; else, if the body never ran, with RuntimeError
// (invalid_state) saying so (src/asyncio/task_wrappers.cpp).
void run_wrapper(const task_wrapper& wrapper, task_body& body);
}  // namespace detail

// task_body is a task's function as a task factory's wrapper sees it (task_request::wrap(), where
// a Python factory wraps the coroutine it was given). Calling it runs the function, in the task,
// and keeps the function's result for the task; it returns when the function returns and throws
// what the function throws. The task ends as the function did, unless the wrapper throws an
// exception of its own, which the task then ends with: a wrapper that catches the function's
// exception and returns does not hide it (asyncio's wrapper coroutine could, by returning).
// Call it once: a second call is RuntimeError (invalid_state), and a wrapper that returns without
// calling it fails its task with RuntimeError (invalid_state). Loop thread, in the task only.
class task_body {
 public:
  void operator()();
  // called() is true once the body ran (returned or threw). Throws nothing.
  bool called() const noexcept { return called_; }

  task_body(const task_body&) = delete;
  task_body& operator=(const task_body&) = delete;

 private:
  friend class task_request;
  friend class detail::task_state;
  friend void detail::run_wrapper(const task_wrapper& wrapper, task_body& body);
  task_body(void (*run)(void*), void* argument, bool record_escape) noexcept
      : run_(run), argument_(argument), record_escape_(record_escape) {}
  ~task_body() = default;

  void (*run_)(void*);
  void* argument_;
  bool called_ = false;
  bool record_escape_;        // the loop's task_tracebacks
  std::exception_ptr error_;  // what the function threw, for the task if the wrapper returns
  // Where error_ left the function from: the inner part of the task's traceback.
  ::greenlet::detail::escape_trace escape_;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
