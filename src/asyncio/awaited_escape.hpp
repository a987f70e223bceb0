// awaited_escape.hpp: joining a task's traceback to that of the task it awaited, when the
// exception that ends it is the one the awaited task failed with (future_state.cpp).
#pragma once

#include <exception>

#include "greenlet/detail/escape_trace.hpp"

namespace greenlet::asyncio::detail {

// note_rethrown(error, escape) remembers, for this thread, that error, which a task failed with
// (escape its traceback), is being raised again in the running task, which asked for that task's
// result (awaited it): Python's traceback of it goes on growing there. Only the latest is kept,
// and only in a task. Throws nothing (without memory, nothing is remembered).
void note_rethrown(const std::exception_ptr& error, const ::greenlet::detail::escape_trace& escape) noexcept;

// rethrown_noted is true while note_rethrown() keeps something; forget_rethrown() lets go of it.
// A task's step ends with that (task_state::after_step()): what a task caught is not kept alive
// past its step. Throw nothing.
extern constinit thread_local bool rethrown_noted __attribute__((tls_model("initial-exec")));
void forget_rethrown() noexcept;

// take_awaited_escape(error) is the traceback note_rethrown() remembered for error, if error is
// the exception it remembered (then forgotten), else empty. Throws nothing.
::greenlet::detail::escape_trace take_awaited_escape(const std::exception_ptr& error) noexcept;

}  // namespace greenlet::asyncio::detail
