// object_cache.hpp: a thread's cache of freed greenlet objects, which the
// next greenlets made on the thread reuse (allocate_greenlet() and
// free_greenlet() in greenlet_impl.hpp).
//
// Why: creating and finishing a greenlet is a hundred nanoseconds, and
// malloc and free were an eighth of it (glibc's per-thread cache checks and
// links more than a pop and a push). Making greenlets in bursts (a gather
// of a thousand tasks) also runs past glibc's cache of 7 blocks per size.
// Standard headers only: a white-box test includes it by path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <utility>

namespace greenlet::detail {

class object_cache {
 public:
  // Objects of up to max_bytes are cached, by size class of `granule` bytes;
  // at most budget() bytes are held per thread (default_budget_bytes unless
  // GREENLET_OBJECT_CACHE_BYTES says otherwise when the thread starts using
  // greenlets; 0 turns the cache off), the rest go back to malloc.
  static constexpr std::size_t granule = 32;
  static constexpr std::size_t max_bytes = 1024;
  static constexpr std::size_t default_budget_bytes = std::size_t{256} << 10;

  object_cache() = default;
  object_cache(const object_cache&) = delete;
  object_cache& operator=(const object_cache&) = delete;
  ~object_cache() { drain(); }

  // take(bytes) is a cached object of bytes' size class, or null.
  void* take(std::size_t bytes) noexcept {
    const std::size_t cls = class_of(bytes);
    free_object* object = heads_[cls];
    if (object == nullptr) return nullptr;
    heads_[cls] = object->next;
    held_ -= class_bytes(cls);
    return object;
  }
  // give(p, bytes) keeps p for reuse and says so, or says it would go past
  // the budget (the caller frees it).
  bool give(void* p, std::size_t bytes) noexcept {
    const std::size_t cls = class_of(bytes);
    if (held_ + class_bytes(cls) > budget_) return false;
    auto* object = static_cast<free_object*>(p);
    object->next = heads_[cls];
    heads_[cls] = object;
    held_ += class_bytes(cls);
    return true;
  }
  // drain() frees every cached object.
  void drain() noexcept {
    for (free_object*& head : heads_) {
      while (head != nullptr) std::free(std::exchange(head, head->next));
    }
    held_ = 0;
  }
  std::size_t held_bytes() const noexcept { return held_; }
  std::size_t budget() const noexcept { return budget_; }
  // set_budget(bytes): what is held past the new budget is freed now.
  void set_budget(std::size_t bytes) noexcept {
    budget_ = bytes;
    if (held_ > budget_) drain();
  }

  // class_bytes(class_of(n)) is what an object of n bytes is allocated as,
  // so that any object of a class fits any request of that class.
  static constexpr std::size_t class_of(std::size_t bytes) noexcept { return (bytes - 1) / granule; }
  static constexpr std::size_t class_bytes(std::size_t cls) noexcept { return (cls + 1) * granule; }

 private:
  struct free_object {
    free_object* next;
  };
  std::array<free_object*, max_bytes / granule> heads_{};
  std::size_t held_ = 0;
  std::size_t budget_ = default_budget_bytes;
};

}  // namespace greenlet::detail
