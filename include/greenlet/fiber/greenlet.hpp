// fiber/greenlet.hpp: greenlet, a stackful coroutine switched explicitly, as in
// Python's greenlet module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/detail/exception_object_arg.hpp"
#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/detail/stack_host.hpp"
#include "greenlet/detail/switch_inline.hpp"
#include "greenlet/errors.hpp"
#include "greenlet/fiber/stack_trace.hpp"
#include "greenlet/fiber/value.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

// greenlet is a shared, reference-counted handle to a fiber, like a Python
// greenlet object: copies refer to the same fiber. Each thread has one main
// greenlet (the thread's own stack), made on first use.
//
// A greenlet runs `run` on its own stack on the first switch_() to it. When
// run returns, its result goes to the parent's pending switch_(); an
// exception escaping run is rethrown there instead (GreenletExit comes back
// as a value). When the last handle to a started, unfinished greenlet goes
// away, GreenletExit is thrown into it so its stack unwinds and every
// destructor on it runs.
//
// Thread rules: a greenlet belongs to the thread that made it. Handles may be
// copied and dropped on any thread; switch_, throw_, parent, set_parent,
// gr_context and set_gr_context on another thread's greenlet throw
// greenlet::error (errc::wrong_thread) while that thread runs: it changes
// them without synchronization. Once it has exited they are allowed again.
class greenlet {
 public:
  // An empty handle; assign a greenlet to it before use. Operations other
  // than comparison throw greenlet::error on it.
  greenlet() noexcept {}  // not "= default": usable in the default argument below (clang)

  // greenlet(run, parent, stack) makes an unstarted greenlet. parent defaults
  // to getcurrent(). run may take greenlet::value (the raw switch_()
  // arguments), nothing, or typed parameters matched against the arguments of
  // the first switch_(); its result (or value() for void) goes to the parent.
  // A null function pointer or an empty std::function as run throws greenlet::error
  // (bad_arguments) here, not at the first switch.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, greenlet>>>
  explicit greenlet(F&& run, const greenlet& parent = greenlet(), stack_options stack = {}) {
    check_callable(run);
    auto* self = new detail::greenlet_with_run<std::decay_t<F>>(std::forward<F>(run));
    impl_ = self;
    detail::adopt_new(self, parent.impl_, stack);
  }
  // Overload of greenlet(run, parent, stack): greenlet(run, stack) makes an unstarted greenlet whose
  // parent is getcurrent(), with the given stack options. Throws as that constructor.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, greenlet>>>
  greenlet(F&& run, stack_options stack) : greenlet(std::forward<F>(run), greenlet(), stack) {}

  // greenlet(other) is another handle to other's fiber (a reference count increment). Throws
  // nothing; any thread, as handles may be copied anywhere.
  greenlet(const greenlet& other) noexcept : impl_(other.impl_) {
    if (impl_ != nullptr) {
      detail::retain(impl_);
      detail::place(impl_, this);
    }
  }
  // greenlet(other) takes over other's reference, leaving other empty. Throws nothing; any thread.
  greenlet(greenlet&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {
    if (impl_ != nullptr) {
      detail::unplace(impl_, &other);
      detail::place(impl_, this);
    }
  }
  // operator=(other) makes this a handle to other's fiber, dropping the previous one (which may kill
  // it, see the class comment). Throws nothing itself; any thread.
  greenlet& operator=(const greenlet& other) noexcept {
    greenlet(other).swap(*this);
    return *this;
  }
  // operator=(other) takes over other's reference, leaving other empty and dropping the previous
  // one. Throws nothing itself; any thread.
  greenlet& operator=(greenlet&& other) noexcept {
    greenlet{std::move(other)}.swap(*this);
    return *this;
  }
  ~greenlet() {
    if (impl_ != nullptr) detail::drop_handle(impl_, this);
  }
  // swap(other) exchanges the fibers the two handles refer to. Throws nothing; any thread, but not
  // concurrently with other uses of the same two handles.
  void swap(greenlet& other) noexcept {
    if (impl_ != nullptr) detail::unplace(impl_, this);
    if (other.impl_ != nullptr) detail::unplace(other.impl_, &other);
    std::swap(impl_, other.impl_);
    if (impl_ != nullptr) detail::place(impl_, this);
    if (other.impl_ != nullptr) detail::place(other.impl_, &other);
  }

  // getcurrent() is the greenlet running on this thread (its main greenlet
  // when no other runs).
  static greenlet getcurrent();

  // switch_(args...) transfers control to this greenlet. The first switch
  // starts run(args...); later ones make the switch_() it is suspended in
  // return value::of(args...). A dead greenlet passes the switch on to its
  // nearest live ancestor. Returns what is switched back, or rethrows an
  // exception thrown back. Throws greenlet::error across threads.
  template <class... Args>
  [[gnu::always_inline]] value switch_(Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      return detail::switch_inline_empty(checked());
    } else {
      return switch_value(value::of(std::forward<Args>(args)...));
    }
  }

