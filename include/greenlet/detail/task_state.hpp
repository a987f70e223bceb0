// task_state.hpp: the shared state behind Task<T>: a future whose result is
// produced by a function running in its own greenlet. Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/task_body.hpp"
#include "greenlet/detail/future_state.hpp"
#include "greenlet/detail/stack_host.hpp"
#include "greenlet/fiber/context.hpp"
#include "greenlet/fiber/greenlet.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio::detail {

class task_state;

// print_stack_report(report) writes Task.print_stack()'s text to stderr (task_state.cpp). Throws
// nothing.
void print_stack_report(const std::string& report) noexcept;

// async_generator_body is what the loop sees of an async_generator through
// the task its body runs in (task_state::async_generator). Such a task is
// the generator's, not the program's: all_tasks() does not list it and
// asyncio::run() does not cancel it at its end; it closes the generator
// instead (asyncio's loop.shutdown_asyncgens()).
class async_generator_body {
 public:
  // close_at_shutdown() raises GeneratorExit at the body's pending yield
  // without waiting (nothing if it is not parked at one); what escapes the
  // body then goes to the loop's exception handler. Throws nothing.
  virtual void close_at_shutdown() noexcept = 0;
  // release_from_task() is the body's task letting go of the generator's
  // state, as that task's state is destroyed: the task holds it for its
  // whole life, not through its function, which goes as soon as the body
  // returns (its done callback still uses the state). May free this.
  // Throws nothing.
  virtual void release_from_task() noexcept = 0;

  // consumer is the task whose anext(), asend(), athrow() or aclose() is
  // under way (null between them): current_task() in the body is that task,
  // as in Python, where the body runs in it.
  task_state* consumer = nullptr;

 protected:
  ~async_generator_body() = default;
};

// task_state is the non-template part of a task: its greenlet, cancellation
// bookkeeping and the steps the loop runs. As its greenlet's role, it tells
// the fiber layer's reports (a stack overflow) which task that greenlet runs.
class task_state : public ::greenlet::detail::greenlet_role {
 public:
  task_state(future_state* future, std::string name)
      : greenlet_role{&role_table}, future_(future), name_(std::move(name)) {}
  virtual ~task_state() {
    let_go_of_shared_context();
    if (wrapped_) forget_wrapper();
    if (async_generator != nullptr) async_generator->release_from_task();  // may free it: last
  }
  task_state(const task_state&) = delete;
  task_state& operator=(const task_state&) = delete;

  future_state* future() const noexcept { return future_; }
  // name() is the name given, or "Task-N" for the number start() drew.
  // Made on first use: building it for every task cost ~10% of creating
  // one. Throws only std::bad_alloc.
  const std::string& name() const {
    if (name_.empty()) {
      make_default_name();
    }
    return name_;
  }
  void set_name(std::string name) { name_ = std::move(name); }
  // context_copy() is Task.get_context() (3.12): a copy of the context the task runs in, with the
  // values it holds now (task_state.cpp). Throws nothing.
  ::greenlet::context context_copy() const noexcept;
  // stack(limit) is Task.get_stack(): its greenlet's get_stack(limit) while it runs or waits, its
  // traceback once it failed; empty before its first step, once it returned or was cancelled, and
  // once the loop let go of it (task_state.cpp). Throws std::bad_alloc.
  ::greenlet::stack_summary stack(std::size_t limit) const;
  // stack_report(limit) is what Task.print_stack() prints: "Stack for <repr> (most recent call
  // last):" ("Traceback for" once failed) and the frames, or "No stack for <repr>"; then a failed
  // task's exception line. Throws std::bad_alloc.
  std::string stack_report(std::size_t limit) const;

