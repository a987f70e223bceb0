// asyncio/event_loop.hpp: event_loop, Handle, and the loop accessors.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/future.hpp"
#include "greenlet/asyncio/task_body.hpp"
#include "greenlet/detail/loop_core.hpp"
#include "greenlet/detail/task_state.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::concurrent {
class Executor;
}

namespace greenlet::asyncio {

template <class T>
class Task;

namespace detail {
// run_until_done(loop, target) is run_until_complete()'s loop: it runs loop
// until target is done. Declared here, not in tasks.hpp, because
// src/asyncio/event_loop.cpp defines it: the definition must see this
// declaration to be exported from a shared library built with
// -fvisibility=hidden.
void run_until_done(loop_core* loop, future_state* target);

// stored_result_t<F, A...> is the result type of the Task or Future a call F(A...) becomes
// (create_task(), run_in_executor(), to_thread(), ...): what F returns, by value. A function
// returning a reference (T&, const T&, T&&) gives a Task<T> holding a copy of the object (moved
// from it for T&&), made when the function returns: a result is read later, when the function's
// captures, or the object the reference named, may be gone (std::async keeps the reference, a
// std::future<T&>, and leaves that to the caller). To share the object itself, return a pointer
// or std::ref(object). A const value gives a plain T.
template <class F, class... A>
using stored_result_t = std::remove_cvref_t<std::invoke_result_t<F, A...>>;

// task_function<F> is true for what the calls that run a function as a task take (create_task(),
// gather(), wait_for(), run(), ...): a callable with no arguments. Each such call checks it with
// a static_assert naming the fix, in an `if constexpr` whose other branch is then not compiled:
// create_task(fetch(1)) (Python's create_task(coro) read literally) passes fetch's result, and
// gave pages of template errors about std::invoke_result.
template <class F>
inline constexpr bool task_function = std::is_invocable_v<std::decay_t<F>&>;

// has_call_operator<F> is true for a lambda or function object with one (non-template) operator():
// not "the result of a call" but a callable with the wrong parameters, or a lambda whose body
// failed to compile (its own errors come first; the message must not blame the caller then).
// Found by name (an operator() of F makes the one of call_operator_probe ambiguous), so that
// neither its parameters nor a deduced return type (a lambda body with errors) matter.
struct call_operator_probe {
  void operator()();
};
template <class D>
struct call_operator_probed : D, call_operator_probe {};
template <class F, class D = std::decay_t<F>>
concept has_call_operator = std::is_class_v<D> && !std::is_final_v<D> && !requires {
  &call_operator_probed<D>::operator();
};

// reject_uncallable_functor<callable, F>() stops the compilation with a message for a function
// object that cannot be called as the entry point needs (callable false); the entry point's own
// static_assert covers a non-callable (the result of a call).
template <bool callable, class F>
constexpr void reject_uncallable_functor() {
  static_assert(callable || !has_call_operator<F>,
                "this lambda or function object cannot be called as asked: a task's function (create_task(), "
                "gather(), wait_for(), run(), TaskGroup::create_task()) takes no arguments, so capture what it "
                "needs ([=] { return fetch(x); }); run_in_executor(executor, fn, args...) and to_thread(fn, "
                "args...) call fn(args...). If its body does not compile, see the errors above");
}
}  // namespace detail

// Handle is what call_soon/call_later/call_at return: cancel() keeps the
// callback from running. A loop-thread object, like the loop: not thread-safe.
class Handle {
 public:
  Handle() noexcept = default;
  // Internal: adopts one reference to the node; keeps its loop alive too. Throws nothing; loop
  // thread only.
  explicit Handle(detail::callback_node* adopted) noexcept : node_(adopted) {
    if (node_ != nullptr) detail::retain(node_->loop);
  }
  // Handle(other) is another reference to the same callback (and its loop). Throws nothing; loop
  // thread only, like the Handle.
  Handle(const Handle& other) noexcept : node_(other.node_) {
    if (node_ != nullptr) {
      detail::retain(node_);
      detail::retain(node_->loop);
    }
  }
  // operator=(other) makes this refer to other's callback, dropping the previous reference. Throws
  // nothing; loop thread only.
  Handle& operator=(Handle other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~Handle() {
    if (node_ == nullptr) return;
    detail::loop_core* loop = node_->loop;
    detail::release(node_);
    detail::release(loop);
  }
  // cancel() keeps the callback from running, if it has not yet. Throws nothing; loop thread only.
  void cancel() noexcept {
    if (node_ != nullptr) node_->loop->cancel_node(node_);
  }
  // cancelled() is true once cancel() was called on this callback (false for an empty Handle).
  // Throws nothing; loop thread only.
  bool cancelled() const noexcept { return node_ != nullptr && node_->cancelled; }
  // when() is a timer's deadline on the loop's clock, as given to call_at() (time() + delay for
  // call_later()): NaN for a NaN one, as asyncio's TimerHandle.when(), though such a timer is due at
  // once. 0 for call_soon()'s handle, which is no timer, and for an empty Handle. Throws nothing;
  // loop thread only.
  double when() const noexcept { return node_ == nullptr ? 0 : node_->public_when(); }

 private:
  friend class event_loop;
  detail::callback_node* node_ = nullptr;
};
// TimerHandle is what call_later() and call_at() return: a Handle, whose when() is the deadline.
// Same rules as Handle: throws nothing, loop thread only.
using TimerHandle = Handle;

// exception_context is what the exception handler receives: message, source and exception. A
// plain struct, not synchronized; its members throw only std::bad_alloc when copied.
using detail::exception_context;

// eager_task_factory is asyncio's eager_task_factory (Python 3.12), for event_loop::set_task_factory():
// a task made while its loop runs takes its first step inside create_task(), before it returns,
// and is scheduled only if it suspends. One that finishes there never enters the ready queue.
struct eager_task_factory_t {
  explicit constexpr eager_task_factory_t() = default;
};
inline constexpr eager_task_factory_t eager_task_factory{};

class AnyTask;
class task_request;

namespace detail {
// run_task_factory(loop, request) is create_task() with a custom task factory set: it calls the
// factory, then request.create() if the factory did not, and returns the task with the request's
// reference to it. Throws what the factory or create() throws (task_factory.cpp).
task_state* run_task_factory(loop_core* loop, task_request& request);
}  // namespace detail

// task_request is what a custom task factory (event_loop::set_task_factory(fn)) receives for each
// task its loop makes: asyncio's factory(loop, coro, **kwargs). The fields are create_task()'s
// keyword arguments, for the factory to read or change; create() makes the task with them, as the
// loop does without a factory, and returns it, as Python's factory returns the Task it made. A
// factory that does not call create() has it called once the factory returns. The request lives
// on create_task()'s stack for the factory's call only: keep the task, not the request. Loop
// thread only.
class task_request {
 public:
  // name: name= ("" gives "Task-N").
  std::string name;
  // context: context= (null: a copy of the creator's context).
  ::greenlet::context* context = nullptr;
  // eager_start: eager_start= (unset: not eager, since the factory takes eager_task_factory's
  // place; set it to true as create_eager_task_factory() does).
  std::optional<bool> eager_start;

