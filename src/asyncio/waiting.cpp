// waiting.cpp: the waiting behind gather(), wait(), wait_for() and
// as_completed(), and asyncio::run's shutdown.
//
// Each waits on one private "outer" future that callbacks on the children
// complete. Those callbacks may already sit in the ready queue when the
// waiting frame returns (remove_done_callback cannot recall them), so
// everything they touch lives in a shared wait_state they keep alive, never
// in the waiting frame.
#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "asyncio/done_callbacks.hpp"
#include "greenlet/asyncio/executor.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/tasks.hpp"

namespace greenlet::asyncio::detail {

namespace {

std::exception_ptr failure_of(future_state* f) {
  try {
    return f->exception();
  } catch (...) {
    return std::current_exception();  // CancelledError for a cancelled child
  }
}

struct wait_state;

// gathering_future is gather()'s outer future, as asyncio's _GatheringFuture:
// the task awaiting it forwards its cancel() here, which cancels every child
// with the message and leaves this future pending; the children's callbacks
// complete it. Points back at its wait_state, which owns it.
class gathering_future final : public future_value<void> {
 public:
  gathering_future(loop_core* loop, wait_state* owner) : future_value<void>(loop), owner_(owner) {}
  bool cancel(const std::string& message) override;
  void detach() noexcept { owner_ = nullptr; }

 private:
  wait_state* owner_;
};

struct wait_state {
  explicit wait_state(loop_core* loop, const std::vector<future_state*>& fs, bool gathering = false)
      : outer(gathering ? new gathering_future(loop, this) : new future_value<void>(loop)), children(fs) {
    if (gathering) gatherer = static_cast<gathering_future*>(outer.state());
    for (future_state* c : children) retain(c);
  }
  ~wait_state() {
    if (gatherer != nullptr) gatherer->detach();
    for (future_state* c : children) release(c);
  }
  wait_state(const wait_state&) = delete;
  wait_state& operator=(const wait_state&) = delete;

  Future<> outer;
  std::vector<future_state*> children;
  std::size_t remaining = 0;
  std::deque<std::size_t> completed;     // indexes, in completion order
  bool collect = false;                  // gather(return_exceptions, ...)
  return_when when = ALL_COMPLETED;      // wait()'s condition
  gathering_future* gatherer = nullptr;  // outer, if gather()'s
  bool waited_once = false;              // as_completed() has waited: a passed deadline now holds
  std::deque<Future<>> next_waiters;     // as_completed(): each waiting next()'s own future, FIFO
  bool cancel_requested = false;         // gather()'s waiting task was cancelled
  std::string cancel_message;            // the last such cancel's
  // The task waiting in gather() or wait() while it waits, for the call graph (asyncio's
  // future_add_to_awaited_by(child, task)); null otherwise, and for as_completed().
  task_state* waiter = nullptr;
};

// waiting_task_mark names the waiting task in its wait_state for as long as the wait lasts.
class waiting_task_mark {
 public:
  waiting_task_mark(wait_state& s, task_state& task) noexcept : s_(s) { s.waiter = &task; }
  ~waiting_task_mark() { s_.waiter = nullptr; }
  waiting_task_mark(const waiting_task_mark&) = delete;
  waiting_task_mark& operator=(const waiting_task_mark&) = delete;

