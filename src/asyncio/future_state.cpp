// future_state.cpp: asyncio.Future's behaviour, shared by futures and tasks.
#include "greenlet/detail/future_state.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asyncio/awaited_escape.hpp"
#include "asyncio/done_callbacks.hpp"
#include "fiber/escape_trace.hpp"
#include "greenlet/detail/task_state.hpp"

namespace greenlet::asyncio::detail {

namespace {

// Holds a reference to a future inside a std::function.
struct future_ref {
  future_state* p;
  explicit future_ref(future_state* f) noexcept : p(f) { retain(p); }
  future_ref(const future_ref& o) noexcept : p(o.p) { retain(p); }
  future_ref& operator=(const future_ref&) = delete;
  ~future_ref() { release(p); }
};

void release_future(void*, void* future) { release(static_cast<future_state*>(future)); }

}  // namespace

// A general done callback (add_done_callback()), kept on the heap.
struct future_state::general_callback {
  std::function<void(future_state&)> fn;
  ::greenlet::detail::context_ptr context;
};

void future_state::general_entry(void*, void*) {}

void future_state::forget(fast_callback& c) noexcept {
  if (c.fn == &general_entry) delete static_cast<general_callback*>(c.ctx);
  c = {c.id};
}

future_state::~future_state() {
  if (awaited_by_linked_) forget_awaited_by_links(this);
  // A future dropped while pending frees the general callbacks it held.
  for (fast_callback& c : callbacks_) forget(c);
  if (state_ == status::finished && error_ && !error_retrieved_) {
    try {
      exception_context context;
      context.message = is_task_ ? "Task exception was never retrieved" : "Future exception was never retrieved";
      context.exception = error_;
      // A task names itself when it fails (task_state::fail()); a plain future by its repr here, as
      // asyncio's "future: <Future finished exception=...>" (repr() is future_state's in a destructor).
      if (failure_ != nullptr) {
        context.source = failure_->source;
        context.stack = ::greenlet::detail::escape_stack(failure_->escape, ::greenlet::no_frame_limit);
      } else {
        context.source = future_state::repr();
      }
      if (report_context_ != nullptr) {
        // A failed task is reported in a copy of its context, so the handler sees the values
        // the task set (asyncio, gh-96704); the caller's context comes back after.
        struct restore {
          ::greenlet::detail::context_slot outer;
          ~restore() { ::greenlet::detail::exchange_current_context(std::move(outer)); }
        } back{::greenlet::detail::exchange_current_context({std::move(report_context_), 0})};
        loop_->report(context);
      } else {
        loop_->report(context);
      }
    } catch (...) {  // std::bad_alloc making the report: the future goes all the same
    }
  }
  release(loop_);
}

void future_state::throw_invalid(const char* what) const { throw InvalidStateError(what); }

void throw_empty_handle(const char* kind) {
  throw RuntimeError(asyncio_errc::invalid_state,
                     std::string("empty ") + kind +
                         " handle (default-constructed or moved from): it refers to no future; get one from "
                         "create_future() or create_task(), or copy a handle that refers to one");
}

void throw_task_not_settable(const char* operation) {
  throw RuntimeError(asyncio_errc::invalid_state,
                     std::string("Task does not support ") + operation +
                         " operation: a task's result is what its function returns or throws; cancel() it, "
                         "or use a Future made with create_future()");
}

void throw_loop_gone() {
  throw RuntimeError(asyncio_errc::loop_closed,
                     "get_loop(): the future's event loop object was destroyed; keep the event_loop alive as "
                     "long as its futures are used");
}

bool future_state::cancel(const std::string& message) {
  // As asyncio: asking to cancel counts as having looked at the outcome.
  error_retrieved_ = true;
  if (done()) return false;
  set_cancelled(message);
  return true;
}

void future_state::set_cancelled(const std::string& message, std::exception_ptr raised) {
  if (done()) return;
  state_ = status::cancelled;
  cancel_message_ = message;
  error_ = std::move(raised);
  schedule_callbacks();
}

void future_state::throw_cancelled() {
  // The task's own CancelledError once, as asyncio's _make_cancelled_error() returns _cancelled_exc
  // the first time: its object and type (a subclass stays one) reach the awaiter, as gh-111693's
  // Condition tests check. Later calls raise a new one, with the message.
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  throw CancelledError(cancel_message_);
}

void future_state::set_exception(std::exception_ptr error) {
  if (done()) throw_invalid("set_exception() on a future that is already done");
  if (!error) throw InvalidStateError("set_exception() needs an exception");
  error_ = std::move(error);
  error_retrieved_ = false;
  state_ = status::finished;
  schedule_callbacks();
}

void future_state::finish_with_result() {
  state_ = status::finished;
  schedule_callbacks();
}

std::exception_ptr future_state::exception() {
  if (state_ == status::pending) throw_invalid("Exception is not set: the future is still pending");
  if (state_ == status::cancelled) throw_cancelled();
  error_retrieved_ = true;
  return error_;
}

void future_state::check_result() {
  if (state_ == status::pending) throw_invalid("Result is not set: the future is still pending; await it first");
  if (state_ == status::cancelled) throw_cancelled();
  if (error_) {
    error_retrieved_ = true;
    if (failure_ != nullptr) note_rethrown(error_, failure_->escape);
    std::rethrow_exception(error_);
  }
}

namespace {

// The latest failed task's exception raised again by check_result() in a task, with that task's
// traceback: kept until a task fails with it, another takes its place, or the step ends.
struct rethrown_escape {
  std::exception_ptr error;
  ::greenlet::detail::escape_trace escape;
};
thread_local rethrown_escape last_rethrown;

}  // namespace

constinit thread_local bool rethrown_noted = false;

void note_rethrown(const std::exception_ptr& error, const ::greenlet::detail::escape_trace& escape) noexcept {
  const loop_core* running = running_loop();
  if (escape.empty() || running == nullptr || running->current_task == nullptr) return;
  last_rethrown.escape = ::greenlet::detail::copy_of(escape);
  last_rethrown.error = last_rethrown.escape.empty() ? nullptr : error;
  rethrown_noted = last_rethrown.error != nullptr;
}

void forget_rethrown() noexcept {
  last_rethrown.error = nullptr;
  last_rethrown.escape = {};
  rethrown_noted = false;
}

::greenlet::detail::escape_trace take_awaited_escape(const std::exception_ptr& error) noexcept {
  if (!rethrown_noted || error == nullptr || last_rethrown.error != error) return {};
  ::greenlet::detail::escape_trace escape = std::move(last_rethrown.escape);
  forget_rethrown();
  return escape;
}

std::uint64_t future_state::add_done_callback(std::function<void(future_state&)> fn,
                                              ::greenlet::detail::context_ptr context) {
  const std::uint64_t id = next_callback_id_++;
  if (done()) {
    loop_->call_soon([ref = future_ref(this), fn = std::move(fn)] { fn(*ref.p); }, std::move(context));
  } else {
    auto general = std::unique_ptr<general_callback>(new general_callback{std::move(fn), std::move(context)});
    callbacks_.push_back({id, &general_entry, general.get()});
    general.release();  // callbacks_ owns it now
  }
  return id;
}

std::uint64_t future_state::add_fast_callback(void (*fn)(void*, void*), void* ctx) {
  return add_fast(fn, &release_future, ctx);
}

std::uint64_t future_state::add_owned_callback(void (*fn)(void*, void*), void (*drop)(void*, void*), void* ctx) {
  return add_fast(fn, drop, ctx);
}

// add_fast() registers a fast callback; a plain one's drop only releases the
// future (release_future).
std::uint64_t future_state::add_fast(void (*fn)(void*, void*), void (*drop)(void*, void*), void* ctx) {
  const std::uint64_t id = next_callback_id_++;
  if (done()) {
    retain(this);
    loop_->call_soon_fast(fn, ctx, this, drop);
  } else if (first_.fn == nullptr && callbacks_.empty()) {
    first_ = {id, fn, ctx, drop};
  } else {
    callbacks_.push_back({id, fn, ctx, drop});
  }
  return id;
}

std::size_t future_state::remove_done_callback(std::uint64_t id) {
  if (first_.fn != nullptr && first_.id == id) {
    first_ = {};
    return 1;
  }
  // callbacks_ is in id order (ids grow and entries are appended), so the
  // entry is found by bisection and left as a tombstone, swept once they are
  // half the list: N waiters of one future that all give up (timeouts on a
  // shared event) cost N log N rather than N^2.
  auto it = std::lower_bound(callbacks_.begin(), callbacks_.end(), id,
                             [](const fast_callback& c, std::uint64_t v) { return c.id < v; });
  if (it == callbacks_.end() || it->id != id || it->fn == nullptr) return 0;
  forget(*it);
  if (++removed_callbacks_ * 2 > callbacks_.size()) {
    std::erase_if(callbacks_, [](const fast_callback& c) { return c.fn == nullptr; });
    removed_callbacks_ = 0;
  }
  return 1;
}

void future_state::schedule_callbacks() {
  const fast_callback first = std::exchange(first_, {});
  // The entries not yet handed to the loop; a general one left there (call_soon() threw
  // std::bad_alloc, or the loop is closed) is freed on the way out.
  struct pending_entries {
    std::vector<fast_callback> list;
    ~pending_entries() {
      for (fast_callback& c : list) forget(c);
    }
  } ready;
  ready.list.swap(callbacks_);
  removed_callbacks_ = 0;
  // A closed loop runs nothing more: the callbacks are dropped, each fast
  // one's drop giving back its references.
  if (loop_->closed) {
    retain(this);  // a drop may give back what kept this future alive
    if (first.fn != nullptr) {
      retain(this);
      first.drop(first.ctx, this);
    }
    for (fast_callback& c : ready.list) {
      if (c.fn != nullptr && c.fn != &general_entry) {
        retain(this);
        c.drop(c.ctx, this);
      }
    }
    release(this);  // may delete this: nothing follows (ready frees the general ones)
    return;
  }
  if (first.fn != nullptr) {
    retain(this);
    loop_->call_soon_fast(first.fn, first.ctx, this, first.drop);
  }
  for (fast_callback& c : ready.list) {
    if (c.fn == nullptr) continue;
    if (c.fn != &general_entry) {
      retain(this);
      loop_->call_soon_fast(c.fn, c.ctx, this, c.drop);
    } else {
      general_callback& g = *static_cast<general_callback*>(c.ctx);
      loop_->call_soon([ref = future_ref(this), fn = std::move(g.fn)] { fn(*ref.p); }, std::move(g.context));
      forget(c);
    }
  }
}

std::string future_state::state_name() const {
  switch (state_) {
    case status::pending: return "pending";
    case status::finished: return "finished";
    case status::cancelled: return "cancelled";
  }
  return "?";
}

std::string future_state::outcome_repr() const {
  if (state_ != status::finished) return "";
  if (error_) return " exception=" + exception_repr(error_);
  // A result can hold a handle to its own future or task (a task returning
  // all_tasks()): printing it would print this again, for ever. Met again
  // while it prints, the result shows as "...", as asyncio's
  // reprlib.recursive_repr() makes a task's repr.
  // The futures printing now are a list of frames on this thread's stack:
  // nothing allocated.
  struct printing_frame {
    const future_state* future;
    const printing_frame* up;
  };
  thread_local const printing_frame* printing = nullptr;
  for (const printing_frame* p = printing; p != nullptr; p = p->up) {
    if (p->future == this) return " result=...";
  }
  const printing_frame frame{this, printing};
  printing = &frame;
  struct pop {
    const printing_frame& frame;
    ~pop() { printing = frame.up; }
  } guard{frame};
  return result_repr();
}

namespace {

// callback_name(fn) is how asyncio's repr names the done callback that the fast
// callback fn stands for. asyncio adds " at file:line" for a Python function;
// C++ has no such place to show.
const char* callback_name(void (*fn)(void*, void*)) {
  if (fn == &task_state::wakeup_callback) return "Task.task_wakeup()";
  if (fn == &task_group_child_done) return "TaskGroup._on_task_done()";
  if (fn == &run_until_complete_done) return "_run_until_complete_cb()";
  return "<callback>";
}

}  // namespace

std::string future_state::callbacks_repr() const {
  // Registration order: first_ is older than every entry of callbacks_.
  std::vector<const char*> names;
  if (first_.fn != nullptr) names.push_back(callback_name(first_.fn));
  for (const fast_callback& c : callbacks_) {
    if (c.fn != nullptr) names.push_back(callback_name(c.fn));
  }
  if (names.empty()) return "";
  std::string listed = names.front();
  if (names.size() == 2) listed += std::string(", ") + names.back();
  if (names.size() > 2) {
    listed += ", <" + std::to_string(names.size() - 2) + " more>, " + names.back();
  }
  return " cb=[" + listed + "]";
}

std::string future_state::summary() const { return "<Future " + state_name() + outcome_repr() + ">"; }

std::string future_state::repr() const { return "<Future " + state_name() + outcome_repr() + callbacks_repr() + ">"; }

}  // namespace greenlet::asyncio::detail
