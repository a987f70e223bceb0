// value.hpp: greenlet::value, what switch_() carries from one greenlet to another.
#pragma once

#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "greenlet/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

namespace detail {

// value_ops is the hand-written vtable of one stored type: a table of plain
// function pointers, so a value needs no virtual base and can live in a
// small inline buffer.
struct value_ops {
  const std::type_info& type;
  void (*relocate)(void* dst, void* src) noexcept;  // move src into dst, destroy src
  void (*destroy)(void* p) noexcept;
};

inline constexpr std::size_t value_buffer_size = 3 * sizeof(void*);

template <class T>
inline constexpr bool value_fits_inline =
    sizeof(T) <= value_buffer_size &&
    alignof(T) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<T>;

template <class T>
struct inline_ops {
  static void relocate(void* dst, void* src) noexcept {
    T* from = std::launder(static_cast<T*>(src));
    ::new (dst) T(std::move(*from));
    from->~T();
  }
  static void destroy(void* p) noexcept { std::launder(static_cast<T*>(p))->~T(); }
  static constexpr value_ops table{typeid(T), &relocate, &destroy};
};

template <class T>
struct heap_ops {
  static void relocate(void* dst, void* src) noexcept { *static_cast<T**>(dst) = *static_cast<T**>(src); }
  static void destroy(void* p) noexcept { delete *static_cast<T**>(p); }
  static constexpr value_ops table{typeid(T), &relocate, &destroy};
};

template <class T>
constexpr const value_ops* ops_for() noexcept {
  if constexpr (value_fits_inline<T>) {
    return &inline_ops<T>::table;
  } else {
    return &heap_ops<T>::table;
  }
}

// A string literal passed to switch_() is stored as std::string: the pointer
// alone would be a poor thing to port Python's `switch("ok")` to.
template <class T>
using stored_t =
    std::conditional_t<std::is_same_v<std::decay_t<T>, const char*> || std::is_same_v<std::decay_t<T>, char*>,
                       std::string, std::decay_t<T>>;

[[noreturn]] void throw_bad_value_access(const std::type_info* held, const std::type_info& wanted);

// held_exit is how a value keeps the GreenletExit that ended a greenlet: the
// exception as thrown, so that an object of a class derived from GreenletExit
// comes back whole (Python returns the subclass instance), not sliced.
struct held_exit {
  std::exception_ptr error;
};
// held_exit_type(e) is the dynamic type of the GreenletExit e holds. Throws nothing.
const std::type_info& held_exit_type(const std::exception_ptr& e) noexcept;

// exception_object<E>(e) is the object e holds if it is an E (or derived from it), else null.
// It lives as long as e does: rethrowing an exception_ptr throws the object itself, not a copy.
template <class E>
E* exception_object(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (E& object) {
    return &object;
  } catch (...) {
    return nullptr;
  }
}

}  // namespace detail

// value holds what one greenlet hands another on a switch: nothing (Python's
// `()`), one object, or several as a std::tuple. It holds any movable type,
// move-only ones included, and is itself move-only. Small nothrow-movable
// objects are stored inline, so passing an int or a pointer allocates nothing.
//
// get<T>() gives typed access and throws bad_value_access (a greenlet::error)
// naming both types when the value holds something else.
class value {
 public:
  // User-provided, not "= default": value-initialization (`value()`, `return {}`) would then
  // zero the whole buffer first (a `rep stos` on every switch), where only ops_ says it is empty.
  value() noexcept {}  // NOLINT(modernize-use-equals-default)

  // Internal: of_exit(e) holds the GreenletExit that ended a greenlet as thrown, e holding a
  // GreenletExit or an object of a class derived from it: holds<E>(), get<E>() and type() see its
  // dynamic type (holds<GreenletExit>() is true for any of them). Throws nothing.
  static value of_exit(std::exception_ptr e) noexcept {
    value v;
    ::new (static_cast<void*>(v.buffer_)) detail::held_exit{std::move(e)};
    v.ops_ = exit_ops();
    return v;
  }

  // value(x) holds a copy or move of x (a string literal becomes std::string).
  template <class T, class = std::enable_if_t<!std::is_same_v<std::decay_t<T>, value>>>
  explicit value(T&& x) {
    emplace<detail::stored_t<T>>(std::forward<T>(x));
  }

  // of(args...) packs switch_() arguments: none gives an empty value, one is
  // held as itself, several as std::tuple. A lone value argument passes through.
  template <class... Ts>
  static value of(Ts&&... xs) {
    if constexpr (sizeof...(Ts) == 0) {
      return value();
    } else if constexpr (sizeof...(Ts) == 1) {
      if constexpr ((std::is_same_v<std::decay_t<Ts>, value> && ...)) {
        return value(std::move(xs)...);
      } else {
        return value(std::forward<Ts>(xs)...);
      }
    } else {
      return value(std::tuple<detail::stored_t<Ts>...>(std::forward<Ts>(xs)...));
    }
  }

