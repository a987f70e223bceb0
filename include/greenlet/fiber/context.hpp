// fiber/context.hpp: context variables (Python's contextvars), per greenlet.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlet/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

namespace detail {
// An immutable map from variable id to value; a context is a shared
// pointer to one, so snapshots are free and safe to share across threads.
using context_map = std::map<std::uint64_t, std::shared_ptr<const void>>;
using context_ptr = std::shared_ptr<const context_map>;

// context_slot is where a greenlet keeps the context it runs in: the values (null while no
// variable is set) and the context's identity, which a token remembers so that reset() can refuse
// a token made in another context. Identity 0 is a context nobody has named yet; the first set()
// in it names it (next_context_id()), so a context where nothing is set costs nothing. Code that
// makes a greenlet run in another one's context, rather than in a copy, copies the whole slot.
struct context_slot {
  context_ptr vars;
  std::uint64_t id = 0;
};

context_ptr current_context();
void set_current_context(context_ptr context);
// current_context_id() is the identity of the calling greenlet's current context, named now if it
// had none. Throws std::bad_alloc only (the thread's first use of greenlets).
std::uint64_t current_context_id();
// exchange_current_context(slot) makes slot the calling greenlet's current context and returns the
// one it replaces. Throws std::bad_alloc only (the thread's first use of greenlets).
context_slot exchange_current_context(context_slot slot);
// leave_context(id, outer, vars) is context::run()'s exit: if the calling greenlet's current context
// is still the one run() entered (identity id), it puts outer back and moves what the entered one
// ended with into vars; true. False, changing nothing, if the greenlet's context was replaced
// meanwhile (set_gr_context()): the greenlet keeps that one. Throws nothing.
bool leave_context(std::uint64_t id, context_slot& outer, context_ptr& vars) noexcept;
std::uint64_t next_context_var_id() noexcept;
// next_context_id() is a new context identity, never 0. Throws nothing; any thread.
std::uint64_t next_context_id() noexcept;
// The misuse errors of context::run() and context_var::reset() (greenlet::error).
[[noreturn]] void throw_context_entered();
[[noreturn]] void throw_context_replaced();
[[noreturn]] void throw_token_other_context(const std::string& var_name);
[[noreturn]] void throw_token_used(const std::string& var_name);
[[noreturn]] void throw_token_other_var(const std::string& var_name);
}  // namespace detail

// LookupError is raised by context_var::get() for a variable with no value
// and no default (Python's LookupError).
class LookupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which context is current, and when two are the same.
//
// Every greenlet runs in a context of its own (greenlet's gr_context): a new greenlet starts with an
// empty one, an asyncio task with a copy of its creator's (or in the context object given to
// create_task(fn, name, ctx), entered until the task is done), and each event-loop callback with a copy
// of the context current when it was scheduled. context::run(fn) makes a context object current
// for fn, in the calling greenlet, and puts the greenlet's own back afterwards.
//
// Two contexts are the same only if they are one greenlet's own context or one context object:
// a copy (copy_context(), gr_context(), copying a context object) is another context, even while
// it holds equal values. This decides two errors, both greenlet::error (Python's in brackets; the
// other misuses of reset() are greenlet::error too, see context_var::reset()):
//  - reset(token) in another context than the one whose set() made the token throws
//    errc::token_other_context [ValueError "... was created in a different Context"]: it would
//    write that context's old value into this one;
//  - run() of a context object whose run() has not returned (in this greenlet, or in another one
//    it switched to) throws errc::context_entered [RuntimeError "cannot enter context: ... is
//    already entered"]: the outer run() would later overwrite what the inner one set.
// And run() whose fn replaced the greenlet's context (set_gr_context() on the running greenlet)
// throws errc::context_replaced when fn returns [RuntimeError "cannot exit context: thread state
// references a different context object"] (see context::run()).
// Running a copy instead is always allowed (auto inner = ctx; inner.run(fn)).

