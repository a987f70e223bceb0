// generator/detail/generator_state.hpp: the heap object behind a generator,
// which runs its body on a greenlet and keeps what passes between the two.
// Internal: generator.hpp's templates need it; users never include it.
//
// The protocol, on the fiber layer's public API alone: resume() makes the
// caller the body greenlet's parent and switches to it; yield() stores the
// value and switches to that parent; the body's end stores its result or
// exception and returns, which also lands in the parent. The status field,
// written by the side that gives up control, tells resume() which happened.
// A body has no context variables of its own, as a Python generator frame
// has none: the fiber layer resolves a generator body's context to its
// parent's, the resumer's (src/fiber/context.cpp).
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include "greenlet/detail/switch_inline.hpp"
#include "greenlet/errors.hpp"
#include "greenlet/fiber/greenlet.hpp"
#include "greenlet/generator/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

template <class Yield, class Send, class Return>
class generator;

namespace detail {

enum class generator_status : unsigned char { unstarted, running, suspended, finished };

// resume_result is what one resume() ended with.
enum class resume_result : unsigned char { yielded, returned, exhausted };

// is_optional_v<T> is true for a std::optional.
template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;

// received_t is what yield returns in a body: nothing for Send = void,
// std::optional<Send> otherwise (nullopt for next(), Python's send(None)).
template <class Send>
struct received {
  using type = std::optional<Send>;
};
template <>
struct received<void> {
  using type = void;
};
template <class Send>
using received_t = typename received<Send>::type;

// send_slot_t is Send, or std::monostate for a generator that takes nothing.
template <class Send>
using send_slot_t = std::conditional_t<std::is_void_v<Send>, std::monostate, Send>;

// report_unraisable() hands an exception with nowhere to go to the fiber
// layer's unraisable hook.
inline void report_unraisable(std::exception_ptr error, std::string_view context) noexcept {
  ::greenlet::report_unraisable(std::move(error), context);
}

// generator_state_base is what every generator's state shares: its body
// greenlet, which points back here (greenlet_impl::generator) so that the
// static yield() finds the innermost running generator by walking parents.
// A generator dropped on another thread hands its state to its body (see
// release()): nothing here belongs to a thread's list.
struct generator_state_base {
  explicit generator_state_base(const std::type_info& t) noexcept : type(&t) {}
  generator_state_base(const generator_state_base&) = delete;
  generator_state_base& operator=(const generator_state_base&) = delete;
  // The derived state has dropped the body by now; this only covers a body
  // that is still set, so no greenlet is left pointing at freed memory.
  ~generator_state_base() {
    if (!body.empty()) body.impl()->generator = nullptr;
  }

  // innermost() is the generator whose body greenlet is the current one or
  // its nearest ancestor, or null. It walks raw parent pointers (each a
  // strong reference held by its child, and nothing runs meanwhile), so it
  // makes no handles and costs one step per ancestor: O(nesting depth),
  // whatever the number of live generators. `visited`, when given, counts
  // the greenlets looked at (a test hook; the default compiles away).
  static generator_state_base* innermost(std::size_t* visited = nullptr) noexcept {
    for (greenlet_impl* g = current_impl(); g != nullptr; g = g->parent) {
      if (visited != nullptr) ++*visited;
      if (g->generator != nullptr) return g->generator;
    }
    return nullptr;
  }

  const std::type_info* type;  // typeid of the derived state
  greenlet body;               // runs the body; empty once finished
  // resume_at is the greenlet that yielded on this generator's behalf when
  // it is not `body` (one of body's descendants, e.g. a nested generator
  // given this one's context); empty means resume `body`.
  greenlet resume_at;
  generator_status status = generator_status::unstarted;

 protected:
  // set_body() makes b this generator's body and marks it as such.
  void set_body(greenlet b) noexcept {
    body = std::move(b);
    body.impl()->generator = this;
  }
  // drop_body() lets the body go, unmarking it first: its greenlet may
  // outlive this generator (a handle kept by getcurrent() in the body), and
  // a yield from it, or from a greenlet below it, must not find this one.
  // The mark goes before the handle, so a body killed by the drop (with
  // GreenletExit) is no longer found while it unwinds, as it was not when
  // `body` was searched for.
  void drop_body() noexcept {
    if (!body.empty()) body.impl()->generator = nullptr;
    std::exchange(body, greenlet());
  }
};

template <class Yield, class Send, class Return>
class generator_state final : public generator_state_base {
 public:
  using received_type = received_t<Send>;
  using context = typename generator<Yield, Send, Return>::context;

