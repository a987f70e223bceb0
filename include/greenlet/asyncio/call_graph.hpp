// asyncio/call_graph.hpp: capture_call_graph(), format_call_graph(), print_call_graph() and
// future_add_to_awaited_by() / future_discard_from_awaited_by(), asyncio's call-graph
// introspection (Python 3.14).
//
// The graph of a future or task is the tasks awaiting it, each with the tasks awaiting it in
// turn: what a hung or slow program is waiting for, and on whose behalf. It is worked out when
// asked, from what the loop keeps anyway (the done callbacks a task's await, a TaskGroup, gather()
// and wait() put on what they wait for), so awaiting costs nothing more for it. Python's graph
// also holds each task's call stack (its coroutines' frames); here each task's node holds its
// greenlet's (Task::get_stack(), fiber/stack_trace.hpp), read without resuming it.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "greenlet/fiber/stack_trace.hpp"

#include "greenlet/asyncio/any_task.hpp"
#include "greenlet/asyncio/future.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// call_graph_depth_limit is how many levels of awaiters a graph holds below its root (Python's own
// recursion limit stops its graphs at about 1,000).
inline constexpr std::size_t call_graph_depth_limit = 256;

// FutureCallGraph is asyncio's: a future or task, and the graph of each task awaiting it.
struct FutureCallGraph {
  // The task, or an empty handle when the node is a plain future.
  AnyTask task;
  // The future's identity, as Python's id(): its address, the one its repr() shows. Only compared
  // and printed: a plain future is not kept alive by its graph.
  const void* id = nullptr;
  // The tasks awaiting it (Python's awaited_by), each with its own graph, in the order they began
  // to: a task awaiting it directly, a TaskGroup's task for each of the group's unfinished tasks,
  // the task inside gather() or wait() on it, the task that called shield() on it, and what
  // future_add_to_awaited_by() linked. A task is listed once however many ways it awaits.
  std::vector<FutureCallGraph> awaited_by;
  // call_stack is the task's call stack (Python's call_stack of FrameCallGraphEntry), newest frame
  // first as Python's: for the task that captures the graph, from the call of capture_call_graph()
  // to the task's function; for a suspended task, from the await it waits in. Empty for a plain
  // future, a task not started or done, and with call_graph_options::limit 0.
  ::greenlet::stack_summary call_stack;
  // cycle is true when this node is already on the path from the graph's root: tasks that await
  // each other. Its awaited_by is then left empty (Python's would recurse without end).
  bool cycle = false;
  // cut is true when this node, call_graph_depth_limit levels below the root, has awaiters that
  // were left out, so that a graph's copy and destruction (which recurse) stay shallow.
  bool cut = false;

  // is_task() says whether the node is a task (Python's isinstance(future, Task)). Throws nothing.
  bool is_task() const noexcept { return !task.empty(); }
};

// call_graph_options holds asyncio's keyword arguments of capture_call_graph(),
// format_call_graph() and print_call_graph(): `capture_call_graph(t, {.limit = 0})`.
struct call_graph_options {
  // limit= : how much of each task's call stack the graph holds: every frame (nullopt, Python's
  // None, the default), none (0), the newest n (n > 0) or the oldest -n frames (n < 0).
  std::optional<long> limit;
};

namespace detail {
// call_graph_of(f, options) builds f's graph (src/asyncio/call_graph.cpp). Throws RuntimeError for
// a null f (an empty handle) and (wrong_loop) off f's loop's thread, std::bad_alloc.
FutureCallGraph call_graph_of(future_state* f, call_graph_options options);
// add_awaited_by(f, waiter) and discard_awaited_by(f, waiter) are future_add_to_awaited_by() and
// future_discard_from_awaited_by(): see there. shield() uses them too.
// discard_awaited_by(loop, f, waiter) takes f's loop: f is only a key there, never read, so that
// shield's record can end after f itself went.
void add_awaited_by(future_state* f, future_state* waiter);
void discard_awaited_by(loop_core* loop, const future_state* f, future_state* waiter) noexcept;
// link_caller_as_awaiting(f) records the task running the caller (as current_task() says) as
// awaiting f, and returns its future; null, recording nothing, outside a task of f's loop. For
// shield(f), as asyncio's. Throws std::bad_alloc.
future_state* link_caller_as_awaiting(future_state* f);
// state_of(x) is the future state behind a Future<T>, Task<T> or AnyTask (null if empty).
template <class T>
future_state* state_of(const Future<T>& f) noexcept {
  return f.state();
}
inline future_state* state_of(const AnyTask& t) noexcept { return t.state(); }
// graph_node<F>: F is a Future<T>, Task<T> or AnyTask.
template <class F>
concept graph_node = requires(const F& f) {
  state_of(f);
};
}  // namespace detail

