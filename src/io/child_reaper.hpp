// child_reaper.hpp: reaping the children whose Process went away first.
#pragma once

#include <sys/types.h>

namespace greenlet::asyncio::detail {

// reap_when_exited(pid, pidfd) takes over child pid, whose Process is being
// destroyed before it was reaped, with its pidfd (-1 if it has none): the
// child is reaped once it exits and the pidfd closed then, as asyncio's
// child watchers reap a child nobody waits for. Without it the child stays
// a zombie for as long as this process lives (the common port of
// `wait_for(p.communicate(), t)`, `kill()` on TimeoutError, then dropping
// the Process left one per timeout).
//
// A process-wide thread does it, started on demand and ending when it has
// nothing left to reap, so it works with or without a loop, before or after
// the loop closes, and never blocks one. It reaps this child only: with
// waitid(P_PIDFD) on the pidfd, or (no pidfd, or a kernel before 5.4)
// waitpid(pid), which is safe because the pid cannot be reused before this
// very reap. The caller must neither reap pid nor use pidfd afterwards.
// Any thread; never blocks; throws nothing (out of memory or threads, the
// child is left unreaped, as before).
void reap_when_exited(pid_t pid, int pidfd) noexcept;

}  // namespace greenlet::asyncio::detail