  template <class F>
  generator_state(F&& fn, stack_options stack) : generator_state_base(typeid(generator_state)) {
    set_body(greenlet(body_run<std::decay_t<F>>(this, std::forward<F>(fn)), stack));
  }

  // ~generator_state() drops the body greenlet while the rest is intact: if
  // it is still suspended (close() failed), the fiber layer kills it with
  // GreenletExit and its unwinding may still touch this state.
  ~generator_state() { drop_body(); }

  // resume() runs the body until it yields or finishes: with `sent` stored
  // for the pending yield, or with `thrown` raised there. Throws what the
  // body throws, and generator_error for a running or unstarted generator.
  //
  // The common step (a suspended body resumed by the same greenlet as last
  // time, nothing thrown) is inlined into the caller: a switch made from an
  // out-of-line function costs a mispredicted return each way (see
  // switch_inline.hpp). Everything else goes to resume_slow().
  [[gnu::always_inline]] resume_result resume(std::optional<send_slot_t<Send>> sent, std::exception_ptr thrown) {
    return resume_with(&sent, std::move(thrown));
  }
  // Overload of resume() for sending nothing (next(), throw_(), close()):
  // no empty optional is made, because g++ 12 warns (falsely) that
  // destroying one inlined into the caller may read its payload.
  [[gnu::always_inline]] resume_result resume(std::nullopt_t, std::exception_ptr thrown) {
    return resume_with(nullptr, std::move(thrown));
  }

  // resume_with(sent, thrown) is resume(), with the value to send at `sent`
  // (null: none).
  [[gnu::always_inline]] resume_result resume_with(std::optional<send_slot_t<Send>>* sent, std::exception_ptr thrown) {
    if (status == generator_status::suspended && !thrown && resume_at.empty()) [[likely]] {
      greenlet_impl* here = current_impl();
      if (here != nullptr && body.impl()->parent == here) [[likely]] {
        store_sent(sent);
        status = generator_status::running;
        body.switch_();
        if (status == generator_status::suspended) [[likely]] {
          return resume_result::yielded;
        }
        return after_switch();
      }
    }
    return resume_slow(sent, std::move(thrown));
  }

  // store_sent(sent) keeps the value to send (null: none) for the pending yield.
  void store_sent(std::optional<send_slot_t<Send>>* sent) noexcept(
      std::is_nothrow_move_assignable_v<std::optional<send_slot_t<Send>>>) {
    if (sent != nullptr) {
      sent_ = std::move(*sent);
    } else {
      sent_.reset();
    }
  }

  // resume_slow() is resume() for every case: first start, a new resumer,
  // a throw, a finished or running generator.
  resume_result resume_slow(std::optional<send_slot_t<Send>>* sent, std::exception_ptr thrown) {
    check_thread();
    switch (status) {
      case generator_status::running:
        throw generator_error(generator_errc::already_executing, "generator already executing");
      case generator_status::finished:
        if (thrown) std::rethrow_exception(thrown);
        return resume_result::exhausted;
      case generator_status::unstarted:
        if (thrown) {
          // As in Python, throwing into an unstarted generator finishes it
          // without running it and raises the exception in the caller.
          finish_unstarted();
          std::rethrow_exception(thrown);
        }
        if (sent != nullptr && sent->has_value()) {
          throw generator_error(generator_errc::just_started, "can't send non-None value to a just-started generator");
        }
        break;
      case generator_status::suspended: break;
    }
    // The resumer becomes the body's parent, where yield and the end land.
    // Usually it is already: raw pointers are compared, and the body is
    // switched to through its own handle, so that a step of a generator
    // takes no reference counting (an atomic increment and decrement per
    // handle made, plus a reachability check per handle dropped).
    greenlet_impl* here = current_impl();
    if (here == nullptr || body.impl()->parent != here) body.set_parent(greenlet::getcurrent());
    store_sent(sent);
    const bool starting = status == generator_status::unstarted;
    status = generator_status::running;
    if (starting) {
      start();
    } else if (resume_at.empty()) {
      switch_to(body, std::move(thrown));
    } else {
      greenlet target = std::exchange(resume_at, greenlet());
      switch_to(target, std::move(thrown));
    }
    return after_switch();
  }

  // close() raises GeneratorExit at the pending yield, as Python's close().
  void close() {
    check_thread();
    switch (status) {
      case generator_status::unstarted: finish_unstarted(); return;
      case generator_status::finished: return;
      case generator_status::running:
        throw generator_error(generator_errc::already_executing, "generator already executing");
      case generator_status::suspended: break;
    }
    resume_result r;
    try {
      r = resume(std::nullopt, std::make_exception_ptr(GeneratorExit()));
    } catch (const GeneratorExit&) {
      return;
    }
    if (r == resume_result::yielded) {
      yielded_.reset();
      throw generator_error(generator_errc::ignored_generator_exit, "generator ignored GeneratorExit");
    }
  }

