// escape_trace.hpp: where an exception left a call from, for a failed task's traceback
// (src/fiber/escape_trace.cpp says how it is recorded). Internal; users never include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

namespace greenlet::detail {

// escape_trace holds the return addresses of the frames an exception passed through on its way
// out of a call (call_recording_escape()), newest first: the throw, then its callers. Empty when
// nothing left the call, or the trace could not be taken. Move-only, one pointer.
class escape_trace {
 public:
  escape_trace() noexcept = default;

  bool empty() const noexcept { return block_ == nullptr; }
  std::span<const std::uintptr_t> pcs() const noexcept {
    if (block_ == nullptr) return {};
    const std::size_t count = block_[0];
    return {block_.get() + 1, count};
  }
  // adopt(block) takes a std::malloc()'d block: the count, then that many addresses.
  void adopt(std::uintptr_t* block) noexcept { block_.reset(block); }

 private:
  struct free_block {
    void operator()(std::uintptr_t* block) const noexcept { std::free(block); }
  };
  std::unique_ptr<std::uintptr_t[], free_block> block_;
};

}  // namespace greenlet::detail
