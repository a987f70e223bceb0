// report_labels.hpp: how reports about a greenlet (a stack overflow, a
// leak) name it and say how to give it a bigger stack, for a plain greenlet,
// a generator's body, or a greenlet with a role (an asyncio task). Defined
// in stack_canary.cpp. Safe in a signal handler: no allocation, no lock.
#pragma once

#include <cstddef>

#include "greenlet/detail/greenlet_impl.hpp"

namespace greenlet::detail {

// write_greenlet_label(g, out, size) writes what g is: `greenlet #N "name"`,
// `Task 'parser-task' (greenlet #N)`, or `a generator's body (greenlet #N)`.
void write_greenlet_label(const greenlet_impl* g, char* out, std::size_t size) noexcept;

// write_stack_advice(g, bigger, guarded, out, size) writes the lines saying
// how to give g a stack of `bigger` bytes (guarded or not), each starting
// with two spaces and ending with a newline.
void write_stack_advice(const greenlet_impl* g, std::size_t bigger, bool guarded, char* out, std::size_t size) noexcept;

}  // namespace greenlet::detail