  // value(other) takes over other's content, leaving other empty. Throws nothing. A value is not
  // synchronized: one thread at a time.
  value(value&& other) noexcept { take(other); }
  // operator=(other) destroys the current content and takes over other's, leaving other empty.
  // Throws nothing; one thread at a time.
  value& operator=(value&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  value(const value&) = delete;
  value& operator=(const value&) = delete;
  ~value() { reset(); }

  // emplace<T>(args...) replaces the content with a T built from args.
  template <class T, class... Args>
  T& emplace(Args&&... args) {
    reset();
    if constexpr (detail::value_fits_inline<T>) {
      T* p = ::new (static_cast<void*>(buffer_)) T(std::forward<Args>(args)...);
      ops_ = detail::ops_for<T>();
      return *p;
    } else {
      T* p = new T(std::forward<Args>(args)...);
      *reinterpret_cast<T**>(buffer_) = p;
      ops_ = detail::ops_for<T>();
      return *p;
    }
  }

  // empty() is true for a value carrying nothing, like Python's `()`.
  bool empty() const noexcept { return ops_ == nullptr; }
  // has_value() is !empty(): true when the value carries something. Throws nothing.
  bool has_value() const noexcept { return ops_ != nullptr; }

  // type() is the held type, typeid(void) when empty; for a GreenletExit that ended a greenlet,
  // the type it was thrown as.
  const std::type_info& type() const noexcept {
    if (ops_ == exit_ops()) return detail::held_exit_type(exit()->error);
    return ops_ ? ops_->type : typeid(void);
  }

  // holds<T>() tells whether get<T>() would succeed. For a GreenletExit that ended a greenlet, T
  // may be the class it was thrown as or a base of it derived from GreenletExit.
  template <class T>
  bool holds() const noexcept {
    using stored = std::remove_cvref_t<T>;
    if constexpr (std::is_base_of_v<GreenletExit, stored>) {
      if (ops_ == exit_ops()) return detail::exception_object<stored>(exit()->error) != nullptr;
    }
    return ops_ == detail::ops_for<stored>() || (ops_ != nullptr && ops_->type == typeid(stored));
  }

  // get<T>() is the held T; get<A, B>() is the held std::tuple<A, B>. T may be a const type or a
  // reference (get<const T&>()), both read the held T. Throws bad_value_access when the value
  // holds another type or nothing.
  template <class T, class... More>
  decltype(auto) get() & {
    if constexpr (sizeof...(More) == 0) {
      return checked<T>();
    } else {
      return checked<std::tuple<T, More...>>();
    }
  }
  // Overload of get<T>() & for a const value: the held T (or tuple) by const-qualified access.
  // Throws bad_value_access as get<T>() &; one thread at a time.
  template <class T, class... More>
  decltype(auto) get() const& {
    return const_cast<value*>(this)->get<T, More...>();
  }
  // On an rvalue, get<T>() moves the object out (move-only types included).
  template <class T, class... More>
  auto get() && {
    if constexpr (sizeof...(More) == 0) {
      return T(std::move(checked<T>()));
    } else {
      return std::tuple<T, More...>(std::move(checked<std::tuple<T, More...>>()));
    }
  }

  // as_arguments<Ts...>() turns the value into a tuple of run()'s parameters:
  // empty for none, the held object for one, the held tuple for several.
  template <class... Ts>
  std::tuple<Ts...> as_arguments() && {
    if constexpr (sizeof...(Ts) == 0) {
      if (!empty()) detail::throw_bad_value_access(&type(), typeid(void));
      return {};
    } else if constexpr (sizeof...(Ts) == 1) {
      return std::tuple<Ts...>(std::move(*this).template get<Ts...>());
    } else {
      return std::move(*this).template get<Ts...>();
    }
  }

  // reset() destroys the content, leaving the value empty. Throws nothing; one thread at a time.
  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(buffer_);
      ops_ = nullptr;
    }
  }

 private:
  // checked<T>() is the held T; get<const T>() reads the T that was stored
  // (whose layout, inline or on the heap, was chosen for T, not const T).
  template <class T>
  T& checked() {
    using stored = std::remove_cvref_t<T>;
    if constexpr (std::is_base_of_v<GreenletExit, stored>) {
      if (ops_ == exit_ops()) {
        if (stored* object = detail::exception_object<stored>(exit()->error)) return *object;
        detail::throw_bad_value_access(&type(), typeid(stored));
      }
    }
    if (!holds<stored>()) detail::throw_bad_value_access(ops_ ? &type() : nullptr, typeid(stored));
    if constexpr (detail::value_fits_inline<stored>) {
      return *std::launder(reinterpret_cast<stored*>(buffer_));
    } else {
      return **reinterpret_cast<stored**>(buffer_);
    }
  }

  static const detail::value_ops* exit_ops() noexcept { return detail::ops_for<detail::held_exit>(); }
  const detail::held_exit* exit() const noexcept {
    return std::launder(reinterpret_cast<const detail::held_exit*>(buffer_));
  }

  void take(value& other) noexcept {
    if (other.ops_ != nullptr) {
      other.ops_->relocate(buffer_, other.buffer_);
      ops_ = other.ops_;
      other.ops_ = nullptr;
    }
  }

  alignas(std::max_align_t) unsigned char buffer_[detail::value_buffer_size];
  const detail::value_ops* ops_ = nullptr;
};

}  // namespace greenlet

#pragma GCC visibility pop
