// generator/generator.hpp: generator<Yield, Send, Return>, a Python generator
// (PEP 342 send/throw/close, PEP 380 yield from) whose body runs on its own
// greenlet, so it may yield from any depth of ordinary calls.
#pragma once

#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

#include "greenlet/detail/exception_object_arg.hpp"
#include "greenlet/fiber/greenlet.hpp"
#include "greenlet/generator/detail/generator_state.hpp"
#include "greenlet/generator/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

// generator<Yield, Send, Return> runs a body that yields Yield values, may be
// sent Send values (void: it takes none) and returns a Return (void: none),
// as Python's Generator[Yield, Send, Return]:
//
//   greenlet::generator<int, int, std::string> g([](auto& co) {
//     std::optional<int> got = co.yield(1);  // nullopt after next()
//     co.yield(*got * 2);
//     return std::string("done");
//   });
//   g.next();   // 1
//   g.send(21); // 42
//   g.next();   // throws StopIteration; e.value().get<std::string>() == "done"
//
// The body is a callable taking generator::context& (or nothing, using the
// static yield()). It starts on the first next()/send(), runs on a greenlet of
// its own whose parent is whoever resumed it, and comes back at each yield.
//
// A generator is a move-only owner, like a Python generator with one
// reference. Destroying an unfinished one closes it: GeneratorExit is raised
// at its yield and its stack unwinds. Exceptions leaving the body reach the
// resumer; StopIteration leaving it becomes generator_error
// (raised_stop_iteration), as in PEP 479.
//
// Context variables (context_var): as a Python generator frame, the body has
// no context of its own. It reads and sets the context of whoever resumes it
// (next, send, throw_, close, the close at destruction; a task's context when
// resumed in a task), and the resumer sees what the body set once the body
// yields or ends. Do not yield inside context::run(): the resumer would get
// that context meanwhile.
//
// A body cannot await (asyncio's sleep(), await(), ...), even in a task: it
// runs on a greenlet of its own, and only the task's greenlet may suspend
// the task (RuntimeError, not_in_task). Use asyncio::async_generator for a
// body that awaits.
//
// Thread rules: a generator belongs to the thread that made it, and is used
// there: resuming or closing it on another thread throws greenlet::error
// (errc::wrong_thread) and changes nothing. It may be destroyed on any thread.
template <class Yield, class Send = void, class Return = void>
class generator {
  static_assert(std::is_object_v<Yield> && !std::is_array_v<Yield>,
                "generator<Yield>: Yield must be an object type (yield pointers for references)");
  static_assert(std::is_void_v<Send> || (std::is_object_v<Send> && !std::is_array_v<Send>),
                "generator<Yield, Send>: Send must be void or an object type");
  static_assert(std::is_void_v<Return> || (std::is_object_v<Return> && !std::is_array_v<Return>),
                "generator<Yield, Send, Return>: Return must be void or an object type");

  using state = detail::generator_state<Yield, Send, Return>;
  template <class, class, class>
  friend class generator;

 public:
  // yield_type is Yield, the type of the values the body yields. A type alias: nothing to throw, any thread.
  using yield_type = Yield;
  // send_type is Send, the type send() carries into the body (void: none). A type alias: nothing to throw, any thread.
  using send_type = Send;
  // return_type is Return, the type the body returns (void: none). A type alias: nothing to throw, any thread.
  using return_type = Return;
  // received_type is what yield() returns in the body: void for Send = void,
  // otherwise std::optional<Send>, nullopt when resumed by next() (Python's
  // send(None)) and after a throw_(). A type alias: nothing to throw, any thread.
  using received_type = detail::received_t<Send>;

