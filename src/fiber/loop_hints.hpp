// loop_hints.hpp: what an event loop tells its thread's fiber layer.
//
// The loop (src/asyncio) knows when its thread is busy and when it is about
// to wait; the fiber layer's stack pool uses that to keep released stacks'
// pages through a burst of tasks instead of giving them back and faulting
// them in again a moment later (stack_pool::hold_released()).
#pragma once

namespace greenlet::detail {

// hold_released_stacks(true): stacks released on this thread keep their
// pages, past the warm budget too, until trim_released_stacks() or
// hold_released_stacks(false) (which trims). Nothing happens on a thread
// that has not used greenlets.
void hold_released_stacks(bool hold) noexcept;
void trim_released_stacks() noexcept;

}  // namespace greenlet::detail
