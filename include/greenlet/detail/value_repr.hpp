// value_repr.hpp: Python's repr() of a C++ value, for the repr() of futures,
// tasks (`result=...`, through reprlib as asyncio) and queues (`_queue=[...]`).
// Internal; users never include it.
#pragma once

#include <charconv>
#include <climits>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ostream>
#include <ranges>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio::detail {

// python_str_repr(text) is Python's repr() of the str `text` (UTF-8): quoted as Python chooses
// (single quotes, double ones for a text with a single quote and no double quote), with the
// backslash, the quote, control characters and the code points Python deems unprintable escaped
// (\\, \', \n, \x01, \xa0, \u2028...); bytes that are not UTF-8 show as \xhh. Throws only
// std::bad_alloc.
std::string python_str_repr(std::string_view text);
// python_float_repr(x) is Python's repr() of a float: the shortest digits that read back as x,
// fixed from 1e-4 up to 1e16 ("0.1", "2.0", "1000000000000000.0"), else in exponent form ("1e-05",
// "1.5e+16"); "inf", "-inf", "nan", "-0.0". A float's digits are the shortest for a float ("0.1",
// not Python's "0.10000000149011612" of the widened value). Throws only std::bad_alloc.
std::string python_float_repr(double x);
std::string python_float_repr(float x);
// shorten_repr(text, max) is reprlib's cut of a repr longer than `max` code points: its first
// (max - 3) / 2 code points, "...", and as many of its last as make `max`. Throws only std::bad_alloc.
std::string shorten_repr(std::string text, std::size_t max);
// reprlib_str_repr(text) is reprlib.repr() of the str `text`: python_str_repr() of it when that
// is at most 30 code points, else of its first 13 and last 14 code points, cut to 30 with "..."
// in the middle ("'xxxxxxxxxxxx...xxxxxxxxxxxxx'"). Throws only std::bad_alloc.
std::string reprlib_str_repr(std::string_view text);

// repr_limits are reprlib.Repr's limits (reprlib.repr() is what asyncio prints a future's result
// with); builtins_repr has none, as Python's repr().
struct repr_limits {
  int level;                           // nesting below which a non-empty container prints as "..."
  std::size_t tuple, list, dict, set;  // items shown before "..."
  std::size_t string, integer, other;  // code points of a str's, an int's, another's repr
};
inline constexpr std::size_t repr_unlimited = static_cast<std::size_t>(-1);
inline constexpr repr_limits builtins_repr{INT_MAX,        repr_unlimited, repr_unlimited, repr_unlimited,
                                           repr_unlimited, repr_unlimited, repr_unlimited, repr_unlimited};
inline constexpr repr_limits reprlib_repr{6, 6, 6, 4, 6, 30, 40, 30};

namespace value_repr_detail {

template <class T, template <class...> class Template>
inline constexpr bool is_specialization = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_specialization<Template<Args...>, Template> = true;

template <class T>
concept string_like = std::is_convertible_v<const T&, std::string_view> && !std::is_same_v<T, std::nullptr_t>;
template <class T>
concept streamable = requires(std::ostream& os, const T& v) {
  os << v;
};
// A type of this library with a repr() (Future, Task, a queue, a lock) prints as that.
template <class T>
concept has_repr = requires(const T& v) {
  { v.repr() } -> std::convertible_to<std::string>;
};
template <class T>
concept sequence = std::ranges::forward_range<const T>;
template <class T>
concept mapping = sequence<T> && requires {
  typename T::key_type;
  typename T::mapped_type;
};
template <class T>
concept set_like = sequence<T> && requires {
  typename T::key_type;
} && !mapping<T>;
// A range whose items are itself (std::filesystem::path when no operator<< is visible) would
// never end: it prints as an unknown type.
template <class T>
concept self_nested = sequence<T> && std::is_same_v<std::remove_cvref_t<std::ranges::range_value_t<const T>>, T>;

inline std::string cut(std::string text, std::size_t max) {
  return max == repr_unlimited ? text : shorten_repr(std::move(text), max);
}

}  // namespace value_repr_detail

template <class T>
std::string repr_value(const T& value, const repr_limits& limits = builtins_repr, int level = -1);

