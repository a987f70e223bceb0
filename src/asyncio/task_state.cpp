// task_state.cpp: how a task runs: its steps, suspension, cancellation, and
// await()/sleep(), which suspend the task running them.
#include "greenlet/detail/task_state.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "asyncio/awaited_escape.hpp"
#include "fiber/escape_trace.hpp"
#include "fiber/loop_hints.hpp"
#include "greenlet/asyncio/task.hpp"

namespace greenlet::asyncio::detail {

namespace {

std::atomic<std::uint64_t> task_counter{1};

// in_generator_body() says whether the running greenlet is a generator's
// body, or runs below one, in the task: the usual reason an await in a task
// comes from a greenlet other than the task's own.
bool in_generator_body(const task_state* task) {
  for (const auto* g = ::greenlet::detail::current_impl(); g != nullptr && g != task->glet.impl(); g = g->parent) {
    if (g->generator != nullptr) return true;
  }
  return false;
}

}  // namespace

task_state::first_step first_step_for(const std::optional<bool>& eager_start) noexcept {
  if (!eager_start.has_value()) return task_state::first_step::per_loop;
  return *eager_start ? task_state::first_step::eager : task_state::first_step::scheduled;
}

void no_awaiting_task(loop_core* loop) {
  if (loop == nullptr) {
    throw RuntimeError(asyncio_errc::no_running_loop,
                       "await outside a running event loop: call it from a task, e.g. inside "
                       "asyncio::run(main) or a function given to create_task()");
  }
  task_state* task = loop->current_task;
  if (task == nullptr) {
    throw RuntimeError(asyncio_errc::not_in_task,
                       "await in a plain callback of the event loop: only code running in a task "
                       "can await; start it with create_task()");
  }
  if (::greenlet::detail::current_impl() != task->glet.impl()) {
    if (in_generator_body(task)) {
      throw RuntimeError(asyncio_errc::not_in_task,
                         "await inside a generator's body: a greenlet::generator body runs on a "
                         "greenlet of its own and cannot suspend the task; make it an "
                         "asyncio::async_generator, whose body can await, or await outside the body");
    }
    throw RuntimeError(asyncio_errc::not_in_task,
                       "await from a greenlet that is not the task's own: a greenlet switched to "
                       "inside a task cannot suspend the task; await in the task itself");
  }
  // Unreachable while awaiting_task() calls this only when a check failed.
  throw RuntimeError(asyncio_errc::not_in_task, "await outside a task");
}

void task_state::prepare(loop_core* l) {
  loop = l;
  if (name_.empty()) number_ = task_counter.fetch_add(1, std::memory_order_relaxed);
  if (host != nullptr) {
    glet = ::greenlet::greenlet::hosted_on_stack(run_body{this}, host, ::greenlet::detail::stack_host_memory(host),
                                                 l->task_stack);
  } else {
    glet = ::greenlet::greenlet(run_body{this}, ::greenlet::greenlet(), l->task_stack);
  }
  glet.impl()->role = this;  // so that a stack overflow report names the task
  // Only the loop starts and resumes it (switch_as_owner()): a switch_() into it by hand is refused.
  ::greenlet::detail::lock_resume(glet.impl());
  // A task runs in a copy of its creator's context (asyncio's rule): a
  // snapshot in a context of its own, so what the task sets stays in the task.
  glet.impl()->context_vars.vars = ::greenlet::detail::current_context();
  l->link_task(this);
}

void task_state::begin(first_step when) {
  // asyncio's Task(eager_start=True) steps at once only in a running loop (it falls back to
  // call_soon otherwise): here, the loop running on this thread.
  const bool eager = when == first_step::eager || (when == first_step::per_loop && loop->eager_tasks);
  if (eager && loop->running && running_loop() == loop) {
    eager_step();
  } else {
    loop->call_soon_fast(&step_callback, this, nullptr);
  }
}

void task_state::start(loop_core* l, first_step when) {
  prepare(l);
  begin(when);
}

void task_state::start(loop_core* l, ::greenlet::context& ctx, first_step when) {
  prepare(l);
  // asyncio's create_task(context=ctx): the task runs in ctx itself. Entered
  // until body() ends, so that a run() of ctx meanwhile, or a second task
  // given it, is refused instead of losing one side's sets.
  glet.impl()->context_vars = ctx.enter_elsewhere();
  shared_context_ = &ctx;
  begin(when);
}

void task_state::eager_step() {
  loop_core* l = loop;
  // The step comes back here: the task's greenlet finishes into its parent, and suspend_inline()
  // switches to l->suspend_target. Both are the creator's greenlet for this step; the parent
  // becomes the loop's greenlet afterwards, as step() makes it, for the steps the loop runs.
  // No hand-off meanwhile (turn_remaining 0): a step of another task taken now would come
  // back here, in the middle of the creator's create_task().
  ::greenlet::greenlet creator = ::greenlet::getcurrent();
  glet.set_parent(creator);
  struct restore_creator {
    loop_core* l;
    task_state* task;
    ::greenlet::detail::greenlet_impl* target;
    std::size_t remaining;
    ~restore_creator() {
      l->current_task = task;
      l->suspend_target = target;
      l->turn_remaining = remaining;
    }
  } restore{l, l->current_task, l->suspend_target, l->turn_remaining};
  l->current_task = this;
  l->suspend_target = creator.impl();
  l->turn_remaining = 0;
  switch_in_first_time();
  if (!glet.dead()) glet.set_parent(l->loop_greenlet);
  // As after a step the loop ran: unlinked if done, failed if it stranded itself.
  after_step();
}

void task_state::make_default_name() const { name_ = "Task-" + std::to_string(number_); }

const ::greenlet::detail::greenlet_role_ops task_state::role_table{&task_state::describe_for_report,
                                                                   &task_state::advise_stack_for_report};

void task_state::describe_for_report(const greenlet_role* role, char* out, std::size_t size) noexcept {
  const auto* task = static_cast<const task_state*>(role);
  if (!task->name_.empty()) {
    std::snprintf(out, size, "Task '%s'", task->name_.c_str());
  } else {
    std::snprintf(out, size, "Task 'Task-%llu'", static_cast<unsigned long long>(task->number_));
  }
}

void task_state::advise_stack_for_report(const greenlet_role*, std::size_t bigger, bool guarded, char* out,
                                         std::size_t size) noexcept {
  std::snprintf(out, size,
                "  Give it a bigger one: asyncio::event_loop::options::task_stack = {.size = %zu%s}\n"
                "  (for every task of its loop: pass the options to event_loop(options) or asyncio::run(main, "
                "options)).\n",
                bigger, guarded ? "" : ", .guard_page = false");
}

void task_state::step_callback(void* task, void*) { static_cast<task_state*>(task)->step(); }

void task_state::wakeup_callback(void* task, void* future) {
  release(static_cast<future_state*>(future));
  static_cast<task_state*>(task)->step();
}

void task_state::step() {
  if (future_->done()) return;
  loop_core* l = loop;
  if (!glet.started()) glet.set_parent(l->loop_greenlet);
  l->current_task = this;
  struct clear_current {
    loop_core* l;
    ~clear_current() { l->current_task = nullptr; }
  } clear{l};
  // switch_as_owner(): the task's greenlet is locked against switches by hand (start()).
  if (!glet.started()) {
    switch_in_first_time();
  } else {
    ::greenlet::detail::switch_as_owner(glet.impl());
  }
  // Back on the loop's greenlet: from this task, or from the last of the
  // tasks it handed the turn on to (suspend()); that one is current_task.
  if (task_state* back = l->current_task) back->after_step();
}

::greenlet::context task_state::context_copy() const noexcept {
  // The task's greenlet keeps its context once it has ended (the done callbacks read it); only a
  // task the loop let go of unfinished has no greenlet left.
  const ::greenlet::detail::greenlet_impl* g = glet.impl();
  return g != nullptr ? ::greenlet::context(g->context_vars.vars) : ::greenlet::context();
}

void print_stack_report(const std::string& report) noexcept { std::fputs(report.c_str(), stderr); }

::greenlet::stack_summary task_state::stack(std::size_t limit) const {
  if (future_->done()) {
    // As asyncio: a task that failed gives its exception's traceback; one done otherwise, nothing.
    if (!future_->failed() || future_->failure_ == nullptr) return {};
    return ::greenlet::detail::escape_stack(future_->failure_->escape, limit);
  }
  if (glet.empty()) return {};
  return glet.get_stack(limit);
}

std::string task_state::stack_report(std::size_t limit) const {
  const ::greenlet::stack_summary frames = stack(limit);
  const bool failed = future_->failed();
  std::string report;
  if (frames.empty()) {
    report = "No stack for " + repr() + "\n";
  } else {
    report = (failed ? "Traceback for " : "Stack for ") + repr() + " (most recent call last):\n" +
             ::greenlet::format_stack(frames);
  }
  // The exception itself, as Python's traceback prints it last (failed(): not counted as retrieved).
  if (failed) report += exception_only(future_->peek_exception()) + "\n";
  return report;
}

void task_state::switch_in_first_time() {
  try {
    ::greenlet::detail::switch_as_owner(glet.impl());
  } catch (const ::greenlet::error& e) {
    if (e.code() != ::greenlet::errc::stack_exhausted || glet.started()) throw;
    let_go_of_shared_context();
    drop_unrun_function();
    fail(std::current_exception());
  }
}

void task_state::after_step() {
  if (rethrown_noted) [[unlikely]] {
    forget_rethrown();  // what the task caught of an awaited task's, let go of (awaited_escape.hpp)
  }
  if (future_->done()) {
    loop->unlink_task(this);  // may free this task
    return;
  }
  // Suspended by await (or sleep), the task's greenlet is locked against switches by hand
  // (suspend_inline()); resumed, its owner's switch unlocked it. Unlocked, it came back some other way.
  if (!::greenlet::detail::resume_locked(glet.impl())) {
    // The task switched to the loop's greenlet by hand: nothing will ever
    // resume it where it stopped. Fail it loudly and unwind its stack.
    fail(std::make_exception_ptr(
        RuntimeError(asyncio_errc::stranded_task,
                     "task '" + name() +
                         "' switched to the event loop's greenlet by hand and would be stranded; inside a "
                         "task, suspend only with asyncio::await() or asyncio::sleep()")));
    abandon();
  }
}

void task_state::abandon() noexcept {
  loop_core* l = loop;
  // Held through the unwinding: it writes into this state, and the last
  // other reference (the loop's, or a Task handle) may go meanwhile.
  retain(future_);
  l->unlink_task(this);
  // Not by dropping the handle: a generator or child greenlet on the task's
  // stack refers back to the task's greenlet, so that would not kill it.
  const bool unwound = ::greenlet::detail::unwind_now(glet);
  // A context given to the task is let go of either way (body() handed it
  // back if it ran): an unstarted task's stack has no body() to do so, and
  // one that cannot unwind would keep it entered for ever.
  let_go_of_shared_context();
  if (unwound) {
    glet = ::greenlet::greenlet();
    drop_unrun_function();  // a task never started: run() did not drop it
    release(future_);       // may free this task
    return;
  }
  held_until_unwound_ = true;
  try {
    l->report(
        {"Task's stack could not be unwound: its greenlet is running, or caught GreenletExit and switched "
         "away instead of finishing; the task's state is kept until the stack unwinds",
         nullptr, repr()});
  } catch (...) {  // std::bad_alloc making the message: the task is let go of all the same
  }
}

void task_state::body() {
  struct give_back_held_reference {
    task_state* t;
    ~give_back_held_reference() {
      if (t->held_until_unwound_) {
        t->held_until_unwound_ = false;
        release(t->future_);  // may free the task: nothing touches it after
      }
    }
  } guard{this};
  // Declared after `guard`, so it runs first: the task may be freed by it.
  struct hand_back_shared_context {
    task_state* t;
    ~hand_back_shared_context() {
      if (t->shared_context_ != nullptr) {
        t->shared_context_->leave_elsewhere(t->glet.impl()->context_vars.vars);
        t->shared_context_ = nullptr;
      }
    }
  } context_guard{this};
  if (must_cancel) {
    must_cancel = false;
    drop_unrun_function();  // in the task, as when run() ends
    future_->set_cancelled(cancel_message);
    return;
  }
  // Where an exception left the task's function from, for its traceback: recorded as it leaves
  // run_for_traceback() below, before its frames unwind (src/fiber/escape_trace.cpp).
  ::greenlet::detail::escape_trace escape;
  try {
    if (loop->task_tracebacks) [[likely]] {
      ::greenlet::detail::call_recording_escape(&run_for_traceback, this, escape);
    } else {
      run_for_traceback(this);
    }
  } catch (const GreenletExit&) {
    future_->set_cancelled("the task's greenlet was killed");
    throw;
  } catch (...) {
    if (!future_->done()) fail(std::current_exception(), std::move(escape));
  }
}

void task_state::run_for_traceback(void* self) {
  auto* task = static_cast<task_state*>(self);
  // A cancelled task has no traceback (asyncio's get_stack() gives none): caught here, below the
  // recording call, a CancelledError costs no walk of the stack.
  try {
    task->run();
  } catch (const CancelledError& e) {
    task->future_->set_cancelled(e.message(), std::current_exception());
  }
}

void task_state::fail(std::exception_ptr error, ::greenlet::detail::escape_trace escape) {
  // The traceback of a task this one awaited, if that task's exception is what ends this one: the
  // newest part, below this task's await (Python's traceback grows as the exception goes up).
  ::greenlet::detail::escape_trace awaited = take_awaited_escape(error);
  future_->set_exception(std::move(error));
  if (future_->failure_ == nullptr) {
    future_->failure_ = std::make_unique<future_state::failure_note>();
    future_->failure_->escape = std::move(escape);
  } else {
    // The inner part a task factory's wrapper left (run_through_wrapper()); this is the outer.
    ::greenlet::detail::append_outer(future_->failure_->escape, escape);
  }
  if (!awaited.empty()) {
    ::greenlet::detail::append_outer(awaited, future_->failure_->escape);
    future_->failure_->escape = std::move(awaited);
  }
  future_->failure_->source = repr();
  // The task's context as it failed (its greenlet's, current when the function threw): the
  // exception handler reporting it later, wherever the last handle goes, runs in it.
  future_->report_context_ = glet.impl() != nullptr ? glet.impl()->context_vars.vars : nullptr;
}

void task_state::suspend() { suspend_inline(); }

void raise_pending_cancel(task_state& task) {
  task.must_cancel = false;
  throw CancelledError(task.cancel_message);
}

bool task_state::cancel(const std::string& message) {
  // As asyncio's Task.cancel() (and Future.cancel()): asking counts as
  // having looked at the outcome, even of a task already done.
  future_->mark_retrieved();
  if (future_->done()) return false;
  // Cancelling goes on to what the task awaits; tasks awaiting each other
  // in a cycle would send it round forever (asyncio overflows Python's
  // stack: RecursionError). Say so instead.
  if (forwarding_cancel_) throw_cancel_cycle();
  ++num_cancels_requested_;
  if (waiting_on != nullptr) {
    struct forwarding {
      task_state& t;
      bool done = false;
      ~forwarding() {
        t.forwarding_cancel_ = false;
        if (!done) --t.num_cancels_requested_;  // the cancel failed: not requested
      }
    } guard{*this};
    forwarding_cancel_ = true;
    const bool forwarded = waiting_on->cancel(message);
    guard.done = true;
    if (forwarded) return true;
    if (waiting_on->cancelled()) {
      // asyncio: the awaited future was cancelled already (by an earlier
      // cancel() or by hand), so the task wakes with that future's
      // CancelledError and its message; Task.__step drops this request.
      return true;
    }
  }
  if (sleep_cancelled) {
    // asyncio: the sleep's future is cancelled already; the task raises
    // that one's CancelledError, with its message, and drops this request.
    must_cancel = true;
    return true;
  }
  cancel_message = message;
  if (sleep_timer != nullptr) {
    // As asyncio cancels the sleep's future: the sleep ends now with
    // CancelledError (sleep_for()), not at its deadline.
    loop->cancel_node(sleep_timer);
    release(sleep_timer);
    sleep_timer = nullptr;
    sleep_cancelled = true;
    loop->call_soon_fast(&step_callback, this, nullptr);
    return true;
  }
  must_cancel = true;
  return true;
}

void task_state::throw_cancel_cycle() const {
  std::string cycle = name();
  for (const task_state* t = this;;) {
    const task_state* next = t->waiting_on != nullptr ? t->waiting_on->as_task() : nullptr;
    if (next == nullptr) break;
    cycle += " -> " + next->name();
    if (next == this) break;
    t = next;
  }
  throw RuntimeError(asyncio_errc::deadlock,
                     "cancel(): tasks await each other in a cycle (" + cycle +
                         "), so none of them can finish and cancelling goes round the cycle; a task must not "
                         "await a task that awaits it");
}

std::string task_state::repr_head() const {
  std::string out = "<Task ";
  switch (future_->state()) {
    // As asyncio (3.11): a pending task with a cancel requested says so.
    case future_state::status::pending: out += num_cancels_requested_ > 0 ? "cancelling" : "pending"; break;
    case future_state::status::finished: out += "finished"; break;
    case future_state::status::cancelled: out += "cancelled"; break;
  }
  return out + " name=" + python_str_repr(name());
}

std::string task_state::summary() const { return repr_head() + future_->outcome_repr() + ">"; }

std::string task_state::repr() const {
  // asyncio nests the awaited future's repr in wait_for=, and a task awaiting
  // a task awaiting ... nests each. Built as a loop, not by recursion: the
  // heads of the chain in order, then their tails in reverse. A task met
  // twice (tasks awaiting each other) shows as "...", as asyncio's
  // reprlib.recursive_repr() does.
  std::string out;
  std::vector<const task_state*> open;
  for (const task_state* t = this;;) {
    open.push_back(t);
    out += t->repr_head();
    if (t->waiting_on == nullptr) {
      // asyncio's sleep(delay) awaits a future that its timer completes.
      if (t->sleep_timer != nullptr) out += " wait_for=<Future pending cb=[Task.task_wakeup()]>";
      break;
    }
    out += " wait_for=";
    const task_state* next = t->waiting_on->as_task();
    if (next == nullptr) {
      out += t->waiting_on->repr();
      break;
    }
    if (std::find(open.begin(), open.end(), next) != open.end()) {
      out += "...";
      break;
    }
    t = next;
  }
  for (auto t = open.rbegin(); t != open.rend(); ++t) {
    out += (*t)->future_->outcome_repr() + (*t)->future_->callbacks_repr() + ">";
  }
  return out;
}

std::string task_state::awaiting() const {
  if (waiting_on != nullptr) return waiting_on->summary();
  if (sleep_timer != nullptr) return "sleep()";
  return "nothing (ready to run)";
}

await_registration begin_await(future_state* f) {
  if (f == nullptr) throw_empty_handle("Future/Task");
  task_state& t = awaiting_task();
  if (f->loop() != t.loop) {
    throw RuntimeError(asyncio_errc::wrong_loop,
                       "await on a future attached to a different loop: create it with this loop's "
                       "create_future(), or hand results across with call_soon_threadsafe()");
  }
  if (f->done()) return {nullptr, 0};
  if (f == t.future()) throw RuntimeError(asyncio_errc::wrong_loop, "a task cannot await itself");
  retain(f);
  t.waiting_on = f;
  const std::uint64_t id = f->add_fast_callback(&task_state::wakeup_callback, &t);
  try {
    if (t.must_cancel && f->cancel(t.cancel_message)) t.must_cancel = false;
  } catch (...) {
    end_await(&t, f, id);
    throw;
  }
  return {&t, id};
}

void end_await(task_state* t, future_state* f, std::uint64_t id) noexcept {
  // asyncio's Task.__wakeup calls result() on the future that woke the task
  // before the step that raises a cancel() made meanwhile: f's exception was
  // looked at even when the task leaves by CancelledError.
  if (f->done()) f->mark_retrieved();
  f->remove_done_callback(id);
  t->waiting_on = nullptr;
  release(f);
}

void await_state(future_state* f) { await_inline(f); }

namespace {

// sleep_timer_fired() is a sleep's timer: as asyncio's timer completes the
// sleep's future and the task steps on a later turn, it only schedules the
// step. A cancel() in between (a call_later due at the same time, a timeout)
// then finds the task ready, not sleeping: it sets must_cancel and the sleep
// raises CancelledError, as in asyncio. Stepping from the timer itself let
// the sleep return and the cancel arrive too late.
void sleep_timer_fired(void* task, void*) {
  auto* t = static_cast<task_state*>(task);
  release(t->sleep_timer);
  t->sleep_timer = nullptr;
  t->loop->call_soon_fast(&task_state::step_callback, t, nullptr);
}

}  // namespace

void sleep_for(double delay) {
  task_state* t = &awaiting_task();
  loop_core* loop = t->loop;
  struct done_sleeping {
    task_state* t;
    ~done_sleeping() {
      t->sleep_cancelled = false;
      if (t->sleep_timer != nullptr) {
        t->loop->cancel_node(t->sleep_timer);
        release(t->sleep_timer);
        t->sleep_timer = nullptr;
      }
    }
  } guard{t};
  if (t->must_cancel) {
    // Cancelled while it ran (by itself, say): asyncio's step cancels the
    // future a task then awaits, so the sleep ends on the next turn with
    // CancelledError, not after `delay`.
    t->must_cancel = false;
    t->sleep_cancelled = true;
    loop->call_soon_fast(&task_state::step_callback, t, nullptr);
  } else {
    callback_node* timer = loop->call_at_fast(loop->time() + delay, &sleep_timer_fired, t, nullptr);
    retain(timer);
    t->sleep_timer = timer;
  }
  t->suspend_inline();
  if (t->sleep_cancelled) throw CancelledError(t->cancel_message);
}

}  // namespace greenlet::asyncio::detail