  // create() makes the task now and returns it. With eager_start set and the loop running, the
  // task's first step runs inside create(). Throws RuntimeError (invalid_state) if called a
  // second time, and what create_task() throws (the loop closed, greenlet::error context_entered,
  // std::bad_alloc): the task's function never runs then. Loop thread only.
  AnyTask create();
  // created() is true once create() made the task. Throws nothing.
  bool created() const noexcept { return made_ != nullptr; }
  // wrap(fn) has the task run fn(body) in place of its function, where a Python factory wraps the
  // coroutine it was given: fn runs in the task, as its function would, may await, and runs the
  // function by calling body() once (task_body). The task's result is the function's; what fn
  // throws is the task's exception instead. A second wrap() wraps the first: its function runs
  // outermost. The shared_ptr form lets many tasks share one wrapper. Before create() only:
  // after it, RuntimeError (invalid_state); an empty function is greenlet::error
  // (bad_arguments). Costs the task a lookup under a mutex when it is made and when it starts.
  template <class W>
  requires(std::invocable<W&, task_body&> &&
           !std::same_as<std::remove_cvref_t<W>, std::shared_ptr<const task_wrapper>>) void wrap(W&& fn) {
    wrap(std::make_shared<const task_wrapper>(std::forward<W>(fn)));
  }
  void wrap(std::shared_ptr<const task_wrapper> fn);

  task_request(const task_request&) = delete;
  task_request& operator=(const task_request&) = delete;
  // ~task_request() lets go of the task create() made, if create_task() did not take it (the
  // factory threw after create()): the task runs on, held by its loop. Throws nothing.
  ~task_request();

