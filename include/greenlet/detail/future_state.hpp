// future_state.hpp: the shared state behind Future<T> and Task<T>.
// Internal; users never include it.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/detail/escape_trace.hpp"
#include "greenlet/detail/loop_core.hpp"
#include "greenlet/detail/rare_string.hpp"
#include "greenlet/detail/value_repr.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio::detail {

// future_state is a single-threaded, reference-counted future: pending, then
// finished (with a result or an exception) or cancelled. Done callbacks are
// scheduled with call_soon, never run inline.
class future_state {
 public:
  enum class status : unsigned char { pending, finished, cancelled };

  explicit future_state(loop_core* loop) noexcept : loop_(loop) { retain(loop); }
  virtual ~future_state();
  future_state(const future_state&) = delete;
  future_state& operator=(const future_state&) = delete;

  bool done() const noexcept { return state_ != status::pending; }
  bool cancelled() const noexcept { return state_ == status::cancelled; }
  status state() const noexcept { return state_; }
  // failed() is true when it finished with an exception (not cancelled);
  // unlike exception(), it does not count as retrieving it.
  bool failed() const noexcept { return state_ == status::finished && error_ != nullptr; }
  loop_core* loop() const noexcept { return loop_; }

  // cancel(msg) cancels a pending future; false if already done.
  virtual bool cancel(const std::string& message = "");
  // set_exception() finishes with an exception; InvalidStateError if done.
  void set_exception(std::exception_ptr error);
  // exception() is the exception (null if none); CancelledError if
  // cancelled, InvalidStateError if pending.
  std::exception_ptr exception();
  // peek_exception() is a failed future's exception (null otherwise), for printing: it does not
  // count as retrieving it. Throws nothing.
  std::exception_ptr peek_exception() const noexcept { return failed() ? error_ : nullptr; }
  // check_result() throws what result() would throw instead of returning.
  void check_result();
  // mark_retrieved() counts the outcome as looked at: no "exception was never retrieved" report.
  // Throws nothing.
  void mark_retrieved() noexcept { error_retrieved_ = true; }

  // A done callback: either fast (fn, ctx) or general. Returns an id for
  // remove_done_callback. A fast one runs as fn(ctx, future) and owns a
  // reference to the future, which it must release. A general one runs
  // through call_soon() in a copy of `context` (the values its registrant
  // captured; none: an empty context).
  std::uint64_t add_done_callback(std::function<void(future_state&)> fn, ::greenlet::detail::context_ptr context = {});
  std::uint64_t add_fast_callback(void (*fn)(void* ctx, void* state), void* ctx);
  // add_owned_callback(fn, drop, ctx) is a fast callback whose ctx holds a
  // reference for it: fn(ctx, future) runs, or drop(ctx, future) instead if
  // it never will (the loop closed), and either gives back both that and the
  // future reference. Removed by remove_done_callback(), the caller gives
  // its ctx reference back itself. The future must outlive the registration
  // (ctx normally retains it). Allocates nothing when it is the future's
  // first fast callback.
  std::uint64_t add_owned_callback(void (*fn)(void* ctx, void* state), void (*drop)(void* ctx, void* state), void* ctx);
  std::size_t remove_done_callback(std::uint64_t id);
  // for_each_fast_callback(visit) calls visit(fn, ctx) for each fast callback registered and not
  // removed, in registration order: what the call graph reads to learn who awaits the future
  // (src/asyncio/call_graph.cpp). Throws what visit throws.
  template <class Visit>
  void for_each_fast_callback(Visit&& visit) const {
    if (first_.fn != nullptr) visit(first_.fn, first_.ctx);
    for (const fast_callback& c : callbacks_) {
      if (c.fn != nullptr && c.fn != &general_entry) visit(c.fn, c.ctx);
    }
  }
  // linked_as_awaited() marks the future as a key of its loop's future_add_to_awaited_by()
  // records, which its destructor then erases. Throws nothing.
  void linked_as_awaited() noexcept { awaited_by_linked_ = true; }