  // release() is the owner letting go: it closes a suspended generator and
  // deletes the state. A generator destroyed while it runs cannot be closed
  // and its body still uses the state, which is reported and leaked.
  //
  // On a thread other than the body's, the body can be neither closed nor
  // killed here (its stack is the owner thread's), so the state is handed to
  // the body: see abandon().
  void release() noexcept {
    if (status == generator_status::running) {
      report_unraisable(nullptr, "destroying a running generator; its state and stack are leaked");
      return;
    }
    if (!body.empty() && body.impl()->owner.load(std::memory_order_relaxed) != tls_switch_state) {
      abandon();
      return;
    }
    if (status == generator_status::suspended) {
      try {
        close();
      } catch (...) {
        report_unraisable(std::current_exception(), "closing a generator being destroyed");
      }
    }
    if (body.empty() || body.dead()) {  // finished (maybe killed at thread exit): nothing runs here again
      drop_body();
      delete this;
      return;
    }
    // The body is unstarted, or suspended because close() could not end it.
    // Dropping it frees or kills it now, unless something else holds its
    // greenlet (a generator made in the body has it as its body's parent):
    // then it is killed later, and unwinds into this state. Either way the
    // state goes with body_run, after the body's last use of it; a stranded
    // body (strand()) keeps it until a later kill ends it, if any.
    // A body close() could not end (it yielded again) is killed by the drop
    // below, with GreenletExit. The drop unmarks it first, so it has a
    // context of its own then: a copy of this one (what it sets there stays
    // its own).
    if (status == generator_status::suspended) body.impl()->context_vars.vars = ::greenlet::detail::current_context();
    abandoned_ = true;
    drop_body();
  }

  // yield() is the body's `yield v`: it hands v to the resumer and returns
  // the value sent back. Throws what is thrown in, and generator_error when
  // this generator is not the one running (e.g. yield after a kill).
  // Inlined into the body, as resume() into the resumer, for the same reason.
  [[gnu::always_inline]] received_type yield(Yield v) {
    if (status != generator_status::running) [[unlikely]] {
      refuse_yield();
    }
    yielded_.emplace(std::move(v));
    status = generator_status::suspended;
    if (current_impl() != body.impl()) resume_at = greenlet::getcurrent();
    // To the resumer (body's parent, set by resume()), without making a
    // handle for it: see resume().
    (void)switch_inline_empty(body.impl()->parent);
    if constexpr (!std::is_void_v<Send>) {
      std::optional<Send> sent = std::move(sent_);
      sent_.reset();
      return sent;
    }
  }

  // refuse_yield() throws for a yield while this generator is not running.
  // A body being killed (its generator dropped or its thread exiting) that
  // yields is told once, with an exception it may let end it; if it
  // swallows that too, it is stranded. By then the drop has let go of
  // `body`, so the greenlet being killed is what says it is the body.
  [[noreturn, gnu::noinline, gnu::cold]] void refuse_yield() {
    const greenlet_impl* here = current_impl();
    if (status == generator_status::suspended && here != nullptr && here->being_killed) {
      if (yields_while_killed_++ > 0) strand();
      throw generator_error(generator_errc::yield_outside_generator,
                            "yield in a generator body being destroyed: on GreenletExit it must return or throw");
    }
    throw generator_error(generator_errc::yield_outside_generator,
                          "yield outside a generator: this generator is not running");
  }

  // yield_from(sub) is PEP 380's `yield from sub`: it yields what sub yields,
  // passes sends and throws on to it, closes it on GeneratorExit, and returns
  // what it returns. A sent value is dropped for a sub taking nothing (Send =
  // void), as a Python generator ignores what its yield returns.
  template <class Y2, class S2, class R2>
  R2 yield_from(generator_state<Y2, S2, R2>& sub) {
    static_assert(std::is_convertible_v<Y2, Yield>,
                  "yield_from(): the sub-generator's Yield must convert to this one's");
    static_assert(std::is_void_v<Send> || std::is_void_v<S2> || std::is_convertible_v<Send, S2>,
                  "yield_from(): this generator's Send must convert to the sub-generator's");
    resume_result r = sub.resume(std::nullopt, nullptr);
    while (r == resume_result::yielded) {
      std::optional<send_slot_t<S2>> to_sub;
      std::exception_ptr thrown;
      try {
        Yield y(sub.take_yielded());
        if constexpr (std::is_void_v<Send>) {
          yield(std::move(y));
        } else {
          std::optional<Send> got = yield(std::move(y));
          if constexpr (!std::is_void_v<S2>) {
            if (got) to_sub.emplace(std::move(*got));
          }
        }
      } catch (const GeneratorExit&) {
        sub.close();
        throw;
      } catch (const GreenletExit&) {
        sub.close();
        throw;
      } catch (...) {
        thrown = std::current_exception();
      }
      r = sub.resume(std::move(to_sub), std::move(thrown));
    }
    return sub.result_for_delegator(r);
  }