  // Internal: what create_task() passes; maker makes the task of the function at `fn`.
  using maker = detail::task_state* (*)(void* fn, detail::loop_core* loop, const task_request& request);
  task_request(std::string n, ::greenlet::context* ctx, std::optional<bool> eager, maker make, void* fn,
               detail::loop_core* loop) noexcept
      : name(std::move(n)), context(ctx), eager_start(eager), make_(make), fn_(fn), loop_(loop) {}

 private:
  friend detail::task_state* detail::run_task_factory(detail::loop_core* loop, task_request& request);
  maker make_;
  void* fn_;
  detail::loop_core* loop_;
  detail::task_state* made_ = nullptr;           // one reference, until create_task() takes it
  std::shared_ptr<const task_wrapper> wrapper_;  // what wrap() gave, for create()
};

// task_factory is what event_loop::get_task_factory() returns and set_task_factory() takes: none
// (nullptr, asyncio's None: tasks start on a later iteration), eager_task_factory, or a function
// `void(event_loop&, task_request&)` called for every task the loop makes (asyncio's
// factory(loop, coro, **kwargs)). Copies of one made from a function compare equal, as Python's
// `get_task_factory() is factory`: `asyncio::task_factory f = [](auto& loop, auto& request) {...};
// loop.set_task_factory(f); loop.get_task_factory() == f`. It compares equal to nullptr or
// eager_task_factory when it is that. Throws nothing but std::bad_alloc (made from a function).
class task_factory {
 public:
  task_factory(std::nullptr_t = nullptr) noexcept {}             // NOLINT: implicit, as None
  task_factory(eager_task_factory_t) noexcept : eager_(true) {}  // NOLINT: implicit
  // task_factory(fn) is a custom factory calling fn(loop, request). An empty std::function is
  // accepted here and refused by set_task_factory().
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, task_factory> && std::invocable<F&, event_loop&, task_request&>)
      task_factory(F&& fn)  // NOLINT: implicit, as a Python callable
      : fn_(std::make_shared<const custom_task_factory>(std::forward<F>(fn))) {}
  // eager() is true for eager_task_factory.
  bool eager() const noexcept { return eager_; }
  // custom() is the function of a factory made from one, else null.
  const custom_task_factory* custom() const noexcept { return fn_.get(); }
  // True for a factory set (eager_task_factory or a function), false for none.
  explicit operator bool() const noexcept { return eager_ || fn_ != nullptr; }
  friend bool operator==(const task_factory& a, const task_factory& b) noexcept {
    return a.eager_ == b.eager_ && a.fn_ == b.fn_;
  }