  // switch_value(v) is switch_() with the arguments already packed.
  [[gnu::always_inline]] value switch_value(value args) { return detail::switch_inline(checked(), std::move(args)); }

  // throw_(e) switches to this greenlet and raises e there at once. An
  // unstarted greenlet dies without running and e goes to its parent.
  // throw_() with no argument raises GreenletExit, which kills the greenlet
  // and comes back as a value.
  value throw_();
  // Overload of throw_(): throw_(e) raises e in this greenlet (GreenletExit if e is null). Returns
  // what is switched back. Throws greenlet::error if it is empty or belongs to another thread, and
  // rethrows an exception thrown back.
  value throw_(std::exception_ptr e);
  // Overload of throw_(): throw_(e) raises a copy of exception object e, as throw_(std::exception_ptr).
  template <::greenlet::detail::exception_object_arg E>
  value throw_(E&& e) {
    return throw_(std::make_exception_ptr(std::forward<E>(e)));
  }

  // dead() is true once run has finished (or it was killed unstarted).
  // Inline, as started() and bool: the event loop asks them on every step.
  bool dead() const { return checked()->state == detail::run_state::dead; }
  // started() is true once the greenlet has been switched to.
  bool started() const { return checked()->state != detail::run_state::unstarted; }
  // An active greenlet is started and not dead, as Python's bool(g).
  explicit operator bool() const { return checked()->state == detail::run_state::active; }
  // is_main() is true for a thread's main greenlet.
  bool is_main() const;

  // parent() is where run's result goes; empty for a main greenlet. Throws greenlet::error
  // (errc::wrong_thread) for a greenlet of another thread that still runs (Python allows
  // g.parent anywhere, under its GIL; here that thread may re-parent it and free the old parent
  // meanwhile); empty_handle on an empty handle.
  greenlet parent() const;
  // set_parent(p) re-parents. Throws greenlet::error for a cycle, a parent in
  // another thread, or on a main greenlet. Parent chains never form a cycle:
  // while a greenlet is killed (its last handle went away) its parent is the
  // killer; when the kill returns its own parent is put back, unless meanwhile
  // it became that parent's ancestor (a.set_parent(g) from g's GreenletExit
  // handler): then it keeps the killer as its parent.
  void set_parent(const greenlet& parent);

  // id() is a number unique in the process; name() is an optional label
  // shown in reports (stack overflow, leak checks, debugger).
  std::uint64_t id() const;
  // name() is the label set by set_name(), empty by default. Throws greenlet::error on an empty
  // handle. Not synchronized: read it on the owning thread, or while no thread calls set_name().
  const std::string& name() const;
  // set_name(name) sets the label shown in reports. Throws greenlet::error on an empty handle. Not
  // synchronized: call it on the owning thread.
  void set_name(std::string name);
  // stack_size() is the usable size of its stack (0 for a main greenlet).
  std::size_t stack_size() const;

  // gr_context() is a copy of this greenlet's context (greenlet's gr_context attribute): its
  // values, in a context object of its own (running it never conflicts with the greenlet's; see
  // fiber/context.hpp). Throws greenlet::error on an empty handle, and errc::wrong_thread for a
  // greenlet of another thread that still runs (Python's ValueError "running in a different
  // thread" is for one running there; here one suspended there may start running any time).
  context gr_context() const;
  // set_gr_context(ctx) makes this greenlet run in a copy of ctx: ctx's values, in a context of
  // its own (tokens of its previous context are refused by reset()). Throws greenlet::error on an
  // empty handle, and errc::wrong_thread for a greenlet of another thread that still runs.
  void set_gr_context(const context& ctx);