  // first_step says when start() runs a task's first step: as the loop's task factory says
  // (eager_task_factory: at once, inside start(), when the loop runs; otherwise on a later
  // iteration), at once when the loop runs whatever the factory (task_options::eager_start), or
  // always on a later iteration (eager_start = false; an async generator's body task, which its
  // generator sets up after create_task() returns).
  enum class first_step : unsigned char { per_loop, eager, scheduled };
  // start() links the task into its loop and schedules its first step, or takes it now (eager).
  void start(loop_core* loop, first_step when = first_step::per_loop);
  // start(loop, ctx) is start() for a task that runs in the context object ctx itself, not in a
  // copy of the creator's: ctx is entered from now until the task ends, when it takes back what
  // the task set. The caller has checked that ctx is not entered. Throws std::bad_alloc.
  void start(loop_core* loop, ::greenlet::context& ctx, first_step when = first_step::per_loop);
  // start_in(on, ctx, when) is start(on, *ctx, when), or start(on, when) for a null ctx: what
  // create_task() and a task factory's request do with create_task()'s context argument.
  void start_in(loop_core* on, ::greenlet::context* ctx, first_step when) {
    if (ctx != nullptr) {
      start(on, *ctx, when);
    } else {
      start(on, when);
    }
  }
  // set_wrapper(w) has run() call the task's function through w (task_request::wrap()), before
  // the task starts. Throws std::bad_alloc.
  void set_wrapper(std::shared_ptr<const task_wrapper> w);
  // abandon() is how the loop lets go of a task it will never step again
  // (closing, or the task stranded itself): it unlinks the task and unwinds
  // its stack now, so the task's destructors run before the caller goes on.
  // A stack that cannot be unwound now (it is running, or caught GreenletExit
  // and switched away) is reported, and the task's state is kept alive until
  // that stack does unwind, since it unwinds into it. May free the task.
  // Throws nothing.
  void abandon() noexcept;
  // cancel() follows asyncio's Task.cancel: cancels what it awaits, or
  // raises CancelledError at its next (or first) suspension point.
  bool cancel(const std::string& message);
  // uncancel(): back at zero, a pending cancellation is dropped too
  // (asyncio since Python 3.13).
  int uncancel() noexcept {
    if (num_cancels_requested_ > 0 && --num_cancels_requested_ == 0) must_cancel = false;
    return num_cancels_requested_;
  }
  int cancelling() const noexcept { return num_cancels_requested_; }

  // suspend() switches from the task's greenlet back to the loop; the caller
  // has arranged for a wake-up. Throws CancelledError if cancelled meanwhile.
  void suspend();
  // suspend_inline() is suspend() inlined into its caller, for sleep(0):
  // jump_fcontext returns with a jmp, so each return made after a switch,
  // before the next one, mispredicts (switch_inline.hpp); a sleep(0) made
  // through out-of-line functions paid two per step.
  [[gnu::always_inline]] inline void suspend_inline();
  // Loop callbacks (fast form): run one step / wake after a future.
  static void step_callback(void* task, void* unused);
  static void wakeup_callback(void* task, void* future);

  // repr() is asyncio's Task repr: state, name, wait_for= (what it awaits, nested), the outcome
  // and cb=. summary() leaves out wait_for= and cb=, for a deadlock report's one line per task.
  std::string repr() const;
  std::string summary() const;
  std::string awaiting() const;  // for deadlock reports: the summary() of what it awaits

  // Set while the task waits (for cancel(), deadlock reports).
  future_state* waiting_on = nullptr;
  // The async generator whose body this task runs (null for other tasks):
  // set by async_generator, whose state the task keeps alive while it lives
  // (released by ~task_state()).
  async_generator_body* async_generator = nullptr;
  // Where a TaskGroup lists this task while it runs, so that its end is
  // unlisted in constant time (src/asyncio/taskgroup.cpp).
  std::size_t group_index = 0;
  callback_node* sleep_timer = nullptr;
  // The running sleep() was cancelled, as asyncio cancels a sleep's
  // future: it raises CancelledError when the task wakes, whatever
  // uncancel() does meanwhile (must_cancel would not survive that).
  bool sleep_cancelled = false;
  bool must_cancel = false;
  rare_string cancel_message;
  task_state* prev = nullptr;
  task_state* next = nullptr;
  ::greenlet::greenlet glet;
  loop_core* loop = nullptr;
  // The stack host this task lives in, with its greenlet object, or null (a heap task): set by
  // new_task_impl(), which made it there.
  ::greenlet::detail::stack_host* host = nullptr;

  // run_body is the task greenlet's run function; its object's size is what new_task_impl()
  // hosts beside the task.
  struct run_body {
    task_state* self;
    void operator()() const { self->body(); }
  };
  static constexpr std::size_t greenlet_room =
      ::greenlet::detail::hosted_size(::greenlet::greenlet::hosted_object_size<run_body>());

 protected:
  // run() calls the task's function and stores its result in the future.
  virtual void run() = 0;
  // drop_function() destroys the task's function, and what it captured,
  // when run() will not call it: the task was cancelled before its first
  // step, it got no stack, or the loop let go of it unstarted. Throws nothing.
  virtual void drop_function() noexcept = 0;
  // wrapped() is true for a task whose factory wrapped its function (set_wrapper()) until run()
  // takes the wrapper (run_through_wrapper()). Throws nothing.
  bool wrapped() const noexcept { return wrapped_; }
  // run_through_wrapper(body, argument) is run() for a wrapped task: it calls the wrapper with a
  // task_body whose call is body(argument), and throws what the task ends with (run_wrapper()).
  void run_through_wrapper(void (*body)(void*), void* argument);