// capture_call_graph() is the graph of the task running the caller (asyncio's
// capture_call_graph() without arguments); nullopt in a plain callback, where no task runs. In an
// async_generator's body it is the graph of the task stepping it, as current_task() says. Throws
// RuntimeError (no_running_loop) with no loop running on this thread, std::bad_alloc.
std::optional<FutureCallGraph> capture_call_graph(call_graph_options options = {});
// capture_call_graph(f) is the graph of the future or task f (Future<T>, Task<T> or AnyTask),
// which need not be pending: a done one has no awaiter left. Throws RuntimeError for an empty
// handle, (wrong_loop) off f's loop's thread, std::bad_alloc. Loop thread only.
template <detail::graph_node F>
FutureCallGraph capture_call_graph(const F& f, call_graph_options options = {}) {
  return detail::call_graph_of(detail::state_of(f), options);
}

// format_call_graph(graph) is asyncio's text for a graph, one line per node (and per frame of its
// call stack), four spaces deeper for each level of awaiting:
//
//   * Task(name='fetch', id=0x7f3a5c0012a0)
//     + Call stack:
//     |   File 'client.cpp', line 31, in fetch_page(std::string const&)
//     + Awaited by:
//       * Task(name='Task-1', id=0x7f3a5c001400)
//         + Call stack:
//         |   File 'client.cpp', line 52, in operator()
//
// a plain future's line reads "* Future(id=0x...)"; a node met again in a cycle says so
// ("  + Awaited by: ... (a cycle: see above)"), and so does a cut one ("... (cut: deeper than 256
// levels)"). A frame without debug information reads "File '/usr/bin/app', in fetch_page(...)".
// Throws only std::bad_alloc.
std::string format_call_graph(const FutureCallGraph& graph);
// format_call_graph() is that text for the task running the caller, "" where none runs; throws
// as capture_call_graph().
std::string format_call_graph(call_graph_options options = {});
// format_call_graph(f) is that text for the future or task f; throws as capture_call_graph(f).
template <detail::graph_node F>
std::string format_call_graph(const F& f, call_graph_options options = {}) {
  return format_call_graph(capture_call_graph(f, options));
}

// print_call_graph() writes format_call_graph() and a newline to stdout (asyncio's
// print_call_graph(), whose print() adds the newline; an empty line where no task runs), or to
// out. Throws as format_call_graph(), and what out throws.
void print_call_graph(call_graph_options options = {});
void print_call_graph(std::ostream& out, call_graph_options options = {});
// print_call_graph(graph) and print_call_graph(graph, out) print a graph captured before.
void print_call_graph(const FutureCallGraph& graph);
void print_call_graph(const FutureCallGraph& graph, std::ostream& out);
// print_call_graph(f) and print_call_graph(f, out) do the same for the future or task f.
template <detail::graph_node F>
void print_call_graph(const F& f, call_graph_options options = {}) {
  print_call_graph(capture_call_graph(f, options));
}
template <detail::graph_node F>
void print_call_graph(const F& f, std::ostream& out, call_graph_options options = {}) {
  print_call_graph(capture_call_graph(f, options), out);
}

// future_add_to_awaited_by(f, waiter) records that waiter (a future or task) awaits f, for code that
// waits through a future or callback of its own, which the graph cannot see: asyncio's
// function, which asks for a matching future_discard_from_awaited_by(f, waiter) once waiter stops
// waiting. Recording a pair twice records it once. The record keeps waiter alive while it lasts;
// it goes with f, and when the loop closes. Does nothing once f's loop is closed. Throws
// RuntimeError for an empty handle, (wrong_loop) off f's loop's thread or for a waiter of another
// loop, std::bad_alloc. Loop thread only.
template <detail::graph_node F, detail::graph_node W>
void future_add_to_awaited_by(const F& f, const W& waiter) {
  detail::add_awaited_by(detail::state_of(f), detail::state_of(waiter));
}
// future_discard_from_awaited_by(f, waiter) forgets that record; nothing if there is none. Throws
// nothing; loop thread only.
template <detail::graph_node F, detail::graph_node W>
void future_discard_from_awaited_by(const F& f, const W& waiter) noexcept {
  detail::future_state* state = detail::state_of(f);
  if (state != nullptr) detail::discard_awaited_by(state->loop(), state, detail::state_of(waiter));
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