  // get_stack(limit) is its call stack (fiber/stack_trace.hpp: Python's
  // traceback.extract_stack(g.gr_frame)), oldest frame first, at most the newest `limit` frames. It
  // starts at the greenlet's run function (a main greenlet's, at the thread's first function) and
  // ends, for the running greenlet, at the call of get_stack(); for a suspended one, at the switch
  // it waits in, read without resuming it: it does not run, and nothing it can observe changes.
  // Empty for an unstarted or dead greenlet (Python's gr_frame is None), and for a suspended one
  // whose stack has less than stack_read_room bytes left to read it with. Throws greenlet::error on
  // an empty handle and (errc::wrong_thread) for a greenlet of another thread that still runs;
  // std::bad_alloc.
  stack_summary get_stack(std::size_t limit = no_frame_limit) const;
  // The free stack a suspended greenlet needs for get_stack() to read it (the unwinder runs there).
  static constexpr std::size_t stack_read_room = 8 * 1024;

  // empty() is true for a handle that refers to no greenlet (default-made or moved from). Throws
  // nothing; any thread.
  bool empty() const noexcept { return impl_ == nullptr; }
  // operator==(a, b) is true when both handles refer to the same greenlet (or both are empty).
  // Throws nothing; any thread.
  friend bool operator==(const greenlet& a, const greenlet& b) noexcept { return a.impl_ == b.impl_; }

  // Internal: adopts one reference to impl.
  static greenlet from_impl(detail::greenlet_impl* impl) noexcept { return greenlet(impl); }
  // Internal (the event loop's tasks): hosted_on_stack(run, h, room, stack) is greenlet(run,
  // greenlet(), stack) with its object built in `room`, hosted_object_size<F>() bytes of host h's
  // memory, and h's stack to run on (detail/stack_host.hpp). Throws as that constructor.
  template <class F>
  static constexpr std::size_t hosted_object_size() noexcept {
    return sizeof(detail::greenlet_with_run<std::decay_t<F>>);
  }
  template <class F>
  static greenlet hosted_on_stack(F&& run, detail::stack_host* h, void* room, stack_options stack) {
    using object = detail::greenlet_with_run<std::decay_t<F>>;
    static_assert(alignof(object) <= 64, "a hosted greenlet's room is 64-aligned");
    check_callable(run);
    auto* self = ::new (room) object(std::forward<F>(run));
    detail::host_greenlet(self, h);  // from here its dispose() releases h, as a failed adopt_new() does
    detail::adopt_new(self, nullptr, stack);
    return greenlet(static_cast<detail::greenlet_impl*>(self));
  }
  // Internal: impl() is the fiber's implementation object, null for an empty handle. Throws
  // nothing; any thread.
  detail::greenlet_impl* impl() const noexcept { return impl_; }
  // Internal: gives up this handle's reference without releasing it.
  detail::greenlet_impl* detach() noexcept {
    if (impl_ != nullptr) detail::unplace(impl_, this);
    return std::exchange(impl_, nullptr);
  }

 private:
  explicit greenlet(detail::greenlet_impl* adopted) noexcept : impl_(adopted) { detail::place(impl_, this); }
  detail::greenlet_impl* checked() const {
    if (impl_ == nullptr) [[unlikely]] {
      throw_empty();
    }
    return impl_;
  }
  [[noreturn]] static void throw_empty();
  // check_callable(run) rejects a run that cannot be called: it crashed (a null
  // function pointer) or threw std::bad_function_call inside the new greenlet.
  template <class F>
  static void check_callable(const F& run) {
    using Run = std::decay_t<F>;
    if constexpr (std::is_pointer_v<Run> || std::is_member_pointer_v<Run>) {
      const Run pointer = run;  // a function reference decays: never null
      if (pointer == nullptr) throw_not_callable("a null function pointer");
    } else if constexpr (detail::is_std_function<Run>::value) {
      if (!run) throw_not_callable("an empty std::function");
    }
  }
  [[noreturn]] static void throw_not_callable(const char* what);
  detail::greenlet_impl* impl_ = nullptr;
};

// getcurrent() is greenlet::getcurrent().
inline greenlet getcurrent() { return greenlet::getcurrent(); }

