// asyncio/aiter.hpp: asynchronous iteration, Python's `async for`.
//
//   for (auto& line : asyncio::aiter(reader)) print(line);  // inside a task
//
// An asynchronous iterator is any object with an anext() member that may
// await and returns the next item: either std::optional<T> (std::nullopt
// ends the iteration) or T, throwing StopAsyncIteration at the end. An
// object with an aiter() member (Python's __aiter__) is iterated through
// what aiter() returns. async_generator<T> (async_generator.hpp) is one,
// and StreamReader (<greenlet/io.hpp>) is one by lines. aiter() and anext()
// of anything else fail to compile on the concepts async_iterable and
// async_iterator, naming the anext() that is missing.
#pragma once

#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/async_generator.hpp"
#include "greenlet/asyncio/sync_errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

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

// aiter_result<X>::type is what get_aiter() returns for an X lvalue,
// without instantiating it (the concepts below only look at types).
template <class X>
struct aiter_result {
  using type = X&;
};
template <class X>
requires requires(X& x) { x.aiter(); }
struct aiter_result<X> {
  using type = decltype(std::declval<X&>().aiter());
};

}  // namespace detail

// async_iterator<I> is an asynchronous iterator: an object with an anext()
// member (Python's __anext__). A concept: checked at compile time.
template <class I>
concept async_iterator = requires(I& it) {
  it.anext();
};

// async_iterable<X> is what aiter() takes: an asynchronous iterator, or an
// object whose aiter() member (Python's __aiter__) returns one. A concept:
// checked at compile time.
template <class X>
concept async_iterable =
    async_iterator<std::remove_reference_t<typename detail::aiter_result<std::remove_reference_t<X>>::type>>;

// aiter_range<X> is what aiter() returns: an input range whose begin() and
// ++ await the next item. It holds an lvalue source by reference and a
// temporary one by value, so `for (auto x : aiter(make_gen()))` is safe.
// Exceptions from anext() other than StopAsyncIteration pass through. Not
// thread-safe: iterate it in one task of the source's loop.
template <async_iterable X>
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
  // value_type is the item type anext() produces (unwrapped from std::optional if it returns one).
  using value_type = typename traits::value_type;

  // aiter_range(source) holds source: a reference to an lvalue, a moved copy of a temporary. Throws
  // what moving the source throws. Use the range in one task of the source's loop.
  explicit aiter_range(X&& source) : source_(std::forward<X>(source)) {}

  // iterator is aiter_range's input iterator: each ++ awaits the source's anext(). Used in a task of
  // the source's loop; throws what anext() throws, except StopAsyncIteration, which ends it.
  class iterator {
   public:
    // iterator_concept marks iterator as a C++20 input iterator.
    using iterator_concept = std::input_iterator_tag;
    // value_type is aiter_range::value_type.
    using value_type = aiter_range::value_type;
    // difference_type is std::ptrdiff_t, as input iterators require.
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    // operator*() is the current item, owned by the iterator until the next step. Throws nothing;
    // must not be called at the end.
    value_type& operator*() const { return *current_; }
    // operator->() points at the current item, as operator*().
    value_type* operator->() const { return &*current_; }
    // operator++() awaits the next item with anext(); at its end (nullopt or StopAsyncIteration) the
    // iterator reaches the end. Throws what anext() throws (CancelledError, the source's errors);
    // in a task of the loop thread only.
    iterator& operator++() {
      advance();
      return *this;
    }
    // operator++(int) is ++it, for input-iterator use; returns nothing. Throws as ++it.
    void operator++(int) { advance(); }
    // operator==(it, std::default_sentinel) is true once the source is exhausted. Throws nothing.
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

  // begin() calls aiter() (once) and awaits the first item. Throws what anext() throws, except
  // StopAsyncIteration (an empty range). A task of the source's loop only.
  iterator begin() {
    if constexpr (owns_iter) {
      iter_.emplace(detail::get_aiter(source_));
      return iterator(&*iter_);
    } else {
      return iterator(&detail::get_aiter(source_));
    }
  }
  // end() is the std::default_sentinel_t iterators reach when the source is exhausted. Throws
  // nothing.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  held_type source_;
  std::conditional_t<owns_iter, std::optional<iter_type>, bool> iter_{};
};

// aiter(x) adapts an asynchronous iterable for range-for inside a task:
// `for (auto item : asyncio::aiter(x))` is `async for item in x`. Throws only
// what moving a temporary x throws; iterate in a task of x's loop. An x that
// is not async_iterable does not compile.
template <async_iterable X>
auto aiter(X&& x) {
  return aiter_range<X>(std::forward<X>(x));
}

// anext(x) awaits x's next item as std::optional: nullopt at the end,
// whichever way x.anext() reports it (Python's anext(x, None)). Throws what
// x.anext() throws other than StopAsyncIteration. A task of x's loop only.
template <async_iterator I>
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

#pragma GCC visibility pop