 private:
  wait_state& s_;
};

bool gathering_future::cancel(const std::string& message) {
  if (done() || owner_ == nullptr) return false;
  // One pass over the children per cancel, as asyncio's; true if any child
  // took it (otherwise the task keeps the cancel pending for itself).
  bool any = false;
  struct record {
    wait_state& s;
    const std::string& message;
    bool& any;
    ~record() {  // also when a child's cancel() throws (a cycle)
      if (!any) return;
      s.cancel_requested = true;
      s.cancel_message = message;
    }
  } guard{*owner_, message, any};
  for (future_state* c : owner_->children) {
    if (c->cancel(message)) any = true;
  }
  return any;
}

// fast_link is what the children's owned callbacks (see
// future_state::add_owned_callback) hold: one per waiting call instead of a
// std::function (and its allocation) per child. Each callback's context is
// its child's entry in `slots`, which names the child's index. Counted by
// registration; loop thread only.
struct fast_link;
struct link_slot {
  fast_link* link;
  std::size_t index;  // the child's, in wait_state::children
};
struct fast_link {
  std::shared_ptr<wait_state> state;
  void (*on_done)(wait_state&, std::size_t index);
  std::vector<link_slot> slots;  // sized once: the callbacks point into it
  long refs = 1;                 // the registering frame's
};

void unlink(fast_link* link) noexcept {
  if (--link->refs == 0) delete link;
}

void run_link(void* slot, void* child) {
  const link_slot& s = *static_cast<link_slot*>(slot);
  struct give_back {
    fast_link* link;
    future_state* child;
    ~give_back() {
      release(child);
      unlink(link);
    }
  } guard{s.link, static_cast<future_state*>(child)};
  guard.link->on_done(*guard.link->state, s.index);
}

void drop_link(void* slot, void* child) {
  release(static_cast<future_state*>(child));
  unlink(static_cast<link_slot*>(slot)->link);
}

}  // namespace

task_state* wait_link_waiter(void (*fn)(void*, void*), void* ctx) noexcept {
  if (fn != &run_link) return nullptr;
  return static_cast<link_slot*>(ctx)->link->state->waiter;
}

namespace {

// Registers on_done(state, index) on every child, allocating nothing per
// child; unregisters what has not run yet when the waiting frame ends, unless
// `keep` (gather keeps watching its children to mark their later failures
// retrieved). A child already done has its callback queued at once, as
// asyncio's add_done_callback: the waiting task learns of it on a later turn,
// so even a wait whose answer is known suspends once and lets the other ready
// tasks run (a polling `wait(fs, 0)` loop would otherwise starve them).
class child_callbacks {
 public:
  child_callbacks(std::shared_ptr<wait_state> state, void (*on_done)(wait_state&, std::size_t), bool keep = false)
      : link_(new fast_link{std::move(state), on_done, {}}), keep_(keep) {
    const std::vector<future_state*>& children = link_->state->children;
    try {
      link_->slots.reserve(children.size());
      ids_.reserve(children.size());
      for (std::size_t i = 0; i < children.size(); ++i) {
        link_->slots.push_back({link_, i});
        const bool was_done = children[i]->done();
        std::uint64_t id = children[i]->add_owned_callback(&run_link, &drop_link, &link_->slots[i]);
        ++link_->refs;
        if (was_done) id = 0;  // already queued: nothing to remove
        ids_.push_back(id);
      }
    } catch (...) {
      unregister();
      throw;
    }
  }
  ~child_callbacks() { unregister(); }
  child_callbacks(const child_callbacks&) = delete;
  child_callbacks& operator=(const child_callbacks&) = delete;

  // abandon() makes a `keep` registration unregister when the frame ends after all: the waiting
  // task is being killed, so nobody will read the outcome. Kept, the callbacks of children that
  // never finish would hold the state, which holds the children: a cycle nothing frees.
  void abandon() noexcept { keep_ = false; }

 private:
  void unregister() noexcept {
    if (!keep_) {
      // A callback removed before it ran gives its reference back here.
      for (std::size_t i = 0; i < ids_.size(); ++i) {
        if (ids_[i] != 0 && link_->state->children[i]->remove_done_callback(ids_[i]) > 0) unlink(link_);
      }
    }
    unlink(link_);
  }

  fast_link* link_;
  std::vector<std::uint64_t> ids_;
  bool keep_;
};

// failure_ends_wait(s, child) says whether child, just done, ends a
// FIRST_EXCEPTION wait. Asking counts as looking at its exception, as
// asyncio's _on_completion calls f.exception(): wait() reported the failure,
// so no "exception was never retrieved" follows. Also for a callback that runs
// after the wait ended (it was already queued), as asyncio's.
bool failure_ends_wait(const wait_state& s, future_state* child) {
  if (s.when != return_when::FIRST_EXCEPTION || child->cancelled()) return false;
  return child->exception() != nullptr;
}

void check_same_loop(const std::vector<future_state*>& children, loop_core* loop) {
  for (future_state* c : children) {
    if (c == nullptr) throw_empty_handle("Future/Task");
    if (c->loop() != loop) {
      throw RuntimeError(asyncio_errc::wrong_loop, "futures given to gather()/wait() must belong to the running loop");
    }
  }
}

// await_outer() waits on the private future; if it comes back cancelled,
// the waiting task itself was cancelled (nobody else can reach it), so
// CancelledError is raised here.
void await_outer(future_state* out) {
  await_state(out);
  if (out->cancelled()) out->check_result();
}

// A timer that completes a future (wait()'s outer one, a waiting next()'s own) at the deadline;
// cancelled when the frame ends.
class deadline_timer {
 public:
  deadline_timer(loop_core* loop, std::optional<double> timeout, Future<> target) : loop_(loop) {
    if (!timeout) return;
    timer_ = loop->call_at(loop->time() + *timeout, [target]() mutable {
      if (!target.done()) target.set_result();
    });
    retain(timer_);
  }
  ~deadline_timer() {
    if (timer_ == nullptr) return;
    loop_->cancel_node(timer_);
    release(timer_);
  }
  deadline_timer(const deadline_timer&) = delete;
  deadline_timer& operator=(const deadline_timer&) = delete;