 private:
  void body();
  void step();
  // prepare(loop) makes the task's greenlet and links the task into loop: start() without the
  // first step. begin(when) then schedules that step or takes it now (eager_step()).
  void prepare(loop_core* loop);
  void begin(first_step when);
  // eager_step() is the first step taken inside create_task(), as asyncio's eager tasks take it:
  // the task runs until it first suspends or finishes, then control comes back to the creator
  // (not to the loop), with the creator's current task restored.
  void eager_step();
  // switch_in_first_time() is the switch that starts the task's greenlet: a task that cannot get
  // a stack (vm.max_map_count, memory) fails with that error instead of waiting for ever.
  void switch_in_first_time();
  // after_step() is what the loop does once a step of this task gave
  // control back: unlink it if done, fail it if it was stranded.
  void after_step();
  // fail(error, escape) finishes the task with error, named by its repr in the "Task exception was
  // never retrieved" report, escape its traceback. The task's future must be pending.
  void fail(std::exception_ptr error, ::greenlet::detail::escape_trace escape = {});
  // run_for_traceback(task) is run() as body() calls it, through call_recording_escape(): what
  // leaves it is recorded for the task's traceback, but a CancelledError is caught inside.
  static void run_for_traceback(void* task);
  // drop_unrun_function() is drop_function() for a task whose function will not run, which lets
  // go of its wrapper too. Throws nothing.
  void drop_unrun_function() noexcept {
    drop_function();
    if (wrapped_) forget_wrapper();
  }
  // take_wrapper() takes the wrapper set_wrapper() gave this task out of its loop's table (null if
  // gone already); forget_wrapper() lets go of it, after the table's lock is released (a wrapper
  // may own anything). Throw nothing.
  std::shared_ptr<const task_wrapper> take_wrapper() noexcept;
  void forget_wrapper() noexcept { take_wrapper(); }
  // let_go_of_shared_context() leaves the context given to start(loop, ctx), if still held, as it
  // was: for a task whose body never ran, or whose stack the loop gave up on. Throws nothing.
  void let_go_of_shared_context() noexcept {
    if (shared_context_ != nullptr) {
      shared_context_->leave_elsewhere(shared_context_->data());
      shared_context_ = nullptr;
    }
  }

  // The greenlet_role functions: "Task 'name'" without making the default
  // name (no allocation: they run in a signal handler), and the advice to
  // set event_loop::options::task_stack.
  static void describe_for_report(const greenlet_role* role, char* out, std::size_t size) noexcept;
  // repr_head() is repr()'s "<Task <state> name='...'", the part before wait_for=.
  std::string repr_head() const;
  static void advise_stack_for_report(const greenlet_role* role, std::size_t bigger, bool guarded, char* out,
                                      std::size_t size) noexcept;
  static const ::greenlet::detail::greenlet_role_ops role_table;

  future_state* future_;
  void make_default_name() const;
  // throw_cancel_cycle() throws the RuntimeError for a cancel() that came
  // back to this task through the tasks it awaits.
  [[noreturn]] void throw_cancel_cycle() const;
  mutable std::string name_;
  std::uint64_t number_ = 0;  // N of "Task-N", drawn when started unnamed
  int num_cancels_requested_ = 0;
  bool forwarding_cancel_ = false;  // cancel() is passing itself on to waiting_on
  // abandon() could not unwind the stack: the loop's reference to the future
  // is kept, and body() gives it back as its stack's last act.
  bool held_until_unwound_ = false;
  // set_wrapper() gave this task a wrapper, which src/asyncio/task_wrappers.cpp keeps for it: a
  // flag in what was padding, so that tasks without one pay nothing for the feature.
  bool wrapped_ = false;
  // The context object the task runs in, from start(loop, ctx) until body() ends (null for a
  // task in a copy of its creator's context, the usual case).
  ::greenlet::context* shared_context_ = nullptr;
};

// first_step_for(eager_start) is the first_step for task_options::eager_start: unset per_loop,
// true eager, false scheduled. Out of line: read inline from a braced task_options, the optional
// made g++ 12 warn at -O2 (-Wmaybe-uninitialized, a false positive). Throws nothing.
task_state::first_step first_step_for(const std::optional<bool>& eager_start) noexcept;

// no_awaiting_task(loop) throws the RuntimeError saying why the caller,
// on `loop` (null: none), cannot await.
[[noreturn]] void no_awaiting_task(loop_core* loop);
// raise_pending_cancel(task) throws the CancelledError a cancel() left
// pending for a task that just resumed.
[[noreturn]] void raise_pending_cancel(task_state& task);

