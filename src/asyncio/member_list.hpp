// member_list.hpp: the bounded listing of an ExceptionGroup's members, shared by its what() and its
// repr(), and of a queue's items in its repr(). A group of 100,000 failed tasks must not build a
// message of megabytes: like CPython's traceback, which prints at most 15 sub-exceptions then "and
// N more exceptions", it lists the first few and counts the rest.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace greenlet::asyncio::detail {

// At most this many members are listed (CPython's traceback max_group_width)...
inline constexpr std::size_t max_members_listed = 15;
// ...and no more than about this many characters of them: a member that would go past it is left
// to the count, except the first, which is cut (at a UTF-8 boundary) and ends with "...".
inline constexpr std::size_t max_member_list_chars = 2000;

// indices{n} is 0, 1, ..., n - 1 as a sized range: bounded_member_list() over members reached by
// index. (std::views::iota would do, but clang before 16, the clang pass's compiler, cannot
// compile libstdc++ 12's.)
struct indices {
  struct iterator {
    std::size_t i;
    std::size_t operator*() const noexcept { return i; }
    iterator& operator++() noexcept {
      ++i;
      return *this;
    }
    bool operator==(const iterator&) const noexcept = default;
  };
  std::size_t n;
  iterator begin() const noexcept { return {0}; }
  iterator end() const noexcept { return {n}; }
  std::size_t size() const noexcept { return n; }
};

// bounded_member_list(members, separator, describe) is describe(m) of the first members (any sized
// range), joined by separator, then "... and N more" + more_suffix(N) for those left out. describe
// runs only for the members listed (and one more). Throws what describe throws and std::bad_alloc.
template <class Members, class Describe, class MoreSuffix>
std::string bounded_member_list(const Members& members, std::string_view separator, Describe describe,
                                MoreSuffix more_suffix) {
  std::string out;
  std::size_t listed = 0;
  for (const auto& e : members) {
    if (listed == max_members_listed) break;
    std::string text = describe(e);
    if (listed == 0) {
      if (text.size() > max_member_list_chars) {
        std::size_t cut = max_member_list_chars;
        // Back off UTF-8 continuation bytes (10xxxxxx): never cut a code point in two.
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        text.resize(cut);
        text += "...";
      }
    } else if (out.size() + separator.size() + text.size() > max_member_list_chars) {
      break;
    } else {
      out += separator;
    }
    out += text;
    ++listed;
  }
  if (listed < members.size()) {
    const std::size_t more = members.size() - listed;
    if (listed > 0) out += separator;
    out += "... and " + std::to_string(more) + " more" + more_suffix(more);
  }
  return out;
}

}  // namespace greenlet::asyncio::detail