 private:
  loop_core* loop_;
  callback_node* timer_ = nullptr;
};

}  // namespace

void gather_wait(const std::vector<future_state*>& children, bool collect) {
  task_state& task = awaiting_task();
  check_same_loop(children, task.loop);
  // No children: asyncio's gather() returns a future already done, which
  // an await takes without suspending. Otherwise it waits for every child's
  // callback, those of children already done included.
  if (children.empty()) return;
  if (std::all_of(children.begin(), children.end(), [](future_state* c) { return c->done(); })) {
    // Every child done already (as eager tasks that finished in create_task() are): 3.12's
    // gather() runs its done callbacks at once and returns a future already done, which an await
    // takes without suspending. The first failure is raised; the later ones count as seen.
    std::exception_ptr first_failure;
    for (future_state* child : children) {
      if (collect || !(child->cancelled() || child->failed())) continue;
      if (!first_failure) {
        first_failure = failure_of(child);
      } else if (!child->cancelled()) {
        (void)child->exception();
      }
    }
    if (first_failure) std::rethrow_exception(first_failure);
    return;
  }
  auto state = std::make_shared<wait_state>(task.loop, children, /*gathering=*/true);
  state->remaining = children.size();
  state->collect = collect;

  child_callbacks callbacks(
      state,
      [](wait_state& s, std::size_t i) {
        future_state* child = s.children[i];
        if (s.outer.done()) {
          // The first failure was already raised: later ones count as seen,
          // as asyncio's gather marks them retrieved.
          if (!child->cancelled()) (void)child->exception();
          return;
        }
        if (!s.collect && (child->cancelled() || child->failed())) {
          s.outer.set_exception(failure_of(child));
        } else if (--s.remaining == 0) {
          if (s.cancel_requested) {
            // Every child finished after the waiting task was cancelled:
            // it still ends cancelled, as asyncio's gather (_cancel_requested).
            s.outer.state()->set_exception(std::make_exception_ptr(CancelledError(s.cancel_message)));
          } else {
            s.outer.set_result();
          }
        }
      },
      /*keep=*/true);
  const waiting_task_mark waiting(*state, task);
  // A cancel of the waiting task reaches the children through the outer
  // future (gathering_future::cancel); the task wakes when the callbacks
  // above complete it, after the children reacted.
  try {
    await_outer(state->outer.state());
  } catch (const ::greenlet::GreenletExit&) {
    // Killed (its loop closed or let go of it): see child_callbacks::abandon().
    callbacks.abandon();
    throw;
  }
  state->outer.state()->check_result();
}

void wait_until(const std::vector<future_state*>& children, std::optional<double> timeout, return_when when) {
  task_state& task = awaiting_task();
  // asyncio's message and type: porting code catches ValueError here.
  if (children.empty()) throw ValueError("Set of Tasks/Futures is empty.");
  // A value cast into the enum from a bad integer used to wait as ALL_COMPLETED; asyncio refuses it
  // (after the empty check, as here) with this message.
  if (when != return_when::FIRST_COMPLETED && when != return_when::FIRST_EXCEPTION &&
      when != return_when::ALL_COMPLETED) {
    throw ValueError("Invalid return_when value: " + std::to_string(static_cast<int>(when)));
  }
  check_same_loop(children, task.loop);
  // Always through the loop, as asyncio's _wait(): children already done
  // report through their queued callbacks and a timeout of zero or less
  // through a timer due now, which runs after the callbacks already ready
  // (so a task those let finish counts as done).
  auto state = std::make_shared<wait_state>(task.loop, children);
  state->when = when;
  state->remaining = children.size();
  // Each end decides from that child and a count, as asyncio's _wait():
  // looking at every child each time would cost N^2 for N children.
  child_callbacks callbacks(state, [](wait_state& s, std::size_t i) {
    --s.remaining;
    if (s.remaining == 0 || s.when == return_when::FIRST_COMPLETED || failure_ends_wait(s, s.children[i])) {
      if (!s.outer.done()) s.outer.set_result();
    }
  });
  deadline_timer timer(task.loop, timeout, state->outer);
  const waiting_task_mark waiting(*state, task);
  await_outer(state->outer.state());
}

std::vector<bool> drop_repeats(std::vector<future_state*>& states) {
  // Few futures: compare pairs, allocating nothing when none repeats (the
  // common case). Many: a hash set, so that N futures cost O(N).
  constexpr std::size_t pairwise_limit = 16;
  std::vector<bool> repeated;
  if (states.size() <= pairwise_limit) {
    for (std::size_t i = 1; i < states.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (states[j] != states[i]) continue;
        if (repeated.empty()) repeated.resize(states.size());
        repeated[i] = true;
        break;
      }
    }
  } else {
    std::unordered_set<const future_state*> seen;
    seen.reserve(states.size());
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (seen.insert(states[i]).second) continue;
      if (repeated.empty()) repeated.resize(states.size());
      repeated[i] = true;
    }
  }
  if (!repeated.empty()) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (!repeated[i]) states[kept++] = states[i];
    }
    states.resize(kept);
  }
  return repeated;
}