 private:
  friend class event_loop;
  explicit task_factory(std::shared_ptr<const custom_task_factory> fn) noexcept : fn_(std::move(fn)) {}
  bool eager_ = false;
  std::shared_ptr<const custom_task_factory> fn_;
};

// create_eager_task_factory(fn) is asyncio's create_eager_task_factory() (3.12) for a factory
// function: the tasks it makes are eager (eager_start true unless create_task() was given
// false), then fn(loop, request) runs as a custom factory would. Throws std::bad_alloc.
template <class F>
requires std::invocable<F&, event_loop&, task_request&> task_factory create_eager_task_factory(F&& fn) {
  return task_factory([fn = std::forward<F>(fn)](event_loop& loop, task_request& request) mutable {
    if (!request.eager_start.has_value()) request.eager_start = true;
    fn(loop, request);
  });
}

// task_options are create_task()'s keyword arguments, asyncio's name=, context= and (3.14)
// eager_start=: `asyncio::create_task(fn, {.name = "fetch", .eager_start = true})`. A plain struct.
struct task_options {
  // name: the task's name; empty gives "Task-N".
  std::string name{};
  // context: the context object the task runs in itself (asyncio's context=ctx, see
  // event_loop::create_task(fn, name, ctx)); null runs it in a copy of the creator's context.
  ::greenlet::context* context = nullptr;
  // eager_start: true takes the first step inside create_task() when the loop runs (as
  // eager_task_factory does for every task); false schedules it for a later iteration even under
  // eager_task_factory; unset lets the loop's task factory decide.
  std::optional<bool> eager_start{};
};

// event_loop is asyncio's event loop: a ready queue run FIFO, timers run in
// deadline order (ties in scheduling order), and an epoll wait that sleeps
// until the next timer, I/O event or call_soon_threadsafe(). Tasks are
// greenlets it switches into; any function running in a task may await.
//
// Thread rules: a loop belongs to the thread that made it, even after that
// thread exits; only call_soon_threadsafe() may be called from others (and
// close(), or dropping the loop, once the owner thread has exited). The calls
// that schedule or register something (call_soon, call_later, call_at,
// create_task, create_future, add_reader, add_writer, run_in_executor, and
// run_forever/run_until_complete) throw RuntimeError (asyncio_errc::wrong_loop)
// on another thread, whether the loop runs or not.
class event_loop {
 public:
  // options configures a new event_loop (event_loop(opts), new_event_loop(opts), run()). A plain
  // struct: throws nothing, not synchronized.
  struct options {
    // virtual_time: instead of sleeping until the next timer, the clock
    // jumps to it. For tests: timeouts run instantly and deterministically.
    bool virtual_time = false;
    // task_stack: the stack of every task's greenlet. Guarded stacks cost
    // two kernel mappings each and Linux allows vm.max_map_count (65530)
    // per process, so past ~32,000 suspended tasks use unguarded ones
    // ({.guard_page = false}) or raise the limit. Tasks always run on
    // separate stacks, whatever the thread's stack mode; mode
    // stack_mode::shared makes the event_loop constructor throw ValueError.
    stack_options task_stack = {};
    // compact_tasks: each task's own objects (its state and its greenlet's,
    // ~750 B) live in the top page of its stack, which a suspended task keeps
    // resident anyway, instead of on the heap: ~15% less memory per suspended
    // task (bench/README.md). The price: a finished task's stack goes back to
    // the pool only when its last Task handle goes, so many short tasks whose
    // handles are held (gather()) reuse fewer warm stacks and run ~30% slower;
    // and the objects no longer lie side by side on the heap in the order the
    // loop steps them. For servers holding many idle tasks. Off under
    // AddressSanitizer and Valgrind, which must see the objects on the heap
    // to report their misuse. Unset: on if the environment variable
    // GREENLET_ASYNCIO_COMPACT_TASKS is set to anything but "" or "0" when
    // the loop is made, else off.
    std::optional<bool> compact_tasks = {};
    // debug: debug mode (set_debug()) from the start, as asyncio.run(main, debug=True). Unset: on if
    // the environment variable GREENLET_ASYNCIO_DEBUG is set to anything but "" or "0" when the
    // loop is made (asyncio's PYTHONASYNCIODEBUG), else off.
    std::optional<bool> debug = {};
    // task_tracebacks: a task that fails records the frames its exception left its function from,
    // its traceback (Task::get_stack(), print_stack(), the "Task exception was never retrieved"
    // report; docs/asyncio.md, "Tracebacks"). The record is a walk of those frames during the
    // throw, which makes a failing task's throw ~1.4x as costly (bench/README.md); a task that
    // returns or is cancelled pays nothing. false: no tracebacks, for programs whose tasks fail
    // by the hundred thousand a second.
    bool task_tracebacks = true;
  };