  // take_yielded() moves the yielded value out.
  Yield take_yielded() {
    Yield v(std::move(*yielded_));
    yielded_.reset();
    return v;
  }
  Yield& yielded() { return *yielded_; }
  void drop_yielded() noexcept { yielded_.reset(); }

  // stop() is the StopIteration for a resume that did not yield.
  StopIteration stop(resume_result r) const {
    if (r == resume_result::exhausted) {
      return StopIteration(generator_errc::already_finished, "StopIteration: generator already finished");
    }
    return StopIteration(return_value_);
  }

  bool returned() const noexcept { return returned_; }

  // return_value() is what the body returned; generator_error otherwise.
  template <class R = Return>
  R& return_value() {
    if (!return_value_) {
      throw generator_error(generator_errc::no_return_value,
                            "return_value(): the generator has not returned; run it to the end");
    }
    return const_cast<::greenlet::value&>(*return_value_).get<R>();
  }

  // result_for_delegator(r) is what `yield from` evaluates to: a copy of the
  // return value (a move for a move-only type). A sub that was finished when
  // the delegation resumed it (r == exhausted: before it began, or by
  // another caller meanwhile), or that was closed, has none for it: Python's
  // `yield from` gives None, here an empty Return if it is a std::optional,
  // else generator_error. (It returned the earlier run's value.)
  Return result_for_delegator(resume_result r) {
    if constexpr (!std::is_void_v<Return>) {
      if (r == resume_result::exhausted || !return_value_) {
        if constexpr (is_optional_v<Return>) {
          return Return{};
        } else {
          throw generator_error(generator_errc::no_return_value,
                                "yield_from(): the sub-generator had already finished (or was closed), so it has "
                                "no return value for this delegation (Python's would be None); make its Return a "
                                "std::optional to get nullopt");
        }
      }
      if constexpr (std::is_copy_constructible_v<Return>) {
        return return_value();
      } else {
        return std::move(return_value());
      }
    }
  }

 private:
  // body_run is the body greenlet's run function. It owns the state once the
  // generator is abandoned: whichever thread disposes of the body greenlet
  // (the owner, after killing it or dropping it unstarted; any thread once
  // the owner has exited) then deletes the state, after the body's last use.
  template <class F>
  struct body_run {
    body_run(generator_state* s, F&& f) : self(s), fn(std::move(f)) {}
    body_run(generator_state* s, const F& f) : self(s), fn(f) {}
    body_run(body_run&& o) noexcept(std::is_nothrow_move_constructible_v<F>)
        : self(std::exchange(o.self, nullptr)), fn(std::move(o.fn)) {}
    body_run(const body_run&) = delete;
    body_run& operator=(const body_run&) = delete;
    body_run& operator=(body_run&&) = delete;
    ~body_run() {
      if (self != nullptr && self->abandoned_) delete self;
    }
    void operator()() { self->run(fn); }

    generator_state* self;
    F fn;
  };

  // abandon() is release() on a foreign thread. It drops the state's handles
  // to its greenlets, which the fiber layer mails to their thread: there a
  // suspended body is killed with GreenletExit (its destructors run on their
  // own thread) and an unstarted one is freed; body_run then deletes the
  // state. Nothing of the state is touched here after the handles go; the
  // body's mark (greenlet_impl::generator) stays, as the state lives as long
  // as the body can run, and is cleared on the body's thread (run()).
  void abandon() noexcept {
    // Published to the owner by the mailing, which takes a mutex.
    abandoned_ = true;
    greenlet b(std::move(body));
    greenlet r(std::move(resume_at));
  }