std::exception_ptr cancel_and_wait(future_state* f, std::string message) {
  std::exception_ptr own;
  for (;;) {
    f->cancel(message);
    try {
      wait_until({f}, std::nullopt, return_when::FIRST_COMPLETED);
      return own;
    } catch (const CancelledError& e) {
      // Cancelled again while f unwinds: f gets this cancel too (asyncio 3.12+
      // forwards each cancel to the awaited task), and the waiting goes on.
      own = std::current_exception();
      message = e.message();
    }
  }
}

namespace {
// wake_next_waiter(s) wakes the longest-waiting next() still waiting (one whose future is not done:
// not woken by its deadline, not cancelled), for one entry of s.completed.
void wake_next_waiter(wait_state& s) {
  while (!s.next_waiters.empty()) {
    Future<> waiter = std::move(s.next_waiters.front());
    s.next_waiters.pop_front();
    if (!waiter.done()) {
      waiter.set_result();
      return;
    }
  }
}
}  // namespace

struct completion_queue::impl {
  std::shared_ptr<wait_state> state;
  std::unique_ptr<child_callbacks> callbacks;
};

completion_queue::completion_queue(const std::vector<future_state*>& futures) : impl_(std::make_unique<impl>()) {
  task_state& task = awaiting_task();
  check_same_loop(futures, task.loop);
  auto state = std::make_shared<wait_state>(task.loop, futures);
  // Futures already done are queued by their callbacks, on the next turn, as
  // asyncio's as_completed: the first next() suspends and other ready tasks run.
  state->remaining = futures.size();
  impl_->state = state;
  impl_->callbacks = std::make_unique<child_callbacks>(state, [](wait_state& s, std::size_t i) {
    s.completed.push_back(i);
    wake_next_waiter(s);
  });
}

completion_queue::~completion_queue() = default;

std::size_t completion_queue::next(std::optional<double> deadline) {
  task_state& task = awaiting_task();
  wait_state& s = *impl_->state;
  // Several tasks may wait in next() at once (asyncio's wrappers can be awaited concurrently):
  // each waits on a future of its own, and each completion wakes one of them, in FIFO order. With
  // one shared future, a second waiter replaced the first's, which then waited for ever.
  while (s.completed.empty()) {
    // Past the deadline, once a wait has let the callbacks queued for the
    // futures done at the start run: asyncio's queue then holds its timeout
    // markers, so next() raises without suspending.
    if (s.waited_once && deadline && *deadline <= task.loop->time()) throw TimeoutError("as_completed() timed out");
    Future<> mine(new future_value<void>(task.loop));
    s.next_waiters.push_back(mine);
    std::optional<double> timeout;
    if (deadline) timeout = *deadline - task.loop->time();
    deadline_timer timer(task.loop, timeout, mine);
    try {
      await_outer(mine.state());
    } catch (const CancelledError&) {
      // Cancelled, perhaps after a completion woke this one: hand that entry to the next waiter.
      // (Only a cancel: a task being killed with its loop closing wakes no one.)
      if (!s.completed.empty()) wake_next_waiter(s);
      throw;
    }
    // Woken with nothing left: by the deadline (the check above raises), or another next() took
    // the entry first (wait again).
    s.waited_once = true;
  }
  const std::size_t index = s.completed.front();
  s.completed.pop_front();
  --s.remaining;
  return index;
}

bool completion_queue::empty() const noexcept { return impl_->state->remaining == 0; }

void shutdown_default_executor(loop_core* loop, std::optional<double> timeout) noexcept;  // asyncio/executor.cpp

