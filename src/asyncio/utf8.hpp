// utf8.hpp: reading UTF-8 one code point at a time, for Python's repr() of a
// str (python_repr.cpp) and reprlib's cuts, which count code points (value_repr.cpp).
#pragma once

#include <cstddef>
#include <string_view>

namespace greenlet::asyncio::detail {

// decode_utf8(text, i) is the code point of the well-formed UTF-8 sequence
// at text[i], advancing i past it; -1 (i unmoved) for a malformed one.
inline long decode_utf8(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  char32_t c = 0;
  char32_t smallest = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, c = lead & 0x1F, smallest = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, c = lead & 0x0F, smallest = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, c = lead & 0x07, smallest = 0x10000;
  } else {
    return -1;
  }
  if (i + length > text.size()) return -1;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return -1;
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  if (c < smallest || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return -1;
  i += length;
  return static_cast<long>(c);
}

// next_code_point(text, i) is where the code point at text[i] ends: a malformed
// byte counts as one, as python_str_repr() shows it as one \xhh.
inline std::size_t next_code_point(std::string_view text, std::size_t i) {
  std::size_t next = i;
  return decode_utf8(text, next) < 0 ? i + 1 : next;
}

}  // namespace greenlet::asyncio::detail