  // event_loop() makes a loop with default options, owned by the calling thread. Throws
  // std::system_error if the epoll poller cannot be created, std::bad_alloc.
  event_loop() : event_loop(options{}) {}
  // event_loop(opts) makes a loop with the given options, owned by the calling thread. Throws
  // std::system_error if the epoll poller cannot be created, std::bad_alloc.
  explicit event_loop(options opts);
  // ~event_loop() closes the loop. On another thread
  // than the owner's, while the owner lives, a loop with tasks (or other
  // references, or close hooks) is not closed there: its tasks are that
  // thread's greenlets. The owner thread closes it when it exits, and the
  // drop is reported through report_unraisable(); close() the loop on its
  // own thread before dropping it elsewhere. Throws nothing.
  //
  // Destroyed while it runs (by one of its callbacks or tasks: the unique_ptr
  // or last shared_ptr holding it reset there), the loop is not stopped: as
  // Python's run_forever() keeps its loop alive, the run goes on until it
  // ends as it would have (stop(), or run_until_complete()'s future done),
  // then the loop is closed and freed. Meanwhile get_running_loop(), and the
  // exception handler's `loop` argument, give a stand-in event_loop for it (the
  // destroyed object must not be used: code holding a reference or pointer
  // to it must switch to get_running_loop()). The destroyed object's handler
  // and everything scheduled stay in force.
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  // call_soon(fn) runs fn on a later iteration, after callbacks already
  // scheduled. call_later(delay, fn) and call_at(when, fn) run it at a time
  // on this loop's clock (time()). Exceptions fn throws go to the exception
  // handler; they never stop the loop. Throws RuntimeError if the loop is
  // closed, or (wrong_loop) on another thread: from there use
  // call_soon_threadsafe(); greenlet::error (errc::bad_arguments) for an
  // empty fn, as do call_soon_threadsafe(), add_reader() and add_writer().
  // Loop thread only.
  //
  // Context variables: fn runs in a copy of the context current when it was
  // scheduled (asyncio's copy_context() per Handle), or of `ctx` when one is
  // given (asyncio's context=). What fn sets stays in that copy: later
  // callbacks and the code running the loop do not see it, and neither does
  // ctx (unlike asyncio, which runs fn in ctx itself; to keep fn's sets in
  // ctx, call ctx.run() in fn, with ctx outliving the callback). Capturing
  // costs nothing while no variable is set.
  Handle call_soon(std::function<void()> fn);
  // call_soon(fn, ctx) is call_soon(fn) run in a copy of ctx. Same rules.
  Handle call_soon(std::function<void()> fn, const ::greenlet::context& ctx);
  // call_later(delay, fn) runs fn delay seconds from time(); see call_soon(). Throws RuntimeError if
  // the loop is closed or on another thread. Loop thread only: from others use call_soon_threadsafe().
  Handle call_later(double delay, std::function<void()> fn);
  // call_later(delay, fn, ctx) is call_later(delay, fn) run in a copy of ctx. Same rules.
  Handle call_later(double delay, std::function<void()> fn, const ::greenlet::context& ctx);
  // call_at(when, fn) runs fn once time() reaches when; see call_soon(). Throws RuntimeError if the
  // loop is closed or on another thread. Loop thread only: from others use call_soon_threadsafe().
  Handle call_at(double when, std::function<void()> fn);
  // call_at(when, fn, ctx) is call_at(when, fn) run in a copy of ctx. Same rules.
  Handle call_at(double when, std::function<void()> fn, const ::greenlet::context& ctx);
  // call_soon_threadsafe(fn) is call_soon() from any thread; it wakes a
  // sleeping loop. fn runs in a copy of the calling thread's current context
  // (empty on a thread that never used greenlets), or of ctx. Throws
  // RuntimeError once the loop is closed. Thread-safe.
  void call_soon_threadsafe(std::function<void()> fn);
  // call_soon_threadsafe(fn, ctx) is call_soon_threadsafe(fn) run in a copy of ctx. Same rules.
  void call_soon_threadsafe(std::function<void()> fn, const ::greenlet::context& ctx);

  // add_reader(fd, fn)/add_writer(fd, fn) run fn each time fd is readable
  // (writable), until remove_reader(fd)/remove_writer(fd), which return
  // false if nothing was registered. One callback per fd and direction: a
  // new one replaces the old. Remove before closing fd. fn runs in a copy of
  // the context current at registration, the same copy each time (asyncio's
  // Handle): what one call sets, the next sees. Throws
  // std::system_error if epoll refuses fd (regular files), RuntimeError if
  // the loop is closed or on another thread. Loop thread only. Defined in the I/O layer
  // (src/io/socket.cpp); see greenlet/io.hpp.
  void add_reader(int fd, std::function<void()> fn);
  // add_writer(fd, fn) runs fn each time fd is writable; see add_reader(). Throws RuntimeError if the
  // loop is closed or on another thread, std::system_error if epoll refuses fd. Loop thread only.
  void add_writer(int fd, std::function<void()> fn);
  // remove_reader(fd) stops watching fd for reading; false if no reader was registered. Throws
  // nothing; loop thread only.
  bool remove_reader(int fd) noexcept;
  // remove_writer(fd) stops watching fd for writing; false if no writer was registered. Throws
  // nothing; loop thread only.
  bool remove_writer(int fd) noexcept;

