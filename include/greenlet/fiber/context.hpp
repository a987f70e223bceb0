// fiber/context.hpp: context variables (Python's contextvars), per greenlet.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
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

context_ptr current_context();
void set_current_context(context_ptr context);
std::uint64_t next_context_var_id() noexcept;
}  // namespace detail

// LookupError is raised by context_var::get() for a variable with no value
// and no default, and by reset() with a token already used.
class LookupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// context is a snapshot of context-variable values (contextvars.Context).
// Every greenlet has its own (greenlet's gr_context): a new greenlet starts
// with an empty one, an asyncio task with a copy of its creator's.
class context {
 public:
  context() = default;
  // Internal: context(data) wraps an existing snapshot of values. Throws nothing. A context is not
  // synchronized: share one between threads only read-only.
  explicit context(detail::context_ptr data) noexcept : data_(std::move(data)) {}
  // size() is the number of variables with a value in this context. Throws nothing.
  std::size_t size() const noexcept { return data_ ? data_->size() : 0; }

  // run(fn) runs fn with this context current in the calling greenlet;
  // what fn sets stays in this context object, not in the caller's.
  template <class F>
  decltype(auto) run(F&& fn) {
    struct restore {
      context* self;
      detail::context_ptr saved;
      ~restore() {
        self->data_ = detail::current_context();
        detail::set_current_context(std::move(saved));
      }
    } guard{this, detail::current_context()};
    detail::set_current_context(data_);
    return std::forward<F>(fn)();
  }

  // Internal: data() is the immutable snapshot this context holds (null when empty). Throws nothing.
  const detail::context_ptr& data() const noexcept { return data_; }

 private:
  detail::context_ptr data_;
};

// copy_context() is a snapshot of the calling greenlet's context.
inline context copy_context() { return context(detail::current_context()); }

// context_var<T> is a contextvars.ContextVar: a value per context. set()
// returns a token that reset() uses to restore the previous value.
template <class T>
class context_var {
 public:
  // token is what set() returns: it remembers the variable's previous value for reset(), which
  // accepts each token once. A plain value, not synchronized.
  class token {
   public:
    // var() is the context_var whose set() made this token. Throws nothing.
    const context_var* var() const noexcept { return var_; }

   private:
    friend class context_var;
    token(const context_var* var, std::shared_ptr<const void> old) : var_(var), old_(std::move(old)) {}
    const context_var* var_;
    std::shared_ptr<const void> old_;  // null: the variable had no value
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

  // set(v) sets the value in the current context only.
  token set(T value) {
    detail::context_ptr now = detail::current_context();
    std::shared_ptr<const void> old;
    auto updated = now ? std::make_shared<detail::context_map>(*now) : std::make_shared<detail::context_map>();
    if (auto it = updated->find(id_); it != updated->end()) old = it->second;
    (*updated)[id_] = std::make_shared<const T>(std::move(value));
    detail::set_current_context(std::move(updated));
    return token(this, std::move(old));
  }

  // reset(t) restores the value before the set() that made t. LookupError
  // for a token of another variable or one already used.
  void reset(token& t) {
    if (t.var_ != this) throw LookupError("reset(): the token was made by another context_var");
    if (t.used_) throw LookupError("reset(): the token has already been used once");
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
