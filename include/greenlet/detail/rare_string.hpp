// rare_string.hpp: a string member most objects leave empty, at the size of
// one pointer. Internal; users never include it.
//
// A task's cancel message and the name its failure report gives are set on
// few tasks, and a std::string costs 32 bytes empty: three of them took 72
// bytes of every task's state, which 100,000 suspended tasks keep resident
// (docs/asyncio.md, "Compact tasks").
#pragma once

#include <memory>
#include <string>
#include <utility>

namespace greenlet::asyncio::detail {

// rare_string holds a string on the heap, or nothing while it is empty.
class rare_string {
 public:
  rare_string() noexcept = default;
  rare_string(const rare_string& other) : text_(other.empty() ? nullptr : std::make_unique<std::string>(other.str())) {}
  rare_string(rare_string&&) noexcept = default;
  rare_string& operator=(const rare_string& other) { return *this = other.str(); }
  rare_string& operator=(rare_string&&) noexcept = default;
  ~rare_string() = default;

  // Assigning "" frees the text. Throws only std::bad_alloc.
  rare_string& operator=(std::string text) {
    if (text.empty()) {
      text_.reset();
    } else if (text_ != nullptr) {
      *text_ = std::move(text);
    } else {
      text_ = std::make_unique<std::string>(std::move(text));
    }
    return *this;
  }

  bool empty() const noexcept { return text_ == nullptr; }
  const std::string& str() const noexcept { return text_ != nullptr ? *text_ : empty_text(); }
  operator const std::string&() const noexcept { return str(); }

 private:
  static const std::string& empty_text() noexcept {
    static const std::string none;
    return none;
  }
  std::unique_ptr<std::string> text_;
};

}  // namespace greenlet::asyncio::detail
