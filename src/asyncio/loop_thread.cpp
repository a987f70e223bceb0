// loop_thread.cpp: which thread a loop belongs to, and what happens to a
// loop dropped on another one.
//
// A loop belongs to the thread that made it. Its tasks are that thread's
// greenlets: only that thread may kill them, and killing one unwinds its
// stack, which writes into the task's state and the loop. So a loop is
// closed (its tasks killed, its memory freed) on its thread, or anywhere once
// that thread has exited (its exit killed the tasks first). A loop dropped
// on another thread while its own still lives is handed to its own, which
// closes it at exit.
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fiber/loop_hints.hpp"
#include "fiber/malloc_allocator.hpp"
#include "greenlet/asyncio/errors.hpp"
#include "greenlet/detail/loop_core.hpp"

namespace greenlet::asyncio::detail {

// this_thread_number() numbers threads in the order they first ask, from 1.
// Not std::thread::id: the system reuses those once a thread exits, and a
// loop of the exited thread would be taken for the new one's. A plain
// thread_local: it still reads right during thread exit, when other
// thread_locals (the fiber layer's state, a current loop) are destroyed.
constinit thread_local std::uint64_t tls_loop_thread_number = 0;

std::uint64_t this_thread_number() noexcept {
  static std::atomic<std::uint64_t> next{1};
  if (tls_loop_thread_number == 0) tls_loop_thread_number = next.fetch_add(1, std::memory_order_relaxed);
  return tls_loop_thread_number;
}

// loop_thread is one thread that made loops: its number, its main greenlet
// (which tells whether it has exited) and the loops dropped on other threads
// for it to close at exit. Shared by its loops and by the thread itself.
struct loop_thread {
  std::uint64_t number = this_thread_number();
  ::greenlet::greenlet main = ::greenlet::detail::this_thread_main();
  std::mutex mutex;
  bool exiting = false;             // guarded by mutex
  std::vector<loop_core*> orphans;  // guarded by mutex; each with the facade's reference
};

namespace {

void close_orphans(std::vector<loop_core*>& orphans) noexcept {
  for (loop_core* loop : orphans) {
    // Its facade is gone: the reports of its pending tasks go to the
    // default handler, not to one expecting the facade.
    loop->handler = nullptr;
    try {
      loop->close();
    } catch (...) {
      ::greenlet::report_unraisable(std::current_exception(), "closing an event loop dropped on another thread");
    }
    release(loop);
  }
}

// The thread's own reference to its loop_thread. Its destructor, at thread
// exit, closes the loops handed to the thread: on the thread, as their tasks
// need, whether the fiber layer has killed those tasks already or not.
struct thread_holder {
  std::shared_ptr<loop_thread> thread;
  ~thread_holder() {
    if (!thread) return;
    std::vector<loop_core*> orphans;
    {
      std::lock_guard<std::mutex> lock(thread->mutex);
      thread->exiting = true;
      orphans.swap(thread->orphans);
    }
    close_orphans(orphans);
  }
};

// Nothing of the owner thread refers to the loop: no task (a greenlet of
// that thread), no future or other reference but the facade's, no close
// hook (they undo per-thread signal state). It may then be closed anywhere.
bool untouched_by_owner(const loop_core* loop) noexcept {
  return !loop->running && loop->task_count == 0 && loop->refs == 1 && loop->close_hooks.empty() &&
         loop->loop_sides == nullptr;
}

// hand_to_owner() queues loop for its thread to close at exit; false if that
// thread is exiting already and will not look again.
bool hand_to_owner(loop_core* loop) {
  std::lock_guard<std::mutex> lock(loop->owner->mutex);
  if (loop->owner->exiting) return false;
  loop->owner->orphans.push_back(loop);
  return true;
}

}  // namespace

// A thread's loop_thread lives as long as the thread (or its last loop), so
// it is malloc'd (malloc_allocator.hpp), as the stack pool is.
std::shared_ptr<loop_thread> this_loop_thread() {
  thread_local thread_holder holder;
  if (!holder.thread)
    holder.thread = std::allocate_shared<loop_thread>(::greenlet::detail::malloc_allocator<loop_thread>());
  return holder.thread;
}

bool loop_core::on_owner_thread() const noexcept { return owner->number == this_thread_number(); }

bool loop_core::owner_exited() const noexcept { return ::greenlet::detail::thread_exited(owner->main); }

void loop_core::check_close_thread() const {
  if (on_owner_thread() || owner_exited()) return;
  throw RuntimeError(asyncio_errc::wrong_loop,
                     "close() from a thread other than the event loop's: close the loop on its own "
                     "thread (its tasks are that thread's greenlets), e.g. after run_forever() returns "
                     "there");
}

void drop_elsewhere(loop_core* loop) noexcept {
  if (untouched_by_owner(loop)) {
    loop->close();
    release(loop);
    return;
  }
  const std::string what = "event loop dropped on a thread other than its own while it has " +
                           std::to_string(loop->task_count) + " unfinished task(s) or other references; ";
  const std::string fix = ": close() the loop on its own thread before dropping it elsewhere";
  bool handed = false;
  try {
    handed = hand_to_owner(loop);
  } catch (...) {
  }
  if (handed) {
    ::greenlet::report_unraisable(nullptr, what + "its thread closes it when it exits" + fix);
    return;
  }
  // Its thread is exiting: once it has killed the tasks, any thread may
  // close the loop; before, freeing it would free what they unwind into.
  if (loop->owner_exited()) {
    loop->close();
    release(loop);
    return;
  }
  ::greenlet::report_unraisable(nullptr, what + "its thread is exiting, so the loop and its tasks are leaked" + fix);
}

}  // namespace greenlet::asyncio::detail