namespace value_repr_detail {

// items_repr is reprlib's _repr_iterable for a list, a set or a dict: "left item, item, ... right",
// "..." for the items of a non-empty container past the nesting limit (tuple_repr() is a tuple's).
template <class Range, class Item>
std::string items_repr(const Range& range, std::size_t count, int level, std::string_view left, std::string_view right,
                       std::size_t max_items, Item item) {
  std::string out(left);
  if (level <= 0 && count > 0) {
    out += "...";
  } else {
    std::size_t shown = 0;
    for (const auto& element : range) {
      if (shown == max_items) break;
      if (shown++ > 0) out += ", ";
      out += item(element, level - 1);
    }
    if (count > max_items) out += ", ...";
  }
  out += right;
  return out;
}

template <class Tuple, std::size_t... I>
std::string tuple_repr(const Tuple& t, const repr_limits& limits, int level, std::index_sequence<I...>) {
  constexpr std::size_t count = sizeof...(I);
  std::string out = "(";
  if (level <= 0 && count > 0) {
    out += "...";
  } else {
    std::size_t index = 0;
    [[maybe_unused]] const auto add = [&](const auto& element) {  // unused for an empty tuple
      if (index < limits.tuple) {
        if (index > 0) out += ", ";
        out += repr_value(element, limits, level - 1);
      }
      ++index;
    };
    (add(std::get<I>(t)), ...);
    if (count > limits.tuple) out += ", ...";
    if (count == 1) out += ',';
  }
  out += ')';
  return out;
}

}  // namespace value_repr_detail

// repr_value(value) is Python's repr() of the value a C++ type stands for: a string as a str
// ('abc'), a char as a one-character str, bool True/False, a number as Python prints an int or a
// float, nullptr, std::nullopt, std::monostate and an empty optional as None, an optional or a
// variant as what it holds, a pair or a tuple as a tuple ("(1, 'a')", "(1,)"), a type with an
// repr() member (a Future, a Task, a queue, a lock) or an operator<< through it, then a map as a dict ("{1: 'a'}"), a
// set as a set ("{1, 2}", "set()") and any other range as a list ("[1, 2]"); a type that is none of these as "<value>".
// With reprlib_repr's limits it is reprlib.repr() (what asyncio prints a result with): containers cut after a few items
// and six levels, strings after 30 code points. Throws what an operator<< throws and std::bad_alloc.
template <class T>
std::string repr_value(const T& value, const repr_limits& limits, int level) {
  using namespace value_repr_detail;
  if (level < 0) level = limits.level;
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "True" : "False";
  } else if constexpr (std::is_same_v<T, char>) {
    const std::string_view one(&value, 1);
    return limits.string == repr_unlimited ? python_str_repr(one) : reprlib_str_repr(one);
  } else if constexpr (std::is_integral_v<T>) {
    // signed/unsigned char and the other character types are numbers here, as Python's int.
    using wide = std::conditional_t<(sizeof(T) > sizeof(long long)), T,
                                    std::conditional_t<std::is_signed_v<T>, long long, unsigned long long>>;
    char buffer[48];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, static_cast<wide>(value)).ptr;
    return cut(std::string(buffer, end), limits.integer);
  } else if constexpr (std::is_floating_point_v<T>) {
    if constexpr (std::is_same_v<T, float>) {
      return python_float_repr(value);
    } else {
      return python_float_repr(static_cast<double>(value));
    }
  } else if constexpr (std::is_same_v<T, std::nullptr_t> || std::is_same_v<T, std::nullopt_t> ||
                       std::is_same_v<T, std::monostate>) {
    return "None";
  } else if constexpr (string_like<T>) {
    if constexpr (std::is_pointer_v<T>) {
      if (value == nullptr) return "None";
    }
    const std::string_view text(value);
    return limits.string == repr_unlimited ? python_str_repr(text) : reprlib_str_repr(text);
  } else if constexpr (is_specialization<T, std::optional>) {
    return value ? repr_value(*value, limits, level) : "None";
  } else if constexpr (is_specialization<T, std::variant>) {
    if (value.valueless_by_exception()) return "<value>";
    return std::visit([&](const auto& held) { return repr_value(held, limits, level); }, value);
  } else if constexpr (is_specialization<T, std::pair> || is_specialization<T, std::tuple>) {
    return tuple_repr(value, limits, level, std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (has_repr<T>) {
    return cut(value.repr(), limits.other);
  } else if constexpr (streamable<T>) {
    std::ostringstream out;
    out << value;
    return cut(std::move(out).str(), limits.other);
  } else if constexpr (self_nested<T>) {
    return "<value>";
  } else if constexpr (mapping<T>) {
    const auto count = static_cast<std::size_t>(std::ranges::distance(value));
    if (count == 0) return "{}";
    if (level <= 0) return "{...}";
    return items_repr(value, count, level, "{", "}", limits.dict, [&](const auto& entry, int inner) {
      return repr_value(entry.first, limits, inner) + ": " + repr_value(entry.second, limits, inner);
    });
  } else if constexpr (sequence<T>) {
    const auto count = static_cast<std::size_t>(std::ranges::distance(value));
    const bool set = set_like<T>;
    if (set && count == 0) return "set()";
    return items_repr(value, count, level, set ? "{" : "[", set ? "}" : "]", set ? limits.set : limits.list,
                      [&](const auto& item, int inner) { return repr_value(item, limits, inner); });
  } else {
    return "<value>";
  }
}

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
