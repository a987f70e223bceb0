// value_repr.cpp: the parts of Python's repr() of a value that are not
// templates (include/greenlet/detail/value_repr.hpp): a float's repr and
// reprlib's cuts, which count code points, not bytes.
#include "greenlet/detail/value_repr.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

#include "asyncio/utf8.hpp"

namespace greenlet::asyncio::detail {

namespace {

// float_repr(x) formats the shortest digits of x (a float's or a double's, as
// to_chars chooses them for its type) the way Python's repr() of a float
// lays them out.
template <class Float>
std::string float_repr(Float x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, x, std::chars_format::scientific).ptr;
  // "-d.ddde+XX": the sign, the digits without the point, the exponent.
  const std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
  const std::size_t e_at = text.find('e');
  std::string out;
  std::size_t at = 0;
  if (text[0] == '-') out += '-', at = 1;
  std::string digits;
  for (std::size_t i = at; i < e_at; ++i) {
    if (text[i] != '.') digits += text[i];
  }
  const int exponent = std::atoi(std::string(text.substr(e_at + 1)).c_str());
  // Python's repr ('r' format) is fixed from 1e-4 up to, not including, 1e16.
  if (exponent >= 16 || exponent < -4) {
    out += digits[0];
    if (digits.size() > 1) out += '.', out.append(digits, 1);
    out += exponent < 0 ? "e-" : "e+";
    const int magnitude = std::abs(exponent);
    if (magnitude < 10) out += '0';
    out += std::to_string(magnitude);
  } else if (exponent < 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-exponent - 1), '0');
    out += digits;
  } else {
    const auto whole = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= whole) {
      out += digits;
      out.append(whole - digits.size(), '0');
      out += ".0";
    } else {
      out.append(digits, 0, whole);
      out += '.';
      out.append(digits, whole);
    }
  }
  return out;
}

std::size_t code_points(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); i = next_code_point(text, i)) ++count;
  return count;
}

// byte_offset(text, n) is where text's n-th code point starts (its size past the last).
std::size_t byte_offset(std::string_view text, std::size_t n) {
  std::size_t i = 0;
  for (; n > 0 && i < text.size(); --n) i = next_code_point(text, i);
  return i;
}

// python_tail(text, length, j) is Python's text[len(text) - j:]: the last j
// code points, and when j exceeds the length, a negative start counted from
// the end once more (clamped at 0), as Python slices.
std::string_view python_tail(std::string_view text, std::size_t length, std::size_t j) {
  std::size_t start = 0;
  if (j <= length) {
    start = length - j;
  } else if (2 * length > j) {
    start = 2 * length - j;
  }
  return text.substr(byte_offset(text, start));
}

}  // namespace

std::string python_float_repr(double x) { return float_repr(x); }
std::string python_float_repr(float x) { return float_repr(x); }

std::string shorten_repr(std::string text, std::size_t max) {
  const std::size_t length = code_points(text);
  if (length <= max) return text;
  const std::size_t i = max >= 3 ? (max - 3) / 2 : 0;
  const std::size_t j = max >= 3 + i ? max - 3 - i : 0;
  std::string out = text.substr(0, byte_offset(text, i));
  out += "...";
  out += python_tail(text, length, j);
  return out;
}

std::string reprlib_str_repr(std::string_view text) {
  constexpr std::size_t max = reprlib_repr.string;
  std::string quoted = python_str_repr(text.substr(0, byte_offset(text, max)));
  if (code_points(quoted) <= max) return quoted;
  constexpr std::size_t i = (max - 3) / 2;
  constexpr std::size_t j = max - 3 - i;
  std::string kept(text.substr(0, byte_offset(text, i)));
  kept += python_tail(text, code_points(text), j);
  quoted = python_str_repr(kept);
  std::string out = quoted.substr(0, byte_offset(quoted, i));
  out += "...";
  out += python_tail(quoted, code_points(quoted), j);
  return out;
}

}  // namespace greenlet::asyncio::detail