  // Debug mode (asyncio's loop.set_debug()) finds code that blocks the loop: each ready callback,
  // and each step of a task (from one resumption to its next suspension), that runs for
  // slow_callback_duration() seconds or more is reported as one line, "Executing <what> took 0.150
  // seconds": <what> is the task's repr() for a task step, the Handle's repr() for a callback
  // ("<Handle f()::{lambda()#1}()>", "<TimerHandle when=12.5 ...>"). The time is real (a monotonic
  // clock, even with options::virtual_time). The line goes to the debug log function
  // (set_debug_log()), by default to stderr with an "asyncio: " prefix. Off, the loop pays one
  // branch per callback; on, two clock reads per callback, and tasks no longer hand their turn to
  // the next task directly (each step returns to the loop, to be timed alone). See
  // docs/asyncio.md, "Debug mode".
  //
  // set_debug(enabled) turns debug mode on or off; it takes effect from the next callback. Throws
  // RuntimeError (wrong_loop) on another thread. Loop thread only.
  void set_debug(bool enabled);
  // get_debug() is true in debug mode. Throws nothing; loop thread only.
  bool get_debug() const noexcept { return core_->debug; }
  // slow_callback_duration() is the report threshold in seconds: 0.1 unless set. Throws nothing;
  // loop thread only.
  double slow_callback_duration() const noexcept { return core_->slow_callback_duration; }
  // set_slow_callback_duration(seconds) sets it (asyncio's loop.slow_callback_duration = seconds): 0
  // reports every callback, infinity none. Throws ValueError for a negative or NaN one, RuntimeError
  // (wrong_loop) on another thread. Loop thread only.
  void set_slow_callback_duration(double seconds);
  // set_debug_log(log) makes log(line) receive debug mode's reports instead of stderr, one line
  // each, without prefix or newline (asyncio logs them with logger.warning()); empty: back to
  // stderr. log runs on the loop's thread, between callbacks; what it throws goes to the exception
  // handler. Throws RuntimeError (wrong_loop) on another thread, std::bad_alloc. Loop thread only.
  void set_debug_log(std::function<void(std::string_view line)> log);

  // time() is the loop's monotonic clock, in seconds (virtual with options::virtual_time). Throws
  // nothing; loop thread only.
  double time() const { return core_->time(); }

  // run_forever() runs until stop(). Throws RuntimeError if the loop is
  // closed, already running, used from a thread other than its owner's, or
  // if another loop runs on this thread. Loop thread only.
  void run_forever();
  // run_until_complete(x) runs until x is done and returns its result. x is
  // a Future, a Task, or a function (run as a task). Throws RuntimeError when it
  // can never complete: nothing ready, no timer, no I/O, no outside work;
  // also run_forever()'s errors, checked before a function becomes a task (a
  // refused function never runs), and x's own exception (CancelledError if it
  // was cancelled). Loop thread only.
  template <class X>
  decltype(auto) run_until_complete(X&& x);
  // stop() makes run_forever() return after the current iteration. Throws nothing; loop thread only
  // (a plain flag): from another thread use call_soon_threadsafe([&] { loop.stop(); }).
  void stop() noexcept { core_->stop(); }
  // is_running() is true while run_forever() or run_until_complete() runs. Throws nothing; loop
  // thread only.
  bool is_running() const noexcept { return core_->running; }
  // is_closed() is true once close() was called. Throws nothing; loop thread only.
  bool is_closed() const noexcept { return core_->closed; }
  // close() ends the loop: pending callbacks are dropped and unfinished
  // tasks are killed: their stacks unwind before close() returns, whatever
  // else refers to their greenlets (a generator or child greenlet made in the
  // task, say). A task that catches GreenletExit and switches away instead is
  // reported to the exception handler and keeps its state until its stack
  // unwinds. Throws RuntimeError while
  // running; closing twice is a no-op. Loop thread only: on another thread
  // it throws RuntimeError (wrong_loop) while the owner thread lives, as
  // only that thread can kill the tasks; once it has exited, any thread.
  void close();

