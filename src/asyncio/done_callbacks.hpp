// done_callbacks.hpp: the fast done callbacks that stand for one of asyncio's
// own, so that future_state::callbacks_repr() names them as asyncio's repr
// does (cb=[TaskGroup._on_task_done()]). Internal to src/asyncio.
#pragma once

namespace greenlet::asyncio::detail {

// task_group_child_done(group, child) is a TaskGroup's callback on each child
// (taskgroup.cpp), asyncio's TaskGroup._on_task_done.
void task_group_child_done(void* group, void* child);
// run_until_complete_done(loop, future) stops the loop once run_until_complete()'s future is done
// (event_loop.cpp), asyncio's _run_until_complete_cb.
void run_until_complete_done(void* loop, void* future);

}  // namespace greenlet::asyncio::detail
