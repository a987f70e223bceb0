// call_graph.cpp: asyncio's call-graph introspection (Python 3.14), worked out when asked.
//
// Python records who awaits a future as it happens (future_add_to_awaited_by() in every await,
// TaskGroup, gather() and wait()). Here those waits already leave a done callback on the future
// they wait for, naming the waiter: a task's wake-up (the task), a TaskGroup's callback on each of
// its tasks (the group's task), gather()'s and wait()'s callbacks on their children (the task
// inside them, while it waits). Reading those when a graph is asked for costs the awaits nothing.
// Only future_add_to_awaited_by() itself, and shield(), which uses it, keep records: in a table of
// the loop, made on first use.
#include "greenlet/asyncio/call_graph.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "asyncio/done_callbacks.hpp"
#include "greenlet/asyncio/tasks.hpp"
#include "greenlet/detail/task_state.hpp"

namespace greenlet::asyncio::detail {

// awaited_by_links: for each future given to future_add_to_awaited_by(), its waiters in the
// order they were added, each holding a reference.
struct awaited_by_links {
  std::unordered_map<future_state*, std::vector<future_state*>> waiters;
};

void free_awaited_by_links(loop_core* loop) noexcept {
  // Taken out first: releasing a waiter may destroy it, and a destroyed key looks itself up.
  awaited_by_links* links = std::exchange(loop->awaited_by, nullptr);
  if (links == nullptr) return;
  for (auto& [f, waiters] : links->waiters) {
    for (future_state* w : waiters) release(w);
  }
  delete links;
}

void forget_awaited_by_links(future_state* f) noexcept {
  awaited_by_links* links = f->loop()->awaited_by;
  if (links == nullptr) return;
  auto it = links->waiters.find(f);
  if (it == links->waiters.end()) return;
  std::vector<future_state*> waiters = std::move(it->second);
  links->waiters.erase(it);
  for (future_state* w : waiters) release(w);  // may destroy a key of the table: erased already
}

void add_awaited_by(future_state* f, future_state* waiter) {
  if (f == nullptr || waiter == nullptr) throw_empty_handle("Future/Task");
  loop_core* loop = f->loop();
  loop->check_loop_thread();
  if (waiter->loop() != loop) {
    throw RuntimeError(asyncio_errc::wrong_loop,
                       "future_add_to_awaited_by(): the waiter belongs to another loop than the future it awaits");
  }
  // A closed loop let go of its records, and nothing can await there any more.
  if (loop->closed) return;
  if (loop->awaited_by == nullptr) loop->awaited_by = new awaited_by_links();
  std::vector<future_state*>& waiters = loop->awaited_by->waiters[f];
  f->linked_as_awaited();  // before anything else can throw: its destructor erases the entry
  if (std::find(waiters.begin(), waiters.end(), waiter) != waiters.end()) return;
  waiters.push_back(waiter);
  retain(waiter);
}

void discard_awaited_by(loop_core* loop, const future_state* f, future_state* waiter) noexcept {
  if (waiter == nullptr) return;
  awaited_by_links* links = loop->awaited_by;
  if (links == nullptr) return;
  auto it = links->waiters.find(const_cast<future_state*>(f));
  if (it == links->waiters.end()) return;
  auto at = std::find(it->second.begin(), it->second.end(), waiter);
  if (at == it->second.end()) return;
  it->second.erase(at);
  if (it->second.empty()) links->waiters.erase(it);
  release(waiter);  // last: may destroy f
}

namespace {

// stepping_task(t) is the task t stands for in the graph: an async generator's body runs in a task
// of its own, but in Python in the task stepping it (as current_task() says).
task_state* stepping_task(task_state* t) noexcept {
  while (t->async_generator != nullptr && t->async_generator->consumer != nullptr) t = t->async_generator->consumer;
  return t;
}

// awaiters(f) are the futures awaiting f, in the order they began to, each once (drop_repeats():
// a future thousands await has its repeats found through a hash set, not pair by pair).
std::vector<future_state*> awaiters(future_state* f) {
  std::vector<future_state*> out;
  f->for_each_fast_callback([&out](void (*fn)(void*, void*), void* ctx) {
    task_state* waiter = nullptr;
    if (fn == &task_state::wakeup_callback) {
      waiter = static_cast<task_state*>(ctx);
    } else if (fn == &task_group_child_done) {
      waiter = task_group_parent(ctx);
    } else {
      waiter = wait_link_waiter(fn, ctx);
    }
    if (waiter != nullptr) out.push_back(stepping_task(waiter)->future());
  });
  if (awaited_by_links* links = f->loop()->awaited_by) {
    auto it = links->waiters.find(f);
    if (it != links->waiters.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  (void)drop_repeats(out);
  return out;
}

// Built and rendered with worklists, not recursion: a long chain of tasks awaiting each other must
// not overflow the asking task's stack. The graph's own copies and destruction do recurse, one
// level at a time, hence the cut at call_graph_depth_limit levels.
constexpr std::size_t no_parent = static_cast<std::size_t>(-1);

// call_stack_of(t, limit) is task t's call stack for its node: newest frame first, as Python's,
// cut as limit= says.
::greenlet::stack_summary call_stack_of(const task_state* t, std::optional<long> limit) {
  // A done task has none, as in Python (its coroutine has no frame): not a failed one's traceback.
  if (limit == 0 || t->future()->done()) return {};
  ::greenlet::stack_summary frames = t->stack(::greenlet::no_frame_limit);
  std::reverse(frames.begin(), frames.end());
  if (limit.has_value()) {
    const auto n = static_cast<unsigned long>(*limit);
    const std::size_t keep = *limit > 0 ? n : 0UL - n;  // |limit|, LONG_MIN's too
    if (keep < frames.size()) {
      if (*limit > 0) {
        frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(keep), frames.end());
      } else {
        frames.erase(frames.begin(), frames.end() - static_cast<std::ptrdiff_t>(keep));
      }
    }
  }
  return frames;
}

FutureCallGraph build(future_state* root, call_graph_options options) {
  FutureCallGraph graph;
  // Every node visited, with the index of the node it awaits (its parent), to tell a cycle.
  struct visited {
    future_state* f;
    std::size_t parent;
  };
  struct todo_item {
    FutureCallGraph* node;  // stable: each node's awaited_by is sized once, before its nodes are
    std::size_t index;      // in `seen`
    std::size_t depth;
  };
  std::vector<visited> seen{{root, no_parent}};
  std::vector<todo_item> todo{{&graph, 0, 0}};
  while (!todo.empty()) {
    const todo_item item = todo.back();
    todo.pop_back();
    future_state* f = seen[item.index].f;
    FutureCallGraph& node = *item.node;
    node.task = AnyTask(f->as_task());
    node.id = f;
    for (std::size_t p = seen[item.index].parent; p != no_parent; p = seen[p].parent) {
      if (seen[p].f == f) {
        node.cycle = true;
        break;
      }
    }
    if (node.cycle) continue;
    if (const task_state* t = f->as_task()) node.call_stack = call_stack_of(t, options.limit);
    const std::vector<future_state*> waiters = awaiters(f);
    if (waiters.empty()) continue;
    if (item.depth == call_graph_depth_limit) {
      node.cut = true;
      continue;
    }
    node.awaited_by.resize(waiters.size());
    for (std::size_t i = waiters.size(); i-- > 0;) {
      seen.push_back({waiters[i], item.index});
      todo.push_back({&node.awaited_by[i], seen.size() - 1, item.depth + 1});
    }
  }
  return graph;
}

// frame_line(f) is a call stack's line as asyncio's format_call_graph() writes it, the file as a
// Python repr: File 'client.cpp', line 31, in fetch_page(std::string const&).
std::string frame_line(const ::greenlet::stack_frame& f) {
  std::string line = "File " + python_str_repr(f.file);
  if (f.line != 0) line += ", line " + std::to_string(f.line);
  return line + ", in " + (f.function.empty() ? "?? at " + address_repr(f.address) : f.function);
}

// render(graph) is format_call_graph()'s text, as asyncio's render_level(): a node's line, then
// its awaiters' lines four spaces deeper.
std::string render(const FutureCallGraph& graph) {
  std::string out;
  std::vector<std::pair<const FutureCallGraph*, std::size_t>> todo{{&graph, 0}};
  while (!todo.empty()) {
    const auto [node, level] = todo.back();
    todo.pop_back();
    const std::string indent(level * 4, ' ');
    if (!out.empty()) out += '\n';
    out += indent;
    if (node->is_task()) {
      out += "* Task(name=" + python_str_repr(node->task.get_name()) + ", id=" + address_repr(node->id) + ")";
    } else {
      out += "* Future(id=" + address_repr(node->id) + ")";
    }
    if (!node->call_stack.empty()) {
      out += '\n' + indent + "  + Call stack:";
      for (const ::greenlet::stack_frame& frame : node->call_stack) out += '\n' + indent + "  |   " + frame_line(frame);
    }
    if (node->cycle) {
      out += '\n' + indent + "  + Awaited by: ... (a cycle: see above)";
    } else if (node->cut) {
      out += '\n' + indent + "  + Awaited by: ... (cut: deeper than " + std::to_string(call_graph_depth_limit) +
             " levels)";
    } else if (!node->awaited_by.empty()) {
      out += '\n' + indent + "  + Awaited by:";
      for (auto w = node->awaited_by.rbegin(); w != node->awaited_by.rend(); ++w) todo.emplace_back(&*w, level + 1);
    }
  }
  return out;
}

}  // namespace

future_state* link_caller_as_awaiting(future_state* f) {
  loop_core* loop = running_loop();
  if (loop != f->loop() || loop->current_task == nullptr) return nullptr;
  future_state* caller = stepping_task(loop->current_task)->future();
  if (caller == f) return nullptr;
  add_awaited_by(f, caller);
  return caller;
}

FutureCallGraph call_graph_of(future_state* f, call_graph_options options) {
  if (f == nullptr) throw_empty_handle("Future/Task");
  f->loop()->check_loop_thread();
  return build(f, options);
}

}  // namespace greenlet::asyncio::detail

namespace greenlet::asyncio {

std::optional<FutureCallGraph> capture_call_graph(call_graph_options options) {
  if (detail::running_loop() == nullptr) {
    throw RuntimeError(asyncio_errc::no_running_loop,
                       "capture_call_graph() is called outside of a running event loop and no future to "
                       "introspect was provided: pass the future or task, or call it from a task");
  }
  AnyTask task = current_task();
  if (task.empty()) return std::nullopt;
  return capture_call_graph(task, options);
}

std::string format_call_graph(const FutureCallGraph& graph) { return detail::render(graph); }

std::string format_call_graph(call_graph_options options) {
  std::optional<FutureCallGraph> graph = capture_call_graph(options);
  return graph ? format_call_graph(*graph) : std::string();
}

void print_call_graph(const FutureCallGraph& graph) {
  const std::string text = format_call_graph(graph) + "\n";
  std::fputs(text.c_str(), stdout);
}

void print_call_graph(const FutureCallGraph& graph, std::ostream& out) { out << format_call_graph(graph) << '\n'; }

void print_call_graph(call_graph_options options) {
  const std::string text = format_call_graph(options) + "\n";
  std::fputs(text.c_str(), stdout);
}

void print_call_graph(std::ostream& out, call_graph_options options) { out << format_call_graph(options) << '\n'; }

}  // namespace greenlet::asyncio