  // context is the body's handle on its generator. It lives with the
  // generator's state (not on the body's stack), so a reference to it may be
  // passed down to any function the body calls and to nested generators and
  // greenlets, in either stack mode. Used only on the generator's thread,
  // from inside its body.
  class context {
   public:
    // yield(v) suspends the generator, handing v to the resumer, and returns
    // what the next send() carries. Raises what throw_() or close() throws
    // in. May be called from a greenlet started inside the body, or from a
    // nested generator's body: it then suspends those too, and the next
    // resume continues there. Throws generator_error (yield_outside_generator)
    // when this generator is not running, GeneratorExit when the generator
    // is closed meanwhile. Inside the body only.
    [[gnu::always_inline]] received_type yield(Yield v) { return state_->yield(std::move(v)); }

    // yield_from(sub) is `yield from sub` (PEP 380): it yields everything sub
    // yields, sends and throws go on to sub, GeneratorExit closes sub, and it
    // returns sub's return value. A value sent while delegating to a sub that
    // takes none (Send = void) is dropped. sub must not be running. A sub
    // already finished (or closed) has no return value for it: an empty
    // optional if R2 is a std::optional, else generator_error (Python gives
    // None). Throws what sub's body throws (other than its StopIteration),
    // generator_error if sub is running or empty, GeneratorExit if closed
    // meanwhile. Inside the body only.
    template <class Y2, class S2, class R2>
    R2 yield_from(generator<Y2, S2, R2>& sub) {
      return state_->yield_from(*sub.checked());
    }
    // Overload of yield_from(sub) for a temporary sub generator, which is destroyed (closed if
    // unfinished) when the delegation ends. Throws as yield_from(sub&); owning thread only.
    template <class Y2, class S2, class R2>
    R2 yield_from(generator<Y2, S2, R2>&& sub) {
      return state_->yield_from(*sub.checked());
    }

   private:
    friend state;
    explicit context(state* s) noexcept : state_(s) {}
    state* state_;
  };

  // iterator is an input iterator over what the generator yields; range-for
  // resumes it with next() until it returns (StopIteration is not thrown)
  // and lets the body's exceptions through. Owning thread only.
  class iterator {
   public:
    // iterator_concept marks iterator as a C++20 input iterator. A type alias: nothing to throw, any thread.
    using iterator_concept = std::input_iterator_tag;
    // value_type is Yield. A type alias: nothing to throw, any thread.
    using value_type = Yield;
    // difference_type is std::ptrdiff_t, as input iterators require.
    using difference_type = std::ptrdiff_t;

    iterator() noexcept = default;
    // operator*() is the value last yielded, held by the generator until the next step. Throws
    // nothing itself; must not be called at the end. Owning thread only.
    Yield& operator*() const { return state_->yielded(); }
    // operator->() points at the value last yielded, as operator*(). Owning thread only.
    Yield* operator->() const { return &state_->yielded(); }
    // operator++() drops the current value and resumes the body to its next yield (as next()); the
    // iterator reaches the end when the body returns. Throws what the body throws, and generator_error
    // if the generator is running. Owning thread only.
    iterator& operator++() {
      state_->drop_yielded();
      advance();
      return *this;
    }
    // operator++(int) is ++it for range-for and input-iterator use; returns nothing. Throws as ++it.
    void operator++(int) { ++*this; }
    // operator==(it, std::default_sentinel) is true once the body has returned (or finished). Throws
    // nothing.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.state_ == nullptr; }

   private:
    friend generator;
    explicit iterator(state* s) : state_(s) { advance(); }
    void advance() {
      if (state_->resume(std::nullopt, nullptr) != detail::resume_result::yielded) state_ = nullptr;
    }
    state* state_ = nullptr;
  };

  // generator() is empty: assign one before use; operations throw
  // generator_error (empty_generator) on it.
  generator() noexcept = default;

  // generator(body, stack) makes an unstarted generator: body runs on the
  // first next() or send(). body takes context& or nothing; its result
  // converts to Return. Throws std::bad_alloc and what moving body throws
  // (the stack is mapped on the first resume). Owning thread: the caller's.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, generator>>>
  explicit generator(F&& body, stack_options stack = {}) : state_(new state(std::forward<F>(body), stack)) {}