// default_stack_size() is the stack size of greenlets made without one (128
// KiB unless set). set_default_stack_size() changes it for all threads.
std::size_t default_stack_size() noexcept;
// set_default_stack_size(bytes) sets default_stack_size(), rounded up to whole pages, for greenlets
// made later on any thread. Throws greenlet::error (bad_arguments) below 16 KiB. Thread-safe (an
// atomic store).
void set_default_stack_size(std::size_t bytes);

// set_thread_stack_mode(mode) sets the stack mode of greenlets made later on
// the calling thread whose stack_options say stack_mode::inherit (the
// default); stack_mode::inherit goes back to the process default, which is
// the environment variable GREENLET_STACK_MODE (shared or separate) or else
// separate. See stack_mode for the trade. Throws only std::bad_alloc (the
// thread's greenlet state is made on first use); this thread only.
void set_thread_stack_mode(stack_mode mode);
// thread_stack_mode() is the mode greenlets made now on this thread get by
// default: stack_mode::separate or stack_mode::shared. Throws as
// set_thread_stack_mode.
stack_mode thread_stack_mode();

// trace_function receives "switch" or "throw" with the origin and target of
// each switch, on the target's side, as greenlet.settrace's callback. If it
// throws, tracing is turned off and the exception is raised in the target.
using trace_function = std::function<void(std::string_view event, const greenlet& origin, const greenlet& target)>;
// settrace(f) sets this thread's trace function and returns the previous one;
// an empty function turns tracing off. Tracing ends when the thread exits,
// before its unfinished greenlets are killed (Python clears it then too): the
// thread_locals the trace function may use can be destroyed by then, so those
// kills are not traced, and settrace() called while they run (from a victim)
// keeps tracing off.
trace_function settrace(trace_function f);
// gettrace() is this thread's trace function, empty if tracing is off. Throws only what copying
// the function throws; per thread, so no synchronization is needed.
trace_function gettrace();

// unraisable_hook receives exceptions that have nowhere to go: one thrown by a
// greenlet being killed because its last handle went away. The default prints
// it to stderr. error is null for a report about no exception (a greenlet that
// could not be killed and is leaked, say): context is then the whole message,
// and the default prints just "greenlet: <context>". Returns the previous hook.
using unraisable_hook = std::function<void(std::exception_ptr error, std::string_view context)>;
// set_unraisable_hook(hook) replaces the process-wide hook for exceptions with nowhere to go and
// returns the previous one; an empty hook restores printing to stderr. Thread-safe (under a
// mutex); throws nothing beyond moving std::function.
unraisable_hook set_unraisable_hook(unraisable_hook hook);
// report_unraisable(e, context) hands e to the hook (layers above use it for
// exceptions raised while closing or destroying their objects).
void report_unraisable(std::exception_ptr error, std::string_view context) noexcept;

namespace debug {
// live_greenlets() lists this thread's greenlets that still exist, main
// excluded: a leak check asserts it is empty between tests.
std::vector<greenlet> live_greenlets();
// live_count() is live_greenlets().size() without making handles.
std::size_t live_count() noexcept;
// pooled_stacks() is what this thread's stack pool keeps for reuse: warm
// stacks (pages still resident), cold ones (pages given back), and the warm
// budget (GREENLET_STACK_WARM_BUDGET, default 1,024). A running event loop
// keeps finished tasks' stacks warm past the budget until it next waits.
// Throws nothing; about the calling thread only.
struct pooled_stack_counts {
  std::size_t warm = 0;
  std::size_t cold = 0;
  std::size_t warm_budget = 0;
};
pooled_stack_counts pooled_stacks() noexcept;
// cached_objects() is what this thread keeps of freed greenlet objects for the
// next greenlets it makes: bytes held, and the most it holds
// (GREENLET_OBJECT_CACHE_BYTES when the thread started using greenlets,
// default 262,144; 0: none kept). Throws nothing; about the calling thread only.
struct cached_object_bytes {
  std::size_t held = 0;
  std::size_t budget = 0;
};
cached_object_bytes cached_objects() noexcept;
}  // namespace debug

}  // namespace greenlet

// std::hash<greenlet::greenlet> hashes a handle by the greenlet it refers to, so handles can key
// unordered containers. Throws nothing; any thread.
template <>
struct std::hash<greenlet::greenlet> {
  // operator()(g) is the hash of the greenlet g refers to. Throws nothing.
  std::size_t operator()(const greenlet::greenlet& g) const noexcept { return std::hash<const void*>()(g.impl()); }
};

#pragma GCC visibility pop
