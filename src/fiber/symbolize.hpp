// symbolize.hpp: names, files and lines for code addresses (greenlet::get_stack()).
#pragma once

#include <cstddef>
#include <cstdint>

#include "greenlet/fiber/stack_trace.hpp"

namespace greenlet::detail {

// symbolize(pcs, count) is the frames at pcs (newest first, each the address of a call or of the
// instruction a frame is at), oldest first: a frame for each function inlined at an address
// besides the one it is in. Names and lines come from the binary's symbols and debug information
// through GCC's libbacktrace where the library was built with it, else from dladdr(). Throws
// std::bad_alloc.
stack_summary symbolize(const std::uintptr_t* pcs, std::size_t count);

}  // namespace greenlet::detail