  // repr() is asyncio's: <Future pending cb=[Task.task_wakeup()]>, <Task finished name='n1'
  // result='x'>, <Task pending name='n2' wait_for=<Future pending cb=[...]>>... (docs/asyncio.md).
  virtual std::string repr() const;
  // summary() is repr() without the parts that name other objects (cb=, wait_for=): one line per
  // task in a deadlock report, however long the chain of awaits.
  virtual std::string summary() const;
  virtual std::string result_repr() const { return ""; }
  // outcome_repr() is repr()'s tail for a finished future: " exception=..."
  // or " result=...", empty otherwise.
  std::string outcome_repr() const;
  // callbacks_repr() is repr()'s " cb=[...]" for a future with done callbacks, asyncio's list:
  // one or two named, or the first, "<N more>" and the last. Empty without callbacks.
  std::string callbacks_repr() const;
  // as_task() is the task behind this future, or null for a plain future.
  virtual task_state* as_task() noexcept { return nullptr; }
  // is_task() is as_task() != nullptr without the virtual call.
  bool is_task() const noexcept { return is_task_; }

  // finish_with_result() marks done after a subclass stored the result.
  void finish_with_result();
  // set_cancelled(message, raised) cancels; raised is the CancelledError a task's function let out,
  // which the first exception()/result() hands out unchanged (asyncio keeps it as _cancelled_exc),
  // later calls a new one with the message. No-op if done.
  void set_cancelled(const std::string& message, std::exception_ptr raised = nullptr);

  long refs = 1;
  // What the "exception was never retrieved" report and Task.print_stack() tell of a failed task:
  // its repr as it failed, and the frames its exception left its function from. Null for a
  // future, and a task that did not fail: one pointer, as most never do.
  struct failure_note {
    std::string source;
    ::greenlet::detail::escape_trace escape;
  };
  std::unique_ptr<failure_note> failure_;
  // The context that report runs in (a task's, as asyncio's Task finalizer enters the task's
  // context, gh-96704); null: the context current where the last handle goes.
  ::greenlet::detail::context_ptr report_context_;

 protected:
  bool is_task_ = false;
  std::string state_name() const;
  void schedule_callbacks();
  [[noreturn]] void throw_invalid(const char* what) const;
  // throw_cancelled() throws the CancelledError of a cancelled future: see set_cancelled().
  [[noreturn]] void throw_cancelled();

  status state_ = status::pending;
  bool error_retrieved_ = true;          // false while an exception nobody saw is stored
  bool awaited_by_linked_ = false;       // see linked_as_awaited()
  std::uint32_t removed_callbacks_ = 0;  // tombstones in callbacks_
  // The exception of a failed future; of a cancelled one, the CancelledError its task raised, until
  // handed out (see set_cancelled()).
  std::exception_ptr error_;
  rare_string cancel_message_;
  loop_core* loop_;

 private:
  // A done callback as it waits: fn(ctx, future) runs it, drop(ctx, future)
  // disposes of it unrun. A general one (std::function and context) is a
  // general_callback on the heap, its fn general_entry: an entry stays 32
  // bytes, as a future awaited by many (a shared Event, a gather's children)
  // holds one per waiter (100,000 tasks on one future: 10.5 MB of entries at
  // 80 bytes each, with the std::function inline, 4.2 MB now).
  struct fast_callback {
    std::uint64_t id = 0;
    void (*fn)(void*, void*) = nullptr;  // null: none (first_), or removed (a tombstone in callbacks_)
    void* ctx = nullptr;
    void (*drop)(void*, void*) = nullptr;
  };
  struct general_callback;
  // general_entry is a general entry's fn: a mark, never called, as schedule_callbacks() hands
  // such an entry to call_soon(), which runs it in its context.
  static void general_entry(void* general, void* future);
  // forget(c) makes c a tombstone, freeing a general one's function and context (a fast one's ctx
  // is its registrant's, who unregistered it). Throws nothing.
  static void forget(fast_callback& c) noexcept;
  // The first callback waits in first_ rather than in callbacks_: most
  // futures get exactly one (the task awaiting it), and an await then
  // allocates nothing. When set, it is older than every entry of callbacks_,
  // so running first_ and then callbacks_ keeps registration order.
  std::uint64_t add_fast(void (*fn)(void*, void*), void (*drop)(void*, void*), void* ctx);
  fast_callback first_;
  std::vector<fast_callback> callbacks_;
  std::uint64_t next_callback_id_ = 1;
};