  // generator(other) takes over other's generator, leaving other empty. Throws nothing. Moving
  // between threads does not change the thread the generator belongs to.
  generator(generator&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  // operator=(other) takes over other's generator; the one held before is destroyed (closed if
  // unfinished, see ~generator()). Throws nothing; owning thread only.
  generator& operator=(generator&& other) noexcept {
    generator(std::move(other)).swap(*this);
    return *this;
  }
  generator(const generator&) = delete;
  generator& operator=(const generator&) = delete;
  // ~generator() closes an unfinished generator; if that throws (e.g. it
  // ignored GeneratorExit) the exception goes to the unraisable hook.
  ~generator() {
    if (state_ != nullptr) state_->release();
  }
  // swap(other) exchanges the two generators held. Throws nothing; owning thread only.
  void swap(generator& other) noexcept { std::swap(state_, other.state_); }

  // operator bool() is true unless the generator is empty (default-made or moved from). Throws
  // nothing.
  explicit operator bool() const noexcept { return state_ != nullptr; }

  // next() runs the body to its next yield and returns the value. Throws
  // StopIteration when it returns instead (or had finished), generator_error
  // when it is running or empty, and whatever the body throws. The first
  // next() throws greenlet::error (stack_exhausted) if the body's stack
  // cannot be mapped; the generator then stays unstarted (a later next()
  // tries again; close() finishes it). Owning thread only.
  [[gnu::always_inline]] Yield next() {
    state* s = checked();
    return take(s, s->resume(std::nullopt, nullptr));
  }

  // send() is next(); send(v) resumes the pending yield with v, Python's
  // gen.send(v). Sending std::nullopt is Python's send(None). Throws as
  // next(), and generator_error (just_started) for a value sent to an
  // unstarted generator. Owning thread only.
  Yield send() { return next(); }
  // Overload of send(): send(v) resumes the pending yield with v (std::nullopt: Python's send(None)).
  // Throws as next(), and generator_error (just_started) for a value sent to an unstarted generator.
  // Owning thread only.
  template <class S = Send>
  requires(!std::is_void_v<S>) Yield send(std::type_identity_t<std::optional<S>> v) {
    state* s = checked();
    return take(s, s->resume(std::move(v), nullptr));
  }

  // throw_(e) raises e at the pending yield and returns the next value
  // yielded. An unstarted or finished generator raises e here at once (an
  // unstarted one is then finished). Throws as next(), and generator_error (null_exception) for a
  // null e (Python's gen.throw(None) is a TypeError). Owning thread only.
  Yield throw_(std::exception_ptr e) {
    state* s = checked();
    if (!e) throw generator_error(generator_errc::null_exception, "throw_() got a null exception_ptr");
    return take(s, s->resume(std::nullopt, std::move(e)));
  }
  // Overload of throw_(std::exception_ptr): throw_(e) raises a copy of exception object e at the
  // pending yield. Throws as throw_(std::exception_ptr); owning thread only.
  template <::greenlet::detail::exception_object_arg E>
  Yield throw_(E&& e) {
    return throw_(std::make_exception_ptr(std::forward<E>(e)));
  }

  // close() raises GeneratorExit at the pending yield and lets the body
  // unwind. Nothing happens to a finished generator; an unstarted one is
  // finished without running. Throws generator_error
  // (ignored_generator_exit) if the body yields again, and what it throws
  // other than GeneratorExit. Owning thread only.
  void close() { checked()->close(); }

  // started(), running(), suspended() and finished() are its state: Python's
  // gi_frame.f_lasti != -1, gi_running, gi_suspended, and gi_frame is None.
  // Each throws generator_error (empty_generator) on an empty generator;
  // owning thread only.
  bool started() const { return checked()->status != detail::generator_status::unstarted; }
  // running() is true while the body executes (resumed, not yet yielded). Throws generator_error
  // (empty_generator) on an empty generator; owning thread only.
  bool running() const { return checked()->status == detail::generator_status::running; }
  // suspended() is true while the body is paused at a yield. Throws generator_error
  // (empty_generator) on an empty generator; owning thread only.
  bool suspended() const { return checked()->status == detail::generator_status::suspended; }
  // finished() is true once the body returned, threw or was closed. Throws generator_error
  // (empty_generator) on an empty generator; owning thread only.
  bool finished() const { return checked()->status == detail::generator_status::finished; }

  // get_stack(limit) is where the body is, Python's traceback.extract_stack(g.gi_frame): its
  // greenlet's get_stack(limit) (fiber/stack_trace.hpp), oldest frame first, from the body down to
  // the yield it is paused at (running: down to the call). Empty before the first next() and once
  // finished (gi_frame is None). Throws generator_error (empty_generator) on an empty generator,
  // greenlet::error (wrong_thread) from another thread while the owning one runs; std::bad_alloc.
  ::greenlet::stack_summary get_stack(std::size_t limit = ::greenlet::no_frame_limit) const {
    const auto* self_state = checked();
    return self_state->body.empty() ? ::greenlet::stack_summary() : self_state->body.get_stack(limit);
  }

  // returned() is true once the body has returned (not thrown, not closed). Throws generator_error
  // (empty_generator) on an empty generator; owning thread only.
  bool returned() const { return checked()->returned(); }

  // return_value() is what the body returned, the value its StopIteration
  // carried. Throws generator_error (no_return_value) before it returned.
  // Owning thread only.
  template <class R = Return>
  requires(!std::is_void_v<R>) R& return_value() { return checked()->return_value(); }

  // begin() resumes the generator (as next()) for a range-for; end() is the
  // sentinel reached when it returns. begin() throws as next() (but not
  // StopIteration); owning thread only.
  iterator begin() { return iterator(checked()); }
  // end() is the std::default_sentinel_t that begin()'s iterator equals once the body returns.
  // Throws nothing.
  std::default_sentinel_t end() const noexcept { return {}; }

  // yield(v) is the free-standing `yield`, for bodies that take no context:
  // generator<int>::yield(v) yields from the innermost generator running on
  // this greenlet or its ancestors. Throws generator_error
  // (yield_outside_generator) when there is none, or when the innermost one is
  // not a generator<Yield, Send, Return>; GeneratorExit when closed meanwhile.
  // Inside the body only.
  [[gnu::always_inline]] static received_type yield(Yield v) {
    detail::generator_state_base* s = detail::generator_state_base::innermost();
    if (s == nullptr || *s->type != typeid(state)) [[unlikely]] {
      refuse_static_yield(s);
    }
    return static_cast<state*>(s)->yield(std::move(v));
  }

 private:
  // refuse_static_yield(s) throws for a static yield() that found no
  // generator of this type (s is the innermost running one, or null).
  [[noreturn, gnu::noinline, gnu::cold]] static void refuse_static_yield(const detail::generator_state_base* s) {
    if (s == nullptr) {
      throw generator_error(generator_errc::yield_outside_generator,
                            "yield outside a generator: no generator is running here");
    }
    throw generator_error(generator_errc::yield_outside_generator,
                          "yield of the wrong type: the innermost running generator is "
                          "not this generator<Yield, Send, Return>");
  }

  state* checked() const {
    if (state_ == nullptr) {
      throw generator_error(generator_errc::empty_generator, "use of an empty generator");
    }
    return state_;
  }
  // take() is the yielded value, or StopIteration; it uses s, not state_,
  // as the body may have destroyed this generator meanwhile.
  static Yield take(state* s, detail::resume_result r) {
    if (r != detail::resume_result::yielded) throw s->stop(r);
    return s->take_yielded();
  }

  state* state_ = nullptr;
};

}  // namespace greenlet

#pragma GCC visibility pop