// awaiting_task() is the task running the caller; RuntimeError unless the
// caller runs in a task's own greenlet on a running loop. Inline: every
// await and sleep starts here.
inline task_state& awaiting_task() {
  loop_core* loop = running_loop();
  if (loop != nullptr) [[likely]] {
    task_state* task = loop->current_task;
    if (task != nullptr && ::greenlet::detail::current_impl() == task->glet.impl()) [[likely]] {
      return *task;
    }
  }
  no_awaiting_task(loop);
}

inline void task_state::suspend_inline() {
  // Only the loop resumes a waiting task (switch_as_owner()): a switch_()
  // into its greenlet by hand is refused (lock_resume()) until it is back.
  // The lock also tells after_step() that the task suspended here, not by hand.
  ::greenlet::detail::greenlet_impl* self = glet.impl();
  ::greenlet::detail::lock_resume(self);
  // Hand the turn straight to the next task when the loop would run it next
  // anyway: one switch instead of two. Whoever resumes this task later (the
  // loop's step() or another task handing on) has made it current_task.
  //
  // One switch call for both targets, not one in each branch: every task
  // then resumes at the same address, so the jump into a resumed task (an
  // indirect jmp in jump_fcontext) keeps predicting right. With two call
  // sites the resume address alternated and a step cost ~2x (60 against
  // 27 ns at 1,000 tasks, 2026-11-26). switch_as_owner() lets the switch
  // through the successor's lock; the loop's greenlet has none.
  ::greenlet::detail::greenlet_impl* target = loop->suspend_target;
  if (task_state* successor = loop->take_handoff_step(this)) {
    loop->current_task = successor;
    target = successor->glet.impl();
  }
  ::greenlet::detail::switch_as_owner(target);
  if (must_cancel) [[unlikely]] {
    raise_pending_cancel(*this);
  }
}

// await_registration is what begin_await() arranged: the awaiting task and
// the id of its wake-up callback on the future; a null task when the
// future was done already (no wait).
struct await_registration {
  task_state* task;
  std::uint64_t id;
};
// begin_await(f) checks an await of f (RuntimeError outside a task, for
// another loop's future or the task's own; invalid_state for a null f) and
// registers the task's wake-up on it. Out of line: it returns before the
// switch, so its return is predicted.
await_registration begin_await(future_state* f);
// end_await() unregisters what begin_await() registered, on every way out
// of the wait (woken, cancelled, killed): the future must not wake a task
// that is gone. Throws nothing.
void end_await(task_state* t, future_state* f, std::uint64_t id) noexcept;

// await_inline(f) is await_state(f) with the switch inlined into the
// caller (asyncio::await() is a template): every return made between the
// switch and the task's next call mispredicts (see suspend_inline()), and
// an out-of-line await paid two (~7% of a future resolved and awaited).
[[gnu::always_inline]] inline void await_inline(future_state* f) {
  const await_registration r = begin_await(f);
  if (r.task == nullptr) return;
  struct done_waiting {
    task_state* t;
    future_state* f;
    std::uint64_t id;
    ~done_waiting() { end_await(t, f, id); }
  } guard{r.task, f, r.id};
  r.task->suspend_inline();
}

// sleep_zero() is sleep(0), inlined into the calling task (see
// suspend_inline()): its step goes to the back of the ready queue.
[[gnu::always_inline]] inline void sleep_zero() {
  task_state& t = awaiting_task();
  t.loop->call_soon_fast(&task_state::step_callback, &t, nullptr);
  t.suspend_inline();
}
// sleep_for(delay) is sleep(delay) for delay > 0.
void sleep_for(double delay);

// task_impl<T, F> is a task producing T by calling F.
//
// The function is destroyed as soon as it returns or throws, in the task's
// greenlet and before the result is published, as Python frees a finished
// coroutine's frame: what it captured (a connection's reader and writer, a
// shared_ptr) is let go of then, not when the last Task handle goes. Its
// destructors run in the task, so they may await; like every destructor
// they must not let an exception out (a CancelledError included).
template <class T, class F>
class task_impl final : public future_value<T>, public task_state {
 public:
  // A hosted task's memory is its stack host's (new_task_impl()); a heap task's, the heap's.
  static void operator delete(task_impl* self, std::destroying_delete_t) noexcept {
    ::greenlet::detail::stack_host* h = self->host;
    self->~task_impl();
    if (h != nullptr) {
      ::greenlet::detail::release_stack_host(h);
    } else if constexpr (alignof(task_impl) > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::greenlet::detail::global_delete(self, sizeof(task_impl), std::align_val_t{alignof(task_impl)});
    } else {
      ::greenlet::detail::global_delete(self, sizeof(task_impl));
    }
  }