namespace {

// run_until_all_done(core, futures) runs the loop until every one of futures
// is done.
void run_until_all_done(loop_core* core, const std::vector<future_state*>& futures) {
  if (futures.empty()) return;
  auto state = std::make_shared<wait_state>(core, futures);
  state->remaining = futures.size();  // a callback each, the done ones' queued
  child_callbacks callbacks(state, [](wait_state& s, std::size_t) {
    if (--s.remaining == 0 && !s.outer.done()) s.outer.set_result();
  });
  run_until_done(core, state->outer.state());
}

// pending_tasks(core, bodies) are the loop's unfinished tasks: those that run
// async generators' bodies if `bodies`, the others if not. Oldest first, as
// all_tasks() lists them and asyncio.run() cancels them in practice: the
// loop links each new task at the head of its list.
std::vector<task_state*> pending_tasks(loop_core* core, bool bodies) {
  std::vector<task_state*> tasks;
  for (task_state* t = core->tasks_head; t != nullptr; t = t->next) {
    if (!t->future()->done() && (t->async_generator != nullptr) == bodies) tasks.push_back(t);
  }
  std::reverse(tasks.begin(), tasks.end());
  return tasks;
}

// cancel_remaining_tasks(core) is asyncio.run's _cancel_all_tasks(): cancel
// the tasks still pending (not the async generators' bodies, which belong
// to their consumers) and run the loop until they are done.
void cancel_remaining_tasks(loop_core* core) {
  std::vector<future_state*> pending;
  for (task_state* t : pending_tasks(core, false)) pending.push_back(t->future());
  if (pending.empty()) return;
  auto hold = std::make_shared<wait_state>(core, pending);  // their references, while cancelled
  for (future_state* f : pending) {
    try {
      f->cancel("");
    } catch (...) {  // tasks awaiting each other: the rest are still cancelled
      core->report({"error while cancelling a task at asyncio::run() shutdown", std::current_exception(), f->repr()});
    }
  }
  run_until_all_done(core, pending);
  for (future_state* f : pending) {
    if (f->failed()) {
      core->report({"unhandled exception during asyncio::run() shutdown", f->exception(), f->repr()});
    }
  }
}

// shutdown_async_generators(core) is loop.shutdown_asyncgens(): every async
// generator whose body is still parked at a yield gets GeneratorExit there,
// and the loop runs until their bodies are done. What a body throws then
// goes to the exception handler (see async_generator.hpp).
void shutdown_async_generators(loop_core* core) {
  std::vector<future_state*> bodies;
  for (task_state* t : pending_tasks(core, true)) bodies.push_back(t->future());
  if (bodies.empty()) return;
  auto hold = std::make_shared<wait_state>(core, bodies);  // their references, while closed
  for (future_state* f : bodies) f->as_task()->async_generator->close_at_shutdown();
  run_until_all_done(core, bodies);
}

// run_leftover_callbacks(loop) runs what the last turns left ready (the
// done callback of a task that finished with main, a call_soon() a
// cancelled task made) and what those make ready at once: asyncio.run runs
// the loop for shutdown_asyncgens() even with no generator to close, two
// turns, and those callbacks run then. Without it they were dropped with
// the loop, and a failed task whose callback would have looked at its
// exception reported it as never retrieved.
void run_leftover_callbacks(event_loop& loop) {
  for (int turn = 0; turn < 2; ++turn) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  }
}

}  // namespace

void finish_run(event_loop& loop) noexcept {
  loop_core* core = loop.core();
  if (!core->closed) {
    try {
      cancel_remaining_tasks(core);
    } catch (...) {
      core->report({"error while cancelling the remaining tasks of asyncio::run()", std::current_exception(), ""});
    }
    try {
      shutdown_async_generators(core);
    } catch (...) {
      core->report({"error while closing the asynchronous generators of asyncio::run()", std::current_exception(), ""});
    }
    try {
      run_leftover_callbacks(loop);
    } catch (...) {
      core->report(
          {"error while running the callbacks left at the end of asyncio::run()", std::current_exception(), ""});
    }
  }
  // The default executor of run_in_executor(nullptr) (asyncio/executor.cpp)
  // finishes its jobs before the loop closes, as asyncio.run's
  // shutdown_default_executor(): joined on a helper thread while the loop
  // runs, so a job that posts to the loop or waits for it still finishes;
  // at most thread_join_timeout, as asyncio.run's Runner.close().
  shutdown_default_executor(core, thread_join_timeout);
  try {
    loop.close();
  } catch (...) {
  }
  set_event_loop(nullptr);
}

}  // namespace greenlet::asyncio::detail
