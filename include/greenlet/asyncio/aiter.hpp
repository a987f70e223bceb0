// asyncio/aiter.hpp: asynchronous iteration, Python's `async for`.
//
//   for (auto& line : asyncio::aiter(reader)) print(line);  // inside a task
//
// An asynchronous iterator is any object with an anext() member that may
// await and returns the next item: either std::optional<T> (std::nullopt
// ends the iteration) or T, throwing StopAsyncIteration at the end. An
// object with an aiter() member (Python's __aiter__) is iterated through
// what aiter() returns. async_generator<T> (async_generator.hpp) is one.
#pragma once

#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/async_generator.hpp"
#include "greenlet/asyncio/sync_errors.hpp"

namespace greenlet::asyncio {

namespace detail {

template <class R>
struct anext_traits {
  using value_type = std::remove_cvref_t<R>;
  static constexpr bool optional = false;
};
template <class T>
struct anext_traits<std::optional<T>> {
  using value_type = T;
  static constexpr bool optional = true;
};

// get_aiter(x) is x.aiter() when x has one (Python's aiter() calling
// __aiter__), else x itself.
template <class X>
decltype(auto) get_aiter(X& x) {
  if constexpr (requires { x.aiter(); }) {
    return x.aiter();
  } else {
    return (x);
  }
}

}  // namespace detail

// aiter_range<X> is what aiter() returns: an input range whose begin() and
// ++ await the next item. It holds an lvalue source by reference and a
// temporary one by value, so `for (auto x : aiter(make_gen()))` is safe.
// Exceptions from anext() other than StopAsyncIteration pass through.
template <class X>
class aiter_range {
  using source_type = std::remove_cvref_t<X>;
  using held_type = std::conditional_t<std::is_lvalue_reference_v<X>, X, source_type>;
  using iter_result = decltype(detail::get_aiter(std::declval<std::remove_reference_t<held_type>&>()));
  using iter_type = std::remove_reference_t<iter_result>;
  // aiter() returning a new object (not a reference): the range keeps it.
  static constexpr bool owns_iter = !std::is_lvalue_reference_v<iter_result>;
  using anext_result = decltype(std::declval<iter_type&>().anext());
  using traits = detail::anext_traits<std::remove_cvref_t<anext_result>>;

 public:
  using value_type = typename traits::value_type;

  explicit aiter_range(X&& source) : source_(std::forward<X>(source)) {}

  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = aiter_range::value_type;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    value_type& operator*() const { return *current_; }
    value_type* operator->() const { return &*current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.current_; }

   private:
    friend aiter_range;
    explicit iterator(iter_type* it) : it_(it) { advance(); }
    void advance() {
      current_.reset();
      try {
        if constexpr (traits::optional) {
          current_ = it_->anext();
        } else {
          current_.emplace(it_->anext());
        }
      } catch (const StopAsyncIteration&) {
        current_.reset();
      }
    }
    iter_type* it_ = nullptr;
    mutable std::optional<value_type> current_;
  };

  // begin() calls aiter() (once) and awaits the first item.
  iterator begin() {
    if constexpr (owns_iter) {
      iter_.emplace(detail::get_aiter(source_));
      return iterator(&*iter_);
    } else {
      return iterator(&detail::get_aiter(source_));
    }
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  held_type source_;
  std::conditional_t<owns_iter, std::optional<iter_type>, bool> iter_{};
};

// aiter(x) adapts an asynchronous iterable for range-for inside a task:
// `for (auto item : asyncio::aiter(x))` is `async for item in x`.
template <class X>
aiter_range<X> aiter(X&& x) {
  return aiter_range<X>(std::forward<X>(x));
}

// anext(x) awaits x's next item as std::optional: nullopt at the end,
// whichever way x.anext() reports it (Python's anext(x, None)).
template <class I>
auto anext(I& x) {
  using traits = detail::anext_traits<std::remove_cvref_t<decltype(x.anext())>>;
  if constexpr (traits::optional) {
    return x.anext();
  } else {
    try {
      return std::optional<typename traits::value_type>(x.anext());
    } catch (const StopAsyncIteration&) {
      return std::optional<typename traits::value_type>();
    }
  }
}

}  // namespace greenlet::asyncio
