// taskgroup.cpp: asyncio.TaskGroup's rules (Lib/asyncio/taskgroups.py): the
// first failing child cancels its siblings and the task running the group;
// leaving waits for every child; the failures come out as one group.
#include "greenlet/asyncio/taskgroup.hpp"

#include <algorithm>
#include <memory>
#include <string>

#include "asyncio/done_callbacks.hpp"
#include "asyncio/member_list.hpp"

namespace greenlet::asyncio {

namespace {

// describe(exceptions) lists the members for what(): bounded (member_list.hpp), since a gather or
// TaskGroup of 100,000 failing tasks made a message of megabytes.
std::string describe(const std::vector<std::exception_ptr>& exceptions) {
  return detail::bounded_member_list(exceptions, "; ", describe_exception,
                                     [](std::size_t more) { return more == 1 ? " sub-exception" : " sub-exceptions"; });
}

}  // namespace

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
  what_ = message_ + " (" + std::to_string(exceptions_.size()) + " sub-exception" +
          (exceptions_.size() == 1 ? "" : "s") + "): " + describe(exceptions_);
}

ExceptionGroup::split_result ExceptionGroup::split(
    const std::function<bool(const std::exception_ptr&)>& condition) const {
  if (condition(std::make_exception_ptr(*this))) return {*this, std::nullopt};
  std::vector<std::exception_ptr> matched;
  std::vector<std::exception_ptr> rest;
  for (const std::exception_ptr& e : exceptions_) {
    if (condition(e)) {
      matched.push_back(e);
      continue;
    }
    const ExceptionGroup* nested = nullptr;
    try {
      std::rethrow_exception(e);
    } catch (const ExceptionGroup& group) {
      nested = &group;  // the object e holds: it outlives the handler
    } catch (...) {
    }
    if (nested == nullptr) {
      rest.push_back(e);
      continue;
    }
    // A nested group wholly on one side stays there as the same exception, as in Python.
    auto [nested_matched, nested_rest] = nested->split(condition);
    if (!nested_rest) {
      matched.push_back(e);
    } else if (!nested_matched) {
      rest.push_back(e);
    } else {
      matched.push_back(std::make_exception_ptr(*std::move(nested_matched)));
      rest.push_back(std::make_exception_ptr(*std::move(nested_rest)));
    }
  }
  if (rest.empty()) return {*this, std::nullopt};
  if (matched.empty()) return {std::nullopt, *this};
  return {ExceptionGroup(message_, std::move(matched)), ExceptionGroup(message_, std::move(rest))};
}

namespace detail {

// The group's state, shared by the TaskGroup and the done callbacks on its
// children: an owned fast callback each (future_state::add_owned_callback),
// which keeps the state alive through `watchers` and `self` rather than a
// std::function per child.
struct task_group_state : std::enable_shared_from_this<task_group_state> {
  task_state* parent = nullptr;
  // Unfinished children, each's future retained; tasks[i]->group_index == i,
  // so that a child's end unlists it in constant time (swap with the last),
  // whatever the group holds. asyncio keeps a set: the order is not kept.
  std::vector<task_state*> tasks;
  std::vector<std::exception_ptr> errors;
  Future<> on_completed;  // set while join() waits
  bool aborting = false;
  bool exiting = false;  // join() has begun
  bool parent_cancel_requested = false;
  bool finished = false;
  long watchers = 0;                       // callbacks registered, not yet run or dropped
  std::shared_ptr<task_group_state> self;  // set while watchers > 0

  ~task_group_state() {
    for (task_state* t : tasks) release(t->future());
    if (parent != nullptr) release(parent->future());
  }

  void watch(task_state* child) {
    child->group_index = tasks.size();
    tasks.push_back(child);
    retain(child->future());
    if (watchers == 0) self = shared_from_this();
    ++watchers;
    try {
      child->future()->add_owned_callback(&task_group_child_done, &on_child_dropped, this);
    } catch (...) {
      unlist(child);
      unwatch();
      throw;
    }
  }

  // unwatch() gives back a callback's hold; the last one may free the state,
  // so nothing may follow it.
  void unwatch() noexcept {
    if (--watchers == 0) std::shared_ptr<task_group_state> last = std::move(self);
  }

  static void on_child_dropped(void* state, void* child) {
    release(static_cast<future_state*>(child));
    static_cast<task_group_state*>(state)->unwatch();
  }

  // unlist(child) takes a child off `tasks` and gives back the group's
  // reference (the callback's keeps it alive meanwhile).
  void unlist(task_state* child) noexcept {
    const std::size_t i = child->group_index;
    if (i >= tasks.size() || tasks[i] != child) return;
    tasks[i] = tasks.back();
    tasks[i]->group_index = i;
    tasks.pop_back();
    release(child->future());
  }

  void abort() {
    aborting = true;
    for (task_state* t : tasks) {
      if (!t->future()->done()) t->cancel("");
    }
  }

  void on_task_done(future_state& child) {
    unlist(child.as_task());
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

task_state* task_group_parent(void* group) noexcept { return static_cast<task_group_state*>(group)->parent; }

void task_group_child_done(void* state, void* child) {
  auto* s = static_cast<task_group_state*>(state);
  auto* f = static_cast<future_state*>(child);
  struct give_back {
    task_group_state* s;
    future_state* f;
    ~give_back() {
      release(f);
      s->unwatch();
    }
  } guard{s, f};
  s->on_task_done(*f);
}

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
  // As asyncio's: a group at its end with no child left is finished, though
  // join() has not resumed yet; while children run they may add more.
  if (state_->finished || (state_->exiting && state_->tasks.empty())) {
    throw RuntimeError(asyncio_errc::invalid_state, "TaskGroup is finished");
  }
  if (state_->aborting) throw RuntimeError(asyncio_errc::invalid_state, "TaskGroup is shutting down");
}

void TaskGroup::adopt(detail::future_state* child) {
  // A child done already (an eager task that finished in create_task()) is taken as done now, as
  // 3.12's TaskGroup.create_task() does: not listed, no callback, so a group whose children all
  // finished that way ends without waiting. Its failure aborts the group at once.
  if (child->done()) {
    state_->on_task_done(*child);
    return;
  }
  state_->watch(child->as_task());
  // The group began aborting during the child's eager first step (a sibling it made failed at
  // once): the abort could not reach the child, not yet listed, so it is cancelled now.
  if (state_->aborting) child->as_task()->cancel("");
}

void TaskGroup::join(std::exception_ptr body_error) {
  joined_ = true;
  detail::task_group_state& s = *state_;
  s.exiting = true;
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
  if (!errors.empty()) {
    // The ExceptionGroup replaces a CancelledError of a cancellation still
    // requested from outside the group (or one the group's own wait above
    // took): take that request back and make it anew, so it stays pending and
    // interrupts the task's next wait, and the count is unchanged (asyncio
    // since 3.13, gh-116720). Without it an enclosing group or cancel() lost
    // its cancellation and its body waited on.
    if (s.parent->cancelling() > 0) {
      s.parent->uncancel();
      s.parent->cancel("");
    }
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  }
  if (body_error) std::rethrow_exception(body_error);
}

}  // namespace greenlet::asyncio
