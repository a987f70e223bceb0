// loop_hints.hpp: what an event loop tells its thread's fiber layer.
//
// The loop (src/asyncio) knows when its thread is busy and when it is about
// to wait; the fiber layer's stack pool uses that to keep released stacks'
// pages through a burst of tasks instead of giving them back and faulting
// them in again a moment later (stack_pool::hold_released()). It also asks
// whether a thread is still there to kill its loop's tasks.
#pragma once

#include "greenlet/fiber/greenlet.hpp"

namespace greenlet::detail {

// hold_released_stacks(true): stacks released on this thread keep their
// pages, past the warm budget too, until trim_released_stacks() or
// hold_released_stacks(false) (which trims). Nothing happens on a thread
// that has not used greenlets.
void hold_released_stacks(bool hold) noexcept;
void trim_released_stacks() noexcept;

// this_thread_main() is a handle on this thread's main greenlet (making the
// thread's state if need be): a token for the thread that thread_exited()
// answers about. Throws std::bad_alloc.
::greenlet::greenlet this_thread_main();
// thread_exited(main) is true once main's thread has exited, after killing
// (or reporting and leaking) every greenlet it had: nothing of that thread
// runs again, so what its greenlets referred to may go on any thread.
// Any thread.
bool thread_exited(const ::greenlet::greenlet& main) noexcept;

}  // namespace greenlet::detail