  // create_future<T>() makes a pending future of this loop. Throws RuntimeError (wrong_loop) on
  // another thread, std::bad_alloc. Loop thread only.
  template <class T = void>
  Future<T> create_future() {
    core_->check_loop_thread();
    return Future<T>(new detail::future_value<T>(core_.get()));
  }
  // create_task(fn, name) runs fn() in a new task, starting on a later
  // iteration. The task is named "Task-N" unless given a name, and runs in a
  // copy of the caller's context. Its result is what fn returns, by value: a
  // fn returning T& or const T& gives a Task<T> holding a copy of the object,
  // made when fn returns (T&&: moved from it); see detail::stored_result_t.
  // So do the calls that run a function as a task (await(fn), wait_for(),
  // gather(), shield(), ensure_future(), run(), run_until_complete(),
  // TaskGroup::create_task()). The task's copy of fn, with what it
  // captured, is destroyed as soon as the task is through with it: in the
  // task as fn returns or throws, before the result is published (so a
  // capture's destructor may await, but must let no exception out), or when
  // the task is cancelled before its first step or let go of unstarted; a
  // Task handle held after that keeps the result, not the captures, as a
  // finished Python coroutine keeps no frame. Throws RuntimeError if the
  // loop is closed or on another thread (then fn never runs),
  // std::bad_alloc. Loop thread only.
  template <class F>
  auto create_task(F&& fn);
  // create_task(fn, name) is create_task(fn) for a task named `name` (anything a std::string can
  // be made from). A template, so that a braced list goes to create_task(fn, task_options) below
  // and not to one of std::string's constructors.
  template <class F, std::convertible_to<std::string> Name>
  auto create_task(F&& fn, Name&& name);
  // create_task(fn, name, ctx) is asyncio's create_task(coro, name=, context=ctx): the task runs
  // in the context object ctx itself, not in a copy. What it sets is in ctx once the task is done
  // (a later task or ctx.run() given ctx sees it); what ctx held when the task started is what
  // the task sees. ctx is entered from this call until the task is done (or let go of unstarted):
  // meanwhile ctx.run(), and a create_task() given ctx, throw greenlet::error
  // (errc::context_entered, Python's RuntimeError "is already entered"). Python lets two tasks
  // share a context, each step entering it in turn; here a task holds it for its whole run, so
  // run one at a time, or give each a copy (auto mine = ctx). ctx must outlive the task's
  // running, and not be moved or assigned to meanwhile. Throws as create_task(fn, name), and
  // greenlet::error (context_entered) if ctx is entered (then fn never runs). Loop thread only.
  template <class F>
  auto create_task(F&& fn, std::string name, ::greenlet::context& ctx);
  // create_task(fn, options) is create_task(fn, name) or create_task(fn, name, ctx) with asyncio's
  // keyword arguments in a task_options, eager_start (3.14) included: `loop.create_task(fn,
  // {.name = "n", .eager_start = true})`. Throws as those. Loop thread only.
  template <class F>
  auto create_task(F&& fn, task_options opts);
  // set_task_factory(eager_task_factory) makes the tasks of this loop eager, as asyncio's
  // loop.set_task_factory(asyncio.eager_task_factory) (3.12): create_task() called while the loop
  // runs (and so gather(), await(fn), wait_for(fn), TaskGroup::create_task(), ...) runs the task's
  // function at once, in the caller's turn, until it first suspends or returns. A task that
  // returns without suspending is done when create_task() returns: it never waits in the ready
  // queue, and all_tasks() lists it only while it runs. current_task() is the new task during
  // that first step and the creator's again afterwards. While the loop is not running (before
  // run_until_complete()), tasks start on a later iteration as usual.
  //
  // set_task_factory(fn) (a task_factory made from a function) calls fn(loop, request) for every
  // task made on this loop by any of those calls, as asyncio's loop.set_task_factory(factory):
  // fn may change the request's name, context and eager_start, make the task with
  // request.create() and do what it likes with it (add a done callback, count it, keep it in a
  // registry). What fn throws leaves create_task(), as from Python's factory. Not called for an
  // async generator's body, which is no task in Python.
  //
  // set_task_factory(nullptr) goes back to the default. Throws greenlet::error (bad_arguments)
  // "task factory must be a callable or nullptr" for a task_factory made from an empty
  // std::function (asyncio's TypeError), leaving the factory as it was; RuntimeError (wrong_loop)
  // on another thread. Loop thread only.
  void set_task_factory(task_factory factory);
  // get_task_factory() is the factory set: nullptr (none), eager_task_factory, or a copy of the
  // task_factory set, equal to it. Throws nothing.
  task_factory get_task_factory() const noexcept {
    if (core_->task_factory_fn != nullptr) return task_factory(core_->task_factory_fn);
    return core_->eager_tasks ? task_factory(eager_task_factory) : task_factory(nullptr);
  }
  // run_in_executor(executor, fn, args...) runs fn(args...) on executor
  // (nullptr: the default thread pool) and returns a Future to await.
  // Throws RuntimeError if the loop is closed or on another thread,
  // concurrent::RuntimeError if the executor is shut down,
  // concurrent::BrokenExecutor if it is broken. Loop thread only. Defined in
  // greenlet/asyncio/executor.hpp.
  template <class F, class... A>
  auto run_in_executor(::greenlet::concurrent::Executor* executor, F&& fn, A&&... args);

