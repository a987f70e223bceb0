// asyncio/async_generator.hpp: async_generator<T, Send>, Python's async
// generator (PEP 525): a body that can both await and yield.
//
//   asyncio::async_generator<int> ticks([](auto& co) {
//     for (int i = 0; i < 3; ++i) {
//       asyncio::sleep(0.1);  // awaits
//       co.yield(i);          // hands i to the consumer's anext()
//     }
//   });
//   for (int i : asyncio::aiter(ticks)) print(i);  // in a task: 0 1 2
//
//   asyncio::async_generator<int, int> doubler([](auto& co) {
//     std::optional<int> got = co.yield(0);  // what asend() sends
//     while (got) got = co.yield(*got * 2);
//   });
//   doubler.anext();     // 0: starts it, as asend(None)
//   doubler.asend(21);   // 42
//
// Why not generator<T> (generator.hpp): a generator's body runs on a
// greenlet of its own, and a task can only suspend from its own greenlet,
// so such a body could not await. Here the body runs in a task of its own
// instead, started by the first anext(), and each item is handed over
// through a pair of futures (the item, and the go-ahead to continue).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/detail/exception_object_arg.hpp"
#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/detail/switch_inline.hpp"
#include "greenlet/detail/task_state.hpp"
#include "greenlet/fiber/context.hpp"
#include "greenlet/generator/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace detail {
// async_received<Send>::type is what yield() returns in an async
// generator's body: nothing for Send = void, else std::optional<Send>.
template <class Send>
struct async_received {
  using type = std::optional<Send>;
};
template <>
struct async_received<void> {
  using type = void;
};
struct no_value {};
}  // namespace detail

// async_generator<T, Send> yields T values (move-only ones too) to whoever
// awaits anext(), and may be sent Send values with asend() (void: it takes
// none), as Python's AsyncGenerator[T, Send]; its body takes a context& and
// may await anywhere. A move-only owner, as a Python async generator with
// one reference.
//
// Semantics, as PEP 525: the body starts on the first anext() (or asend()
// without a value). An exception it throws reaches the call that resumed
// it; StopAsyncIteration (and greenlet::StopIteration) thrown by it becomes
// RuntimeError. asend(v) resumes the pending yield with v; athrow(e) raises
// e there; both return the next value yielded, or std::nullopt if the body
// returns instead (Python's StopAsyncIteration). If the consumer is
// cancelled while the body runs, the body is cancelled too (in Python they
// share a task), and the call waits until the body has unwound or yielded
// (see anext()). A body that fails while parked at its yield (its own
// timeout() expires there, or a child of its task group fails) keeps the
// error for the next anext(), asend() or athrow(), which raise it (Python
// raises it when the body resumes); aclose() or the destructor coming first
// report it to the loop's exception handler. aclose() raises GeneratorExit at the pending yield and
// waits for the body to finish. Destroying a suspended generator raises
// GeneratorExit there without waiting (asyncio's finalizer hook schedules
// aclose()); the body then unwinds in its own task. A call under way
// (anext(), asend(), athrow(), aclose()) keeps the generator alive, as a
// pending __anext__ does in Python: destroying the generator meanwhile lets
// it finish, and the generator is finalized when it returns. A call that
// finds the body unwinding from a close no call waits for (asyncio::run()'s
// end closed it, e.g. an outer generator's cleanup closing the inner one it
// iterates) waits for that cleanup to end: std::nullopt (aclose() returns),
// or what the cleanup throws. A call while another call is under way is a
// RuntimeError, as Python's "anext(): asynchronous generator is already
// running". If the body's
// task ends before the body could run (it was cancelled first, or no stack
// could be mapped for it), the pending anext() raises that (CancelledError,
// the stack error) and the generator is finished. The body, with what it
// captured, is destroyed once it returns or throws (in its task, before the
// call under way hears of its end), or when aclose() or athrow() finishes
// the generator unstarted: a finished generator that is still held keeps
// none of it, as Python clears a finished async generator's frame.
//
// The body runs in a task of its own, but as a part of its consumer's: it
// is not in all_tasks() (so "cancel every other task" leaves it alone), and
// each step runs in the context of the task that resumed it: context_var
// values the consumer set are seen by the body, and those the body sets are
// seen by the consumer once the step returns, as in Python, where the body
// runs in the consumer's task. At the end of asyncio::run(), once the
// remaining tasks are cancelled and done, every generator still parked at a
// yield is closed: GeneratorExit there, as asyncio.run's
// loop.shutdown_asyncgens() does with aclose(). What the body throws when
// no call waits for it (after the destructor or that shutdown closed it)
// goes to the loop's exception handler. Inside the body, current_task() is
// the task whose anext() (asend(), athrow(), aclose()) runs the step, as in
// Python; a body run by no such call (closed by the destructor or at
// asyncio::run()'s end, where Python makes a task to run aclose()) sees a
// task of its own there, never the consumer's.
//
// Thread rules: it belongs to the loop's thread; anext(), asend(), athrow()
// and aclose() are called from tasks of the loop the body runs on.
template <class T, class Send = void>
class async_generator {
  static_assert(std::is_object_v<T> && !std::is_array_v<T>, "async_generator<T>: T must be an object type");
  static_assert(std::is_void_v<Send> || (std::is_object_v<Send> && !std::is_array_v<Send>),
                "async_generator<T, Send>: Send must be void or an object type");

