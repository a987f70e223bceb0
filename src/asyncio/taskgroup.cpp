// taskgroup.cpp: asyncio.TaskGroup's rules (Lib/asyncio/taskgroups.py): the
// first failing child cancels its siblings and the task running the group;
// leaving waits for every child; the failures come out as one group.
#include "greenlet/asyncio/taskgroup.hpp"

#include <algorithm>
#include <memory>
#include <string>

namespace greenlet::asyncio {

namespace {

std::string describe(const std::vector<std::exception_ptr>& exceptions) {
  std::string out;
  for (const auto& e : exceptions) out += (out.empty() ? "" : "; ") + describe_exception(e);
  return out;
}

}  // namespace

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
  what_ = message_ + " (" + std::to_string(exceptions_.size()) + " sub-exception" +
          (exceptions_.size() == 1 ? "" : "s") + "): " + describe(exceptions_);
}

namespace detail {

struct task_group_state {
  task_state* parent = nullptr;
  std::vector<future_state*> tasks;  // unfinished children, each retained
  std::vector<std::exception_ptr> errors;
  Future<> on_completed;  // set while join() waits
  bool aborting = false;
  bool parent_cancel_requested = false;
  bool finished = false;

  ~task_group_state() {
    for (future_state* t : tasks) release(t);
    if (parent != nullptr) release(parent->future());
  }

  void abort() {
    aborting = true;
    for (future_state* t : tasks) {
      if (!t->done()) t->cancel();
    }
  }

  void on_task_done(future_state& child) {
    auto it = std::find(tasks.begin(), tasks.end(), &child);
    if (it != tasks.end()) {
      tasks.erase(it);
      release(&child);  // the group's reference; the callback's keeps it alive
    }
    if (!on_completed.empty() && tasks.empty() && !on_completed.done()) on_completed.set_result();
    if (child.cancelled()) return;
    std::exception_ptr error = child.exception();
    if (!error) return;
    errors.push_back(error);
    if (parent->future()->done()) {
      parent->loop->report({"a task of a TaskGroup failed after the group's task had finished", error, child.repr()});
      return;
    }
    if (!aborting && !parent_cancel_requested) {
      // Stop the siblings, and interrupt the group's own body at its next
      // suspension point so it leaves the group early.
      abort();
      parent_cancel_requested = true;
      parent->cancel("");
    }
  }
};

}  // namespace detail

TaskGroup::TaskGroup() : state_(std::make_shared<detail::task_group_state>()) {
  detail::task_state& task = detail::awaiting_task();
  detail::retain(task.future());
  state_->parent = &task;
  uncaught_at_entry_ = std::uncaught_exceptions();
}

TaskGroup::~TaskGroup() noexcept(false) {
  if (joined_) return;
  if (std::uncaught_exceptions() > uncaught_at_entry_) {
    // The scope is unwinding with an exception of its own: the children are
    // cancelled and awaited, and their failures go to the exception handler
    // (a second exception cannot leave a destructor during unwinding).
    try {
      join(std::make_exception_ptr(CancelledError("TaskGroup scope left by an exception")));
    } catch (const ExceptionGroup& group) {
      for (const auto& e : group.exceptions()) {
        if (!detail::is_cancellation(e)) state_->parent->loop->report({"unhandled error in a TaskGroup", e, ""});
      }
    } catch (...) {
    }
    return;
  }
  join();
}

void TaskGroup::check_open() const {
  if (state_->finished) throw RuntimeError(asyncio_errc::invalid_state, "TaskGroup is finished");
  if (state_->aborting) throw RuntimeError(asyncio_errc::invalid_state, "TaskGroup is shutting down");
}

void TaskGroup::adopt(detail::future_state* child) {
  detail::retain(child);
  state_->tasks.push_back(child);
  child->add_done_callback([state = state_](detail::future_state& done) { state->on_task_done(done); });
}

void TaskGroup::join(std::exception_ptr body_error) {
  joined_ = true;
  detail::task_group_state& s = *state_;
  std::exception_ptr propagate_cancellation;
  if (body_error) {
    if (detail::is_cancellation(body_error)) propagate_cancellation = body_error;
    if (!s.aborting) s.abort();
  }
  while (!s.tasks.empty()) {
    s.on_completed = s.parent->loop->facade->create_future<>();
    try {
      detail::await_state(s.on_completed.state());
      if (s.on_completed.cancelled()) s.on_completed.result();  // raises CancelledError
    } catch (const CancelledError&) {
      // The group's task was cancelled while waiting: cancel the children
      // and, unless a child's failure caused it, pass the cancellation on.
      if (!s.aborting) {
        propagate_cancellation = std::current_exception();
        s.abort();
      }
    }
    s.on_completed = Future<>();
  }
  s.finished = true;
  if (s.parent_cancel_requested && s.parent->uncancel() == 0) {
    // The cancellation was ours, sent to interrupt the body: not passed on.
    propagate_cancellation = nullptr;
  }
  if (propagate_cancellation && s.errors.empty()) std::rethrow_exception(propagate_cancellation);
  std::vector<std::exception_ptr> errors = s.errors;
  if (body_error && !detail::is_cancellation(body_error)) errors.push_back(body_error);
  if (!errors.empty()) throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  if (body_error) std::rethrow_exception(body_error);
}

}  // namespace greenlet::asyncio