inline void retain(future_state* f) noexcept { ++f->refs; }
inline void release(future_state* f) noexcept {
  if (--f->refs == 0) delete f;
}

// exception_repr(e) is Python's repr() of the exception e: "ValueError('boom')", its class name
// unqualified (a library exception's is its Python name; another's the demangled C++ name,
// namespaces and template arguments dropped: runtime_error('boom')) and its what() as a str;
// "CancelledError()" for one without a message, "ExceptionGroup('msg', [...])" for a group
// (its first members only, as ExceptionGroup::what(): "[A('0'), ..., ... and N more]"),
// "Name()" for a type not derived from std::exception, "None" for null. Throws only std::bad_alloc.
std::string exception_repr(const std::exception_ptr& e);
// exception_only(e) is Python's traceback.format_exception_only(e) without its newline: the class
// name as exception_repr() gives it and ": " and what() ("runtime_error: boom"); the name alone
// when what() is empty or the type is not derived from std::exception. Throws only std::bad_alloc.
std::string exception_only(const std::exception_ptr& e);
// address_repr(object) is the address as Python shows an object's id() in a repr ("<Queue at
// 0x7f3a5c0012a0 ...>", "<asyncio.locks.Lock object at 0x7f3a5c0012a0 ...>"): "0x" and lowercase
// hex digits, as %p and std::ostream print a pointer. Throws only std::bad_alloc.
std::string address_repr(const void* object);

// future_value<T> adds the result.
template <class T>
class future_value : public future_state {
 public:
  using future_state::future_state;

  template <class U>
  void set_result(U&& value) {
    if (done()) throw_invalid("set_result() on a future that is already done");
    result_.emplace(std::forward<U>(value));
    finish_with_result();
  }
  T& result() {
    check_result();
    return *result_;
  }
  std::string result_repr() const override { return result_ ? " result=" + repr_value(*result_, reprlib_repr) : ""; }

 private:
  std::optional<T> result_;
};

template <>
class future_value<void> : public future_state {
 public:
  using future_state::future_state;
  void set_result() {
    if (done()) throw_invalid("set_result() on a future that is already done");
    finish_with_result();
  }
  void result() { check_result(); }
  std::string result_repr() const override { return state_ == status::finished && !error_ ? " result=None" : ""; }
};

// await_state() suspends the running task until f is done. Throws
// RuntimeError outside a task or for a future of another loop, and
// CancelledError if the task is cancelled while waiting; RuntimeError
// (invalid_state) if f is null (an empty handle).
void await_state(future_state* f);

// throw_empty_handle(kind) throws the RuntimeError (asyncio_errc::invalid_state) for a call on an
// empty `kind` handle ("Future/Task", "AnyTask"): default-constructed or moved from.
[[noreturn]] void throw_empty_handle(const char* kind);
// throw_task_not_settable(operation) throws asyncio's RuntimeError "Task does not support
// <operation> operation" (invalid_state), for set_result()/set_exception() on a task's future.
[[noreturn]] void throw_task_not_settable(const char* operation);
// throw_loop_gone() throws the RuntimeError (asyncio_errc::loop_closed) of get_loop() on a future whose
// event_loop object was destroyed.
[[noreturn]] void throw_loop_gone();

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
