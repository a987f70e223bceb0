// loop_hints.hpp: what an event loop tells its thread's fiber layer.
//
// The loop (src/asyncio) knows when its thread is busy and when it is about
// to wait; the fiber layer's stack pool uses that to keep released stacks'
// pages through a burst of tasks instead of giving them back and faulting
// them in again a moment later (stack_pool::hold_released()). It also asks
// whether a thread is still there to kill its loop's tasks, and kills a
// task's greenlet when the loop lets go of it.
#pragma once

#include "greenlet/fiber/greenlet.hpp"

namespace greenlet::detail {

// hold_released_stacks(true): stacks released on this thread keep their
// pages, past the warm budget too, until trim_released_stacks() or
// hold_released_stacks(false) (which trims). Nothing happens on a thread
// that has not used greenlets.
void hold_released_stacks(bool hold) noexcept;
void trim_released_stacks() noexcept;

// set_locked_parent_stand_in(fn): while a loop runs on this thread, a
// greenlet finishing whose parent is resume-locked (a waiting task's
// greenlet, see lock_resume()) goes to fn(parent) instead: the parent cannot
// take the result without its wait being cut short. The loop answers with
// the greenlet that is running on its behalf, the one that resumed the
// child (the task taking its step, or the loop's own greenlet for a
// callback). Null: no stand-in (the parent gets it, as before). Throws nothing.
using locked_parent_stand_in_fn = greenlet_impl* (*)(greenlet_impl* locked_parent) noexcept;
void set_locked_parent_stand_in(locked_parent_stand_in_fn fn) noexcept;

// this_thread_main() is a handle on this thread's main greenlet (making the
// thread's state if need be): a token for the thread that thread_exited()
// answers about. Throws std::bad_alloc.
::greenlet::greenlet this_thread_main();
// thread_exited(main) is true once main's thread has exited, after killing
// (or reporting and leaking) every greenlet it had: nothing of that thread
// runs again, so what its greenlets referred to may go on any thread.
// Any thread.
bool thread_exited(const ::greenlet::greenlet& main) noexcept;

// unwind_now(g) kills g at once if it is a suspended greenlet of this thread:
// GreenletExit is thrown in and comes back here, as when its last handle goes
// away, but whatever else still refers to it. Dropping the handle is not
// enough for a task: a generator or child greenlet made on the task's stack
// points back at the task's greenlet as its parent, a cycle that keeps it
// suspended until thread exit. True if nothing of g runs again (it is dead or
// unstarted, or its thread has exited); false if it still may: it is running
// or being killed already, is an ancestor of the running greenlet (its
// parent chain), belongs to another live thread, or caught
// GreenletExit and switched away instead of finishing. Throws nothing (what
// its unwinding throws is reported as unraisable).
bool unwind_now(const ::greenlet::greenlet& g) noexcept;

}  // namespace greenlet::detail