// context is a snapshot of context-variable values (contextvars.Context), and an identity (see
// above). A plain value, not synchronized: share one between threads only read-only.
class context {
 public:
  context() = default;
  // Internal: context(data) wraps an existing snapshot of values. Throws nothing.
  explicit context(detail::context_ptr data) noexcept : data_(std::move(data)) {}
  // context(other) is a copy: the same values, but another context (a token of other's is not
  // one of the copy's), not entered. Throws nothing.
  context(const context& other) noexcept : data_(other.data_) {}
  // operator=(other) takes other's values; this stays its own context. Throws nothing; not while
  // this context is entered (its run() would overwrite them when it returns).
  context& operator=(const context& other) noexcept {
    data_ = other.data_;
    return *this;
  }
  // A moved context keeps its identity (tokens made in it stay valid in the new object); the
  // moved-from one is empty. Throws nothing; not while other is entered.
  context(context&& other) noexcept : data_(std::move(other.data_)), id_(std::exchange(other.id_, 0)) {}
  context& operator=(context&& other) noexcept {
    data_ = std::move(other.data_);
    id_ = std::exchange(other.id_, 0);
    return *this;
  }
  ~context() = default;

  // size() is the number of variables with a value in this context. Throws nothing.
  std::size_t size() const noexcept { return data_ ? data_->size() : 0; }

  // run(fn) runs fn with this context current in the calling greenlet and returns what fn returns;
  // what fn sets stays in this context object, not in the caller's. Throws greenlet::error
  // (errc::context_entered) if this context is already entered, and what fn throws (the caller's
  // context is back either way). If fn replaced the greenlet's context (set_gr_context() on the
  // running greenlet), the greenlet keeps the context it was given, this context object keeps the
  // values it had when run() began (what fn set in it went with the replaced context), and run()
  // throws greenlet::error (errc::context_replaced) once fn returns (Python's RuntimeError "cannot
  // exit context"; it used to undo the set_gr_context() silently). When fn throws, its exception
  // goes on instead. A value fn returns is moved out (a non-movable result cannot be returned).
  template <class F>
  std::invoke_result_t<F> run(F&& fn) {
    using result = std::invoke_result_t<F>;
    if (entered_) detail::throw_context_entered();
    if (id_ == 0) id_ = detail::next_context_id();
    struct leave {
      context* self;
      detail::context_slot outer;
      bool left = false;
      // now() leaves and says whether fn replaced the greenlet's context.
      bool now() noexcept {
        left = true;
        self->entered_ = false;
        return !detail::leave_context(self->id_, outer, self->data_);
      }
      ~leave() {
        if (!left) now();  // fn threw: its exception goes on
      }
    } guard{this, detail::exchange_current_context({data_, id_})};
    entered_ = true;
    if constexpr (std::is_void_v<result>) {
      std::forward<F>(fn)();
      if (guard.now()) detail::throw_context_replaced();
    } else {
      result r = std::forward<F>(fn)();
      if (guard.now()) detail::throw_context_replaced();
      if constexpr (std::is_reference_v<result>) {
        return static_cast<result>(r);
      } else {
        return r;
      }
    }
  }

  // Internal: data() is the immutable snapshot this context holds (null when empty). Throws nothing.
  const detail::context_ptr& data() const noexcept { return data_; }

  // Internal: what run() does on entry and exit, for code that runs another greenlet in this
  // context object (asyncio's create_task(fn, name, ctx)). enter_elsewhere() marks it entered and
  // returns the slot that greenlet runs in; throws greenlet::error (errc::context_entered) if it is
  // entered already. leave_elsewhere(vars) takes back what that greenlet ended with; throws nothing.
  detail::context_slot enter_elsewhere() {
    if (entered_) detail::throw_context_entered();
    if (id_ == 0) id_ = detail::next_context_id();
    entered_ = true;
    return {data_, id_};
  }
  void leave_elsewhere(detail::context_ptr vars) noexcept {
    data_ = std::move(vars);
    entered_ = false;
  }
  // Internal: entered() says whether a run() (or a task given this context) has not finished.
  bool entered() const noexcept { return entered_; }

 private:
  detail::context_ptr data_;
  std::uint64_t id_ = 0;  // named by the first run()
  bool entered_ = false;  // run() has not returned
};

// copy_context() is a snapshot of the calling greenlet's current context: its values, in a new
// context. Throws std::bad_alloc only (the thread's first use of greenlets).
inline context copy_context() { return context(detail::current_context()); }

