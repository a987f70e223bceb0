// done_callbacks.hpp: the fast done callbacks that stand for one of asyncio's
// own, so that future_state::callbacks_repr() names them as asyncio's repr
// does (cb=[TaskGroup._on_task_done()]), and the call graph sees who waits
// through them. Internal to src/asyncio.
#pragma once

namespace greenlet::asyncio::detail {

// task_group_child_done(group, child) is a TaskGroup's callback on each child
// (taskgroup.cpp), asyncio's TaskGroup._on_task_done.
void task_group_child_done(void* group, void* child);
// run_until_complete_done(loop, future) stops the loop once run_until_complete()'s future is done
// (event_loop.cpp), asyncio's _run_until_complete_cb.
void run_until_complete_done(void* loop, void* future);

class task_state;
// What the call graph (call_graph.cpp) reads of those callbacks: task_group_parent(group) is the
// task a TaskGroup belongs to, which awaits each of its unfinished tasks (taskgroup.cpp);
// wait_link_waiter(fn, ctx) is the task waiting inside gather() or wait() that the child callback
// (fn, ctx) reports to, null if it is no such callback or that wait is over (waiting.cpp).
// Throw nothing.
task_state* task_group_parent(void* group) noexcept;
task_state* wait_link_waiter(void (*fn)(void*, void*), void* ctx) noexcept;

}  // namespace greenlet::asyncio::detail
