// escape_trace.hpp: recording where an exception left a call from (a failed task's traceback).
#pragma once

#include <cstddef>

#include "greenlet/detail/escape_trace.hpp"
#include "greenlet/fiber/stack_trace.hpp"

namespace greenlet::detail {

// call_recording_escape(fn, arg, trace) calls fn(arg) and lets what it throws through, having
// recorded in trace the frames the exception left fn from (from the throw to fn's own frame),
// before any of them unwound: what a Python exception's __traceback__ holds. Nothing is recorded
// where fn catches it, and nothing costs anything unless an exception leaves fn. Without room on
// the stack for the unwinder's walk (stack_read_room), or memory for the addresses, the trace
// stays empty. x86-64 ELF only; elsewhere fn(arg) is called plainly and nothing is recorded.
void call_recording_escape(void (*fn)(void*), void* arg, escape_trace& trace);

// append_outer(inner, outer) makes inner the whole trace of an exception that left a call recorded
// in inner, was caught and rethrown by its caller (or rethrown later, from an exception_ptr), and
// then left a call further out, recorded in outer: inner's frames, a 0 between, then outer's. Each
// part's plumbing is left out on its own (escape_stack()). Without memory, inner stays as it was.
// Throws nothing.
void append_outer(escape_trace& inner, const escape_trace& outer) noexcept;

// copy_of(trace) is a copy of trace; empty without memory. Throws nothing.
escape_trace copy_of(const escape_trace& trace) noexcept;

// escape_stack(trace, limit) is trace as frames, oldest first, named as get_stack() names them and
// with the same plumbing left out at both ends (the unwinder's and the C++ runtime's throw at the
// newest); a part that is all plumbing is left out whole. limit keeps the oldest frames, as a
// Python traceback's limit does (stack_trace.cpp).
// Throws std::bad_alloc.
stack_summary escape_stack(const escape_trace& trace, std::size_t limit);

}  // namespace greenlet::detail