  template <class G>
  task_impl(loop_core* on_loop, std::string name, G&& fn)
      : future_value<T>(on_loop), task_state(this, std::move(name)), fn_(std::in_place, std::forward<G>(fn)) {
    this->is_task_ = true;
  }

  bool cancel(const std::string& message) override { return task_state::cancel(message); }
  std::string repr() const override { return task_state::repr(); }
  std::string summary() const override { return task_state::summary(); }
  task_state* as_task() noexcept override { return this; }

 protected:
  // Not inlined: the loop calls run() through task_state, this object's second base, so through a
  // thunk that adjusts `this`; at -O2 g++ copies an inlinable run() into that thunk without the
  // records of what was inlined into it, and the task's function (a lambda, inlined) vanished from
  // its stacks and tracebacks. Kept whole, the thunk is an adjust and a jump, as at -Og.
  [[gnu::noinline]] void run() override {
    if (this->wrapped()) [[unlikely]] {
      run_wrapped();
      return;
    }
    if constexpr (std::is_void_v<T>) {
      call_function();
      if (!settle_cancel()) this->set_result();
    } else {
      T value = call_function();
      if (!settle_cancel()) this->set_result(std::move(value));
    }
  }
  void drop_function() noexcept override { fn_.reset(); }

 private:
  // call_function() calls fn_ and destroys it on the way out, returned or
  // thrown (the result is made first). A function with nothing to destroy
  // is left alone: no cost for it.
  T call_function() {
    struct drop_on_exit {
      std::optional<F>& fn;
      ~drop_on_exit() {
        if constexpr (!std::is_trivially_destructible_v<F>) fn.reset();
      }
    } guard{fn_};
    return (*fn_)();
  }
  // run_wrapped() is run() through the wrapper a task factory gave the task (out of line: run()
  // stays small, for the inliner's choices in the task's function): the wrapper runs
  // call_function() when it calls its task_body, and the result is published once it returns.
  // A function the wrapper never ran is destroyed all the same, in the task, before the failure
  // is published.
  [[gnu::noinline]] void run_wrapped() {
    struct drop_unrun {
      std::optional<F>& fn;
      ~drop_unrun() { fn.reset(); }
    } guard{fn_};
    if constexpr (std::is_void_v<T>) {
      this->run_through_wrapper([](void* self) { static_cast<task_impl*>(self)->call_function(); }, this);
      if (!settle_cancel()) this->set_result();
    } else {
      struct result_slot {
        task_impl* self;
        std::optional<T> value;
      } slot{this, std::nullopt};
      this->run_through_wrapper(
          [](void* p) {
            auto* s = static_cast<result_slot*>(p);
            s->value.emplace(s->self->call_function());
          },
          &slot);
      if (!settle_cancel()) this->set_result(std::move(*slot.value));
    }
  }
  // A cancel() that came after the last suspension point still wins, as in
  // asyncio's Task.__step.
  bool settle_cancel() {
    if (!must_cancel) return false;
    must_cancel = false;
    this->set_cancelled(cancel_message);
    return true;
  }
  std::optional<F> fn_;  // empty once called (or dropped unstarted)
};

// new_task_impl<Impl>(loop, args...) is `new Impl(loop, args...)` for a task on `loop`; with the
// loop's compact_tasks, made in the top page of the stack its greenlet will run on, beside that
// greenlet's object (stack_host.hpp: a suspended task then costs its stack page and little more),
// when the stacks allow it. Throws as Impl's constructor, and std::bad_alloc.
template <class Impl, class... Args>
Impl* new_task_impl(loop_core* loop, Args&&... args) {
  namespace fiber = ::greenlet::detail;
  constexpr std::size_t bytes = task_state::greenlet_room + sizeof(Impl);
  if constexpr (alignof(Impl) <= fiber::hosted_alignment && bytes <= fiber::max_hosted_bytes) {
    fiber::stack_host* h = loop->compact_tasks ? fiber::acquire_stack_host(bytes, loop->task_stack) : nullptr;
    if (h != nullptr) {
      void* room = static_cast<char*>(fiber::stack_host_memory(h)) + task_state::greenlet_room;
      Impl* task;
      try {
        task = ::new (room) Impl(loop, std::forward<Args>(args)...);
      } catch (...) {
        fiber::release_stack_host(h);
        throw;
      }
      task->host = h;
      return task;
    }
  }
  return new Impl(loop, std::forward<Args>(args)...);
}

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