  // strand() is a yield from a body being killed that swallowed its kill
  // (GreenletExit, after close()'s GeneratorExit) and the error its last
  // yield raised, typically in a catch of std::exception inside a loop.
  // Throwing again would loop for ever, so the body switches back to its
  // killer and stays suspended, as a greenlet that swallows its kill does;
  // the fiber layer reports its stack leaked, and the state, which that
  // stack uses, is leaked with it (release()). Python drops such a frame
  // without running it; a C++ stack cannot be dropped without unwinding.
  // Returns only by an exception: a later kill (at thread exit) resumes it
  // with GreenletExit.
  [[noreturn]] void strand() {
    if (!stranded_) {
      stranded_ = true;
      report_unraisable(nullptr,
                        "a generator body caught GreenletExit and kept yielding; it "
                        "stays suspended, and its stack and state are leaked. Rethrow "
                        "greenlet::GreenletExit and greenlet::GeneratorExit before catching std::exception");
    }
    for (;;) (void)switch_inline_empty(current_impl()->parent);  // the killer
  }

  template <class F>
  void run(F& fn) noexcept {
    try {
      if constexpr (std::is_void_v<Return>) {
        call(fn, context_);
      } else {
        auto v = std::make_shared<::greenlet::value>();
        v->template emplace<Return>(call(fn, context_));
        return_value_ = std::move(v);
      }
      returned_ = true;
    } catch (const StopIteration&) {
      error_ = std::make_exception_ptr(
          generator_error(generator_errc::raised_stop_iteration, "generator raised StopIteration"));
    } catch (...) {
      error_ = std::current_exception();
    }
    status = generator_status::finished;
    // The body is done: unmark it here, on its own thread. An abandoned
    // generator (see abandon()) is deleted as this run function goes, and
    // a greenlet made in the body, whose parent chain keeps the dead body,
    // must not find it by the mark afterwards.
    current_impl()->generator = nullptr;
  }

  template <class F>
  static decltype(auto) call(F& fn, context& ctx) {
    if constexpr (std::is_invocable_v<F&, context&>) {
      return fn(ctx);
    } else {
      static_assert(std::is_invocable_v<F&>, "a generator's body takes generator<...>::context& or nothing");
      return fn();
    }
  }

  // start() is the first switch to the body. If that fails before the body
  // runs (its stack cannot be mapped: errc::stack_exhausted), the generator
  // is left unstarted, as it was, and the error goes to the resumer: a later
  // next() tries again, close() and the destructor finish it without
  // running it. It was left `running` for ever, refusing both.
  void start() {
    try {
      body.switch_();
    } catch (...) {
      if (!body.started()) {
        sent_.reset();
        status = generator_status::unstarted;
      }
      throw;
    }
  }

  // check_thread() refuses a generator with a body (not finished) used on a
  // thread other than its own: its stack is that thread's. (It failed deep
  // in the fiber layer, with "parent cannot be on a different thread".)
  void check_thread() const {
    if (!body.empty() && body.impl()->owner.load(std::memory_order_relaxed) != tls_switch_state) [[unlikely]] {
      throw ::greenlet::error(errc::wrong_thread,
                              "generator used on a thread other than the one that made it: resume and close a "
                              "generator on its own thread (destroying it is fine on any thread)");
    }
  }

  static void switch_to(greenlet& target, std::exception_ptr thrown) {
    if (thrown) {
      target.throw_(std::move(thrown));
    } else {
      target.switch_();
    }
  }

  resume_result after_switch() {
    switch (status) {
      case generator_status::suspended: return resume_result::yielded;
      case generator_status::finished: {
        drop_body();
        resume_at = greenlet();
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
        return resume_result::returned;
      }
      case generator_status::unstarted:
      case generator_status::running: break;
    }
    throw generator_error(generator_errc::foreign_switch, "generator body switched away without yielding or returning");
  }

  void finish_unstarted() noexcept {
    status = generator_status::finished;
    drop_body();
  }

  std::optional<Yield> yielded_;
  std::optional<send_slot_t<Send>> sent_;
  std::shared_ptr<const ::greenlet::value> return_value_;
  std::exception_ptr error_;
  bool returned_ = false;
  // abandoned_ is set when the generator was dropped with its body not
  // finished (on a foreign thread, or with the body unstarted or suspended):
  // body_run deletes the state then. Written before the body's handle is
  // dropped (mailed to its thread) and read there after.
  bool abandoned_ = false;
  // yields_while_killed_ counts the body's yields while being killed; from
  // the second on it is stranded (strand(), which sets stranded_).
  int yields_while_killed_ = 0;
  bool stranded_ = false;
  // The body's context lives here, not on the body's stack: nested
  // generators and greenlets keep references to it (gr1(n, outer) in the
  // tests), and with stack copying (stack_mode::shared) a suspended body's
  // stack is not at its addresses.
  context context_{this};
};

}  // namespace detail
}  // namespace greenlet

#pragma GCC visibility pop