  enum class status { unstarted, running, parked, finished };
  struct shared;

 public:
  // value_type is T, the type of the values yielded. A type alias: nothing to throw, any thread.
  using value_type = T;
  // send_type is Send, the type asend() carries into the body (void: none). A type alias: nothing
  // to throw, any thread.
  using send_type = Send;
  // received_type is what yield() returns in the body: void for Send = void, otherwise
  // std::optional<Send>, nullopt when resumed by anext() or asend() without a value (Python's
  // asend(None)). A type alias: nothing to throw, any thread.
  using received_type = typename detail::async_received<Send>::type;

  // context is the body's handle on its generator. Used only by the body, in its own task.
  class context {
   public:
    // yield(v) hands v to the pending anext() (asend(), athrow()) and
    // suspends the body until the next one, returning what asend() sends.
    // Throws what athrow() throws in, GeneratorExit when aclose() is called
    // or the generator destroyed meanwhile, CancelledError if the body's
    // task is cancelled, RuntimeError if it yields while being closed. The
    // body's task only.
    received_type yield(T value) { return async_generator::yield_value(*s_, std::move(value)); }

   private:
    friend async_generator;
    explicit context(shared* s) noexcept : s_(s) {}
    shared* s_;
  };

  // async_generator(body) makes an unstarted generator; body(context&) runs
  // in a task of the running loop from the first anext(). Throws only
  // std::bad_alloc and what moving body throws; loop thread only.
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, async_generator> &&
           std::is_invocable_v<std::decay_t<F>&, context&>) explicit async_generator(F&& body)
      : s_(std::make_shared<shared>()) {
    s_->body = std::make_unique<body_impl<std::decay_t<F>>>(std::forward<F>(body));
  }
  // async_generator(other) takes over other's generator, leaving other empty. Throws nothing. The
  // generator stays bound to its loop's thread.
  async_generator(async_generator&& other) noexcept = default;
  // operator=(other) takes over other's generator; the one held before is finalized as by the
  // destructor. Throws nothing; loop thread only.
  async_generator& operator=(async_generator&& other) noexcept {
    if (this != &other) {
      release();
      s_ = std::move(other.s_);
    }
    return *this;
  }
  // ~async_generator() finalizes the generator: GeneratorExit at its pending yield, without
  // waiting; a call under way (anext(), asend(), athrow(), aclose()) finishes first and finalizes
  // it on return. Throws nothing; loop thread only.
  ~async_generator() { release(); }

  // anext() runs the body to its next yield and returns the value, or
  // std::nullopt once it has returned. Rethrows what the body throws, also
  // what it failed with at its last yield while nobody waited. RuntimeError
  // if the body is already running (e.g. another task is in anext()), or
  // outside a task. A body unwinding from a close no call waits for (see the
  // class comment) is waited for: std::nullopt, or what its cleanup throws. If the caller is cancelled meanwhile, the
  // body is cancelled at its await and anext() waits for it to settle, as in Python where they share a task:
  // CancelledError once the body has let the cancel out and ended; the body's own error if it raises another; the value
  // it yields (or std::nullopt if it returns) if it swallows the cancel. Further cancels of the caller meanwhile go to
  // the body too. A body that had yielded before the caller was cancelled stays parked at that yield and the value is
  // lost. A task of the loop thread only.
  std::optional<T> anext() {
    shared& s = checked();
    if (s.state == status::finished) return end_of(s);
    return step(s, "anext()", [&s] { s.resume.set_result(); });
  }

  // asend() is anext(), Python's asend(None). Throws as anext(); a task of the loop thread only.
  std::optional<T> asend() { return anext(); }
  // Overload of asend(): asend(v) resumes the pending yield with v, whose
  // yield() returns it, and returns the next value yielded (std::nullopt
  // once the body has returned). Sending std::nullopt is Python's
  // asend(None). Throws as anext(), and generator_error (just_started) for a
  // value sent to an unstarted generator, which stays unstarted (Python's
  // TypeError). A task of the loop thread only.
  template <class S = Send>
  requires(!std::is_void_v<S>) std::optional<T> asend(std::type_identity_t<std::optional<S>> value) {
    shared& s = checked();
    if (s.state == status::finished) return end_of(s);
    if (s.state == status::unstarted && value) {
      throw generator_error(generator_errc::just_started,
                            "can't send non-None value to a just-started async generator");
    }
    return step(s, "asend()", [&s, &value] {
      s.sent = std::move(value);
      s.resume.set_result();
    });
  }

  // athrow(e) raises e at the pending yield and returns the next value the
  // body yields, or std::nullopt if it returns instead (Python's
  // StopAsyncIteration). An unstarted generator raises e here at once and is
  // finished without running; a finished one returns std::nullopt (as
  // Python's athrow() of an exhausted generator returns None). Throws what
  // the body throws (e itself if it does not catch it), asyncio::ValueError
  // for a null e, and as anext(). A task of the loop thread only.
  std::optional<T> athrow(std::exception_ptr error) {
    shared& s = checked();
    if (!error) throw ValueError("athrow(): the exception_ptr is null");
    if (s.state == status::finished) return end_of(s);
    if (s.state == status::unstarted) {
      finish_unstarted(s);
      std::rethrow_exception(std::move(error));
    }
    return step(s, "athrow()", [&s, &error] { s.resume.set_exception(std::move(error)); });
  }
  // Overload of athrow(std::exception_ptr): athrow(e) raises a copy of exception object e at the
  // pending yield. Throws as athrow(std::exception_ptr); a task of the loop thread only.
  template <::greenlet::detail::exception_object_arg E>
  std::optional<T> athrow(E&& error) {
    return athrow(std::make_exception_ptr(std::forward<E>(error)));
  }

  // aclose() raises GeneratorExit at the pending yield and waits until the
  // body finishes. Nothing happens to a finished generator (an error the
  // body failed with at its yield that no call raised goes to the loop's
  // exception handler); an unstarted one is finished without running.
  // Throws RuntimeError if the body yields instead, or is running; other
  // exceptions of the body pass through; CancelledError if the caller is
  // cancelled. A task of the loop thread only.
  void aclose() {
    shared& s = checked();
    if (s.state == status::unstarted) finish_unstarted(s);
    if (s.state == status::finished) {
      report_failure(s, "an asynchronous generator failed at its yield and was closed before an anext() raised it");
      return;
    }
    step(s, "aclose()", [&s] {
      s.closing = true;
      s.resume.set_exception(std::make_exception_ptr(::greenlet::GeneratorExit()));
    });
  }

  // finished() is true once the body has ended (or was closed unstarted); one that failed at its
  // yield is finished, its error still raised by the next anext(). Throws nothing; loop thread only.
  bool finished() const { return s_ == nullptr || s_->state == status::finished; }
  // operator bool() is false for a moved-from generator. Throws nothing.
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  struct body_base {
    virtual ~body_base() = default;
    virtual void call(context& co) = 0;
  };
  template <class F>
  struct body_impl final : body_base {
    template <class G>
    explicit body_impl(G&& g) : fn(std::forward<G>(g)) {}
    void call(context& co) override { fn(co); }
    F fn;
  };

  // shared is the state both sides reach: the consumer through the
  // generator, the body through its task (whose state holds it alive, in
  // held_by_task). The generator drops its task handle when destroyed,
  // which breaks the cycle; so does body_task_done() when the task ends.
  struct shared final : detail::async_generator_body {
    // close_at_shutdown() is asyncio::run()'s aclose() at its end: what
    // abandon() does to a parked body.
    void close_at_shutdown() noexcept override { raise_exit(*this); }
    // release_from_task() drops the body's task's reference, as that task's
    // state is destroyed.
    void release_from_task() noexcept override {
      std::shared_ptr<shared> last = std::move(held_by_task);
    }  // `last` may free this: nothing follows

    std::unique_ptr<body_base> body;
    // The body's task's reference, set by start(): held by the task itself,
    // not by its function, since the function is destroyed as the body
    // returns and body_task_done() uses this state after that.
    std::shared_ptr<shared> held_by_task;
    Future<std::optional<T>> item;  // the consumer awaits it in anext()
    Future<void> resume;            // the body awaits it in yield()
    Task<void> task;
    // The generator's own reference, parked here when it is destroyed while
    // a call (anext(), asend(), athrow(), aclose()) is under way; that call
    // finalizes it on return.
    std::shared_ptr<shared> orphan;
    status state = status::unstarted;
    bool closing = false;
    bool in_flight = false;  // a call awaits `item` (see orphan)
    bool abandoned = false;  // the generator is gone: the body must not park again
    // The call under way joined a close no call waited for (join_unwinding()):
    // no contexts are exchanged with the body.
    bool joined = false;
    // What the body threw when no call waited for it (it failed at its yield,
    // woken by its own timeout() or task group): raised by the next anext(),
    // asend() or athrow(), reported if the generator is closed first.
    std::exception_ptr failure;
    // What asend() hands to the pending yield.
    [[no_unique_address]] std::conditional_t<std::is_void_v<Send>, detail::no_value, received_type> sent;
    // The context of the step: the side that hands control over (the
    // consumer resuming, the body yielding or ending) leaves its context
    // here, and the other side takes it (context_waiting) when it runs.
    ::greenlet::detail::context_ptr context;
    bool context_waiting = false;
    // Each side's context as it last handed it over, which it still holds
    // when it takes the other's (it was suspended meanwhile): the same one
    // back needs no switch, the common case. &consumer_held, never a
    // context, until the body has handed one.
    const void* consumer_held = nullptr;
    const void* body_held = &consumer_held;
  };

  // own_context() is the calling greenlet's context (what
  // detail::current_context() returns), read in place: a step reads it
  // twice, and a copy or a call each time cost 5% of the step.
  static ::greenlet::detail::context_ptr& own_context() noexcept {
    return ::greenlet::detail::current_impl()->context_vars.vars;
  }
  // hand_context(s, held) leaves the calling greenlet's context for the
  // other side; held is the caller's side's record of it.
  static void hand_context(shared& s, const void*& held) noexcept {
    const ::greenlet::detail::context_ptr& mine = own_context();
    if (s.context != mine) s.context = mine;
    held = mine.get();
    s.context_waiting = true;
  }
  // take_context(s, held) makes the context the other side left the calling
  // greenlet's own (nothing if none was left since the last take).
  static void take_context(shared& s, const void* held) noexcept {
    if (!s.context_waiting) return;
    s.context_waiting = false;
    if (s.context.get() != held) own_context() = s.context;
  }

  // take_back(s) is take_context() for the consumer as its call returns;
  // a call that joined an unawaited close (join_unwinding()) takes nothing:
  // the context the body leaves is its own, not one the caller handed it.
  static void take_back(shared& s) noexcept {
    if (!s.joined) {
      take_context(s, s.consumer_held);
    } else {
      s.context_waiting = false;
    }
  }

  // step(s, op, resume_parked) is one resumption of the body for op: it
  // hands the caller's context over, resumes the parked body with
  // resume_parked() (or starts an unstarted one), and awaits what the body
  // does next.
  template <class Resume>
  std::optional<T> step(shared& s, const char* op, Resume&& resume_parked) {
    if (unwinding_unawaited(s) && !in_own_body(s)) return join_unwinding(s);
    if (s.state == status::running) {
      throw RuntimeError(asyncio_errc::invalid_state, std::string(op) + ": asynchronous generator is already running");
    }
    detail::task_state& caller = detail::awaiting_task();  // refused outside a task before anything changes
    s.item = Future<std::optional<T>>(new detail::future_value<std::optional<T>>(caller.loop));
    hand_context(s, s.consumer_held);
    if (s.state == status::unstarted) {
      start(s, get_running_loop());
    } else {
      s.state = status::running;
      resume_parked();
    }
    return await_item(s, caller);
  }

  // unwinding_unawaited(s) is true while the body unwinds from a close no
  // call waits for (asyncio::run()'s end or the finalizer raised
  // GeneratorExit at its yield): its GeneratorExit is on its way (still
  // parked, the resume future already set), or it runs its cleanup.
  static bool unwinding_unawaited(const shared& s) noexcept {
    if (!s.closing || s.in_flight) return false;
    return s.state == status::running || (s.state == status::parked && s.resume.done());
  }

  // in_own_body(s) is true when the body itself is the caller (its cleanup
  // closing the generator it was handed): it cannot wait for its own end,
  // and is refused as running, as in Python.
  static bool in_own_body(const shared& s) noexcept {
    detail::loop_core* loop = detail::running_loop();
    return loop != nullptr && !s.task.empty() && loop->current_task == s.task.state()->as_task();
  }

  // join_unwinding(s) is a call that finds the body unwinding with no call
  // waiting for it (unwinding_unawaited()): the close is under way, so what
  // the call asked for (a value sent, an exception thrown in) can no longer
  // happen; it waits for the cleanup to end instead of resuming the body a
  // second time (its resume future is taken) or refusing a cleanup as common
  // as an outer generator closing the inner one it iterates. It returns
  // std::nullopt once the body has ended (the generator is closed: Python's
  // StopAsyncIteration, or aclose()'s return), or raises what the cleanup
  // threw. The body keeps its own context: the caller neither hands it its
  // own nor takes the body's. The caller is the body's current_task() and
  // its cancel reaches the body, as for any step.
  static std::optional<T> join_unwinding(shared& s) {
    detail::task_state& caller = detail::awaiting_task();
    s.item = Future<std::optional<T>>(new detail::future_value<std::optional<T>>(caller.loop));
    s.joined = true;
    return await_item(s, caller);
  }

  shared& checked() const {
    if (s_ == nullptr) {
      throw RuntimeError(asyncio_errc::invalid_state, "use of a moved-from async_generator");
    }
    return *s_;
  }

  // await_item(s, caller) waits for the body's next yield (or end); caller
  // is the body's current_task() until then. Meanwhile s stays alive even
  // if the generator is destroyed (see release()), and is finalized here on
  // the way out if it was.
  static std::optional<T> await_item(shared& s, detail::task_state& caller) {
    s.in_flight = true;
    s.consumer = &caller;
    struct landed {
      shared& s;
      ~landed() {
        s.in_flight = false;
        s.joined = false;
        s.consumer = nullptr;
        if (s.orphan != nullptr) {
          std::shared_ptr<shared> last = std::move(s.orphan);
          abandon(s);
        }  // `last` may free s: nothing follows
      }
    } guard{s};
    Future<std::optional<T>> item = s.item;
    std::optional<T>* value = nullptr;
    std::exception_ptr cancelled;  // the consumer's own, its item given up
    try {
      value = &asyncio::await(item);
    } catch (const CancelledError&) {
      if (!item.cancelled()) {
        take_back(s);
        throw;
      }
      // Settled out of the handler: a task must not suspend inside one.
      cancelled = std::current_exception();
    } catch (...) {
      take_back(s);
      throw;
    }
    if (cancelled) return settle_cancelled(s, std::move(cancelled));
    take_back(s);
    return std::move(*value);
  }

  // settle_cancelled(s, cancelled) follows the consumer's cancel (the
  // CancelledError `cancelled`, its message too) into the body: the body's
  // task is cancelled at its own await, as the shared task would be in
  // Python, and the consumer waits until the body settles, so it never runs
  // on after anext() returned (asyncio's bpo-32751, as wait_for()). Further
  // cancels of the consumer meanwhile go to the body too. The body letting
  // the cancel out raises the consumer's CancelledError; another error of
  // its replaces it; a value it yields (or its end) after swallowing the
  // cancel is returned, as anext() does in Python. A body that had already
  // yielded when the consumer was cancelled stays parked there, the value
  // lost.
  static std::optional<T> settle_cancelled(shared& s, std::exception_ptr cancelled) {
    while (s.state == status::running && !s.task.empty()) {
      Future<std::optional<T>> item(new detail::future_value<std::optional<T>>(detail::awaiting_task().loop));
      s.item = item;
      try {
        std::rethrow_exception(cancelled);
      } catch (const CancelledError& e) {
        s.task.cancel(e.message());
      }
      try {
        std::optional<T>& value = asyncio::await(item);
        take_back(s);
        return std::move(value);
      } catch (const CancelledError&) {
        if (!item.cancelled()) break;  // the body's end: the cancel it let out
        cancelled = std::current_exception();
      } catch (...) {
        take_back(s);
        throw;
      }
    }
    take_back(s);
    // The body ended with an error while the consumer's cancel was on its
    // way: that error goes out instead, as it would in Python's shared task.
    if (s.failure) std::rethrow_exception(std::exchange(s.failure, nullptr));
    std::rethrow_exception(cancelled);
  }

  static received_type yield_value(shared& s, T value) {
    if (s.closing) {
      throw RuntimeError(asyncio_errc::invalid_state, "async generator ignored GeneratorExit");
    }
    if (s.abandoned) {
      // Destroyed while the body ran (its consumer was cancelled): this
      // yield, which would park it for nobody, is where its finalizer's
      // GeneratorExit lands.
      s.closing = true;
      throw ::greenlet::GeneratorExit();
    }
    s.resume = Future<void>(new detail::future_value<void>(detail::awaiting_task().loop));
    hand_context(s, s.body_held);
    // A cancelled item means the consumer is gone and a cancel() of this
    // task is on its way: park and receive it at the await below.
    if (!s.item.done()) s.item.set_result(std::optional<T>(std::move(value)));
    s.state = status::parked;
    struct resumed {
      shared& s;
      ~resumed() {
        if (s.state == status::parked) s.state = status::running;
        take_context(s, s.body_held);  // the resumer's, also for what it throws in
      }
    } guard{s};
    asyncio::await(Future<void>(s.resume));
    if constexpr (!std::is_void_v<Send>) return std::exchange(s.sent, std::nullopt);
  }

  static void run_body(shared& s) {
    take_context(s, s.body_held);
    context co(&s);
    try {
      call_body(s, co);
    } catch (const ::greenlet::GreenletExit&) {
      // Killed with its loop: nothing is left to tell.
      s.state = status::finished;
      throw;
    } catch (const ::greenlet::GeneratorExit&) {
      // Closed at a yield: a normal end. One it threw itself, or that
      // athrow() threw in, passes through, as in Python.
      if (!s.closing) {
        finish_with(s, std::current_exception());
        return;
      }
    } catch (const StopAsyncIteration&) {
      finish_with(s, std::make_exception_ptr(
                         RuntimeError(asyncio_errc::invalid_state, "async generator raised StopAsyncIteration")));
      return;
    } catch (const ::greenlet::StopIteration&) {
      finish_with(s, std::make_exception_ptr(
                         RuntimeError(asyncio_errc::invalid_state, "async generator raised StopIteration")));
      return;
    } catch (...) {
      finish_with(s, std::current_exception());
      return;
    }
    s.state = status::finished;
    hand_context(s, s.body_held);
    if (!s.item.done()) s.item.set_result(std::nullopt);
  }

  // call_body(s, co) runs the body and destroys it, with what it captured,
  // on the way out (returned or thrown), in its task and before the pending
  // call hears of its end: a finished generator that is still held keeps
  // none of it, as Python clears a finished async generator's frame.
  static void call_body(shared& s, context& co) {
    struct drop_on_exit {
      shared& s;
      ~drop_on_exit() { s.body.reset(); }
    } guard{s};
    s.body->call(co);
  }

  // finish_unstarted(s) finishes a generator whose body never ran (aclose()
  // or athrow() came first): the body, never to run, goes now too.
  static void finish_unstarted(shared& s) noexcept {
    s.state = status::finished;
    s.body.reset();
  }

  // finish_with(s, error) ends the generator with error: raised by the call
  // waiting for the body, else kept for the next one (the body failed at its
  // yield: its own timeout() fired there, or a child of its task group
  // failed), else, once nobody will step the generator again (its
  // destructor or asyncio::run()'s end closed it), reported.
  static void finish_with(shared& s, std::exception_ptr error) {
    s.state = status::finished;
    hand_context(s, s.body_held);
    if (!s.item.done()) {
      s.item.set_exception(std::move(error));
    } else if (s.closing || s.abandoned) {
      report_unawaited(s, std::move(error), nullptr);
    } else if (!s.item.cancelled() || !is_cancel(error)) {
      s.failure = std::move(error);  // a CancelledError after a cancelled item is the consumer's own
    }
  }

  // end_of(s) is what a call on the finished generator s gets: the error the
  // body failed with while nobody waited (once), else std::nullopt.
  static std::optional<T> end_of(shared& s) {
    if (s.failure) std::rethrow_exception(std::exchange(s.failure, nullptr));
    return std::nullopt;
  }

  // report_failure(s, message) reports the error the body failed with at
  // its yield if no call raised it: the generator was closed or destroyed
  // first.
  static void report_failure(shared& s, const char* message) noexcept {
    if (s.failure) report_unawaited(s, std::exchange(s.failure, nullptr), message);
  }

  // is_cancel(error) is true for a CancelledError.
  static bool is_cancel(const std::exception_ptr& error) noexcept {
    try {
      std::rethrow_exception(error);
    } catch (const CancelledError&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  // report_unawaited(s, error, message) hands the loop's exception handler
  // what the body threw with no call to go to, with message (by default
  // what the body was doing). A CancelledError is not reported: the body was
  // cancelled as asked.
  static void report_unawaited(const shared& s, std::exception_ptr error, const char* message) noexcept {
    if (is_cancel(error)) return;
    try {
      detail::loop_core* loop = detail::running_loop();
      if (loop == nullptr) return;
      detail::exception_context report;
      report.message = message != nullptr ? message
                       : s.closing        ? "an error occurred during closing of asynchronous generator"
                                          : "an asynchronous generator's exception had no anext() to go to";
      report.exception = std::move(error);
      if (loop->current_task != nullptr) report.source = loop->current_task->repr();
      loop->report(report);
    } catch (...) {
      // Only allocation can fail; the error is then dropped.
    }
  }

  // start(s, loop) runs the body in a new task of loop. The task's state
  // keeps s alive (held_by_task, released by ~task_state()): its function
  // does not, as it is destroyed before the task is done and before
  // body_task_done() runs. If the task ends before the body could run,
  // body_task_done() ends the generator with its outcome.
  void start(shared& s, event_loop& loop) {
    Task<void> task = detail::create_scheduled_task(loop, [state = &s] { run_body(*state); });
    s.held_by_task = s_;
    task.state()->as_task()->async_generator = &s;
    task.state()->add_fast_callback(&body_task_done, &s);
    s.task = std::move(task);
    s.state = status::running;
  }

  // body_task_done(s, task) runs once the body's task is done. Normally
  // run_body() has finished the generator; a task cancelled before its
  // first step, or that could not get a stack, never ran it, and the pending
  // anext() would wait for ever: it gets the task's outcome instead. The
  // task then lets go of s (`s` is alive until the task's reference, the
  // callback's, is released last).
  static void body_task_done(void* shared_state, void* task_state) {
    shared& s = *static_cast<shared*>(shared_state);
    auto* task = static_cast<detail::future_state*>(task_state);
    if (s.state != status::finished) {
      s.state = status::finished;
      if (!s.item.done()) {
        if (task->cancelled()) {
          s.item.cancel();
        } else if (std::exception_ptr error = task->exception()) {
          s.item.state()->set_exception(std::move(error));
        } else {
          s.item.set_result(std::nullopt);
        }
      }
    }
    s.task = Task<void>();  // breaks the cycle s -> task -> body -> s
    detail::release(task);
  }

  // release() lets go of the generator: finalized now, or by the call under
  // way when it returns. Throws nothing; loop thread only.
  void release() noexcept {
    if (s_ == nullptr) return;
    if (shared& s = *s_; s.in_flight) {
      s.orphan = std::move(s_);
      return;
    }
    abandon(*s_);
    s_.reset();
  }

  // abandon(s) finalizes a generator nobody holds any more: GeneratorExit at
  // its pending yield, without waiting; an error it failed with at its yield
  // that no call raised is reported. A body still running (woken at its
  // yield by its own timeout() or task group) goes on; it is closed at its
  // next yield.
  static void abandon(shared& s) noexcept {
    s.abandoned = true;
    report_failure(s, "an asynchronous generator failed at its yield and was destroyed before an anext() raised it");
    raise_exit(s);
    s.task = Task<void>();
  }

  // raise_exit(s) raises GeneratorExit at the parked body's yield, without
  // waiting for it to end.
  static void raise_exit(shared& s) noexcept {
    if (s.state != status::parked || s.resume.done()) return;  // not parked, or already told
    try {
      s.closing = true;
      s.resume.set_exception(std::make_exception_ptr(::greenlet::GeneratorExit()));
    } catch (...) {
      // Only allocation can fail here; the body then stays parked until its
      // loop closes and unwinds it.
    }
  }

  std::shared_ptr<shared> s_;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