  // The exception handler sees exceptions from callbacks, tasks whose
  // exception was never retrieved, and other errors with nowhere to go.
  // set_exception_handler(handler) installs one (empty: the default). A
  // handler may replace or remove itself while it runs (a one-shot handler):
  // the loop keeps the running one alive until it returns, as Python keeps
  // the callable. The handler's `loop` is never null: once this event_loop is destroyed (and its
  // run, if it was running, has ended), reports still made (a future outliving the loop whose
  // exception was never retrieved) go to the default handler, as its captures may be gone too.
  // Throws std::bad_alloc; loop thread only.
  void set_exception_handler(detail::exception_handler handler);
  // call_exception_handler(context) hands context to the exception handler (the default one if none
  // is set, or if it throws). Throws nothing; loop thread only.
  void call_exception_handler(const exception_context& context) { core_->report(context); }
  // default_exception_handler(context) prints the message, its source and exception to stderr; the
  // handler used when none is set. Throws only std::bad_alloc; any thread.
  static void default_exception_handler(const exception_context& context);

  // external_work_guard keeps deadlock detection off while another thread
  // may still call call_soon_threadsafe() (executors take one per job).
  class external_work_guard {
   public:
    // external_work_guard(loop) counts one job of another thread on loop until destroyed. Throws
    // nothing; any thread (an atomic counter). The guard keeps the loop's core alive (a remote
    // reference), so the thread may drop it after posting its last callback, even if the loop
    // finished and was destroyed meanwhile.
    explicit external_work_guard(event_loop& loop) : core_(loop.core_.get()) {
      detail::retain_remote(core_);
      core_->external_work.fetch_add(1);
    }
    ~external_work_guard() { drop(); }
    external_work_guard(const external_work_guard&) = delete;
    external_work_guard& operator=(const external_work_guard&) = delete;
    // Movable, so that a thread can own one: std::thread([g = external_work_guard(loop), &loop] {...}).
    // The moved-from guard counts nothing. Throws nothing.
    external_work_guard(external_work_guard&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    // Move assignment: drops this guard's job, then takes other's. Throws nothing.
    external_work_guard& operator=(external_work_guard&& other) noexcept {
      if (this != &other) {
        drop();
        core_ = std::exchange(other.core_, nullptr);
      }
      return *this;
    }

   private:
    void drop() noexcept {
      if (core_ == nullptr) return;
      core_->external_work.fetch_sub(1);
      detail::release_remote(std::exchange(core_, nullptr));
    }
    detail::loop_core* core_;
  };

  // Internal: core() is the loop's implementation object, for the layers above. Throws nothing;
  // any thread (the pointer never changes).
  detail::loop_core* core() const noexcept { return core_.get(); }

 private:
  // The stand-in facade ~event_loop() hands a running loop's core to (it adopts the destroyed
  // facade's reference); run_forever() deletes it as it returns. Throws nothing.
  struct adopt_core_t {};
  event_loop(detail::loop_core* core, adopt_core_t) noexcept;

  struct core_release {
    void operator()(detail::loop_core* core) const noexcept { detail::release(core); }
  };
  std::unique_ptr<detail::loop_core, core_release> core_;
};

// new_event_loop() makes a loop owned by the calling thread; set_event_loop()
// makes it this thread's current one for get_event_loop(). Throws
// std::system_error if the epoll poller cannot be created, std::bad_alloc.
std::shared_ptr<event_loop> new_event_loop(event_loop::options opts = {});
// set_event_loop(loop) makes loop this thread's current loop (null: none), as returned by
// get_event_loop(). Throws nothing; affects only the calling thread.
void set_event_loop(std::shared_ptr<event_loop> loop);
// get_running_loop() is the loop running on this thread. Throws RuntimeError if none runs here.
// Any thread: it answers for the calling thread.
event_loop& get_running_loop();
// get_event_loop() is the running loop, else this thread's current loop
// (made on first use, or again once closed). Throws what new_event_loop()
// throws. Any thread: it answers for the calling thread.
event_loop& get_event_loop();

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