// context_var<T> is a contextvars.ContextVar: a value per context. set()
// returns a token that reset() uses to restore the previous value.
template <class T>
class context_var {
 public:
  // token is what set() returns: it remembers the variable's previous value and the context set()
  // ran in, for reset(), which accepts each token once, in that context. A plain value, not
  // synchronized.
  class token {
   public:
    // var() is the context_var whose set() made this token. Throws nothing.
    const context_var* var() const noexcept { return var_; }

   private:
    friend class context_var;
    token(const context_var* var, std::shared_ptr<const void> old, std::uint64_t context_id)
        : var_(var), old_(std::move(old)), context_id_(context_id) {}
    const context_var* var_;
    std::shared_ptr<const void> old_;  // null: the variable had no value
    std::uint64_t context_id_;         // the context set() ran in
    bool used_ = false;
  };

  // context_var(name, default_value) makes a variable with a name (shown in errors) and an optional
  // default for get(). Throws std::bad_alloc only. The variable may be shared by all threads: its
  // values live in each greenlet's context, not in the variable.
  explicit context_var(std::string name, std::optional<T> default_value = std::nullopt)
      : name_(std::move(name)), default_(std::move(default_value)), id_(detail::next_context_var_id()) {}
  context_var(const context_var&) = delete;
  context_var& operator=(const context_var&) = delete;

  // name() is the name given to the constructor. Throws nothing; any thread.
  const std::string& name() const noexcept { return name_; }

  // get() is the value in the current context, else the default; throws
  // LookupError if there is neither.
  T get() const {
    if (const T* v = find()) return *v;
    if (default_) return *default_;
    throw LookupError("context_var '" + name_ + "' has no value in this context and no default");
  }
  // get(fallback) is the value in the current context, else fallback: as Python's get(default),
  // the fallback comes before the variable's own default. Throws what copying T throws.
  T get(T fallback) const {
    if (const T* v = find()) return *v;
    return fallback;
  }

  // set(v) sets the value in the current context only, and returns the token that undoes it there.
  // Throws std::bad_alloc, what copying or moving T throws.
  token set(T value) {
    detail::context_ptr now = detail::current_context();
    std::shared_ptr<const void> old;
    auto updated = now ? std::make_shared<detail::context_map>(*now) : std::make_shared<detail::context_map>();
    if (auto it = updated->find(id_); it != updated->end()) old = it->second;
    (*updated)[id_] = std::make_shared<const T>(std::move(value));
    const std::uint64_t context_id = detail::current_context_id();
    detail::set_current_context(std::move(updated));
    return token(this, std::move(old), context_id);
  }

  // reset(t) restores the value before the set() that made t. Throws greenlet::error, checked in
  // Python's order, and then changes nothing: errc::token_used for a token already used [Python's
  // RuntimeError "has already been used once"], errc::token_other_var for a token of another
  // variable [ValueError "was created by a different ContextVar"], errc::token_other_context for a
  // token made in another context [ValueError "was created in a different Context"; see "Which
  // context is current" above]. Also std::bad_alloc.
  void reset(token& t) {
    if (t.used_) detail::throw_token_used(name_);
    if (t.var_ != this) detail::throw_token_other_var(name_);
    if (t.context_id_ != detail::current_context_id()) detail::throw_token_other_context(name_);
    t.used_ = true;
    detail::context_ptr now = detail::current_context();
    auto updated = now ? std::make_shared<detail::context_map>(*now) : std::make_shared<detail::context_map>();
    if (t.old_) {
      (*updated)[id_] = t.old_;
    } else {
      updated->erase(id_);
    }
    if (updated->empty()) updated.reset();  // back to the empty context
    detail::set_current_context(std::move(updated));
  }

 private:
  const T* find() const {
    detail::context_ptr now = detail::current_context();
    if (!now) return nullptr;
    auto it = now->find(id_);
    return it == now->end() ? nullptr : static_cast<const T*>(it->second.get());
  }

  std::string name_;
  std::optional<T> default_;
  std::uint64_t id_;
};

}  // namespace greenlet

#pragma GCC visibility pop
