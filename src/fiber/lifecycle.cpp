// lifecycle.cpp: how a greenlet joins its thread and how it goes away.
//
// The rules, after Python's greenlet: the last handle to an unstarted or dead
// greenlet frees it; the last handle to a suspended one kills it first
// (GreenletExit thrown in, parent temporarily set to the killer, so control
// comes back); the last handle to the running one defers that until it
// switches away. A handle dropped on another thread mails the greenlet to its
// owner, which handles it on its next getcurrent() or greenlet creation, or
// at thread exit; the foreign thread never touches the stack.
#include <string>
#include <utility>

#include "fiber/loop_hints.hpp"
#include "fiber/report_labels.hpp"
#include "fiber/stack_copy.hpp"
#include "fiber/thread_state.hpp"

namespace greenlet::detail {

void adopt_new(greenlet_impl* self, greenlet_impl* parent, const stack_options& stack) {
  thread_state& ts = state();
  if (ts.has_mail.load(std::memory_order_acquire)) ts.process_mail();
  if (parent == nullptr) {
    parent = ts.current;
  } else if (owner_of(parent) != &ts) {
    self->ops->dispose(self);
    throw ::greenlet::error(errc::wrong_thread,
                            "parent cannot be on a different thread: make the greenlet on the "
                            "parent's thread");
  }
  retain(parent);
  self->parent = parent;
  self->stack_opts = stack;
  self->shared_stack = resolve_stack_mode(ts, stack) == stack_mode::shared;
  self->owner.store(&ts, std::memory_order_relaxed);
  self->id = (ts.thread_index << 40) | ts.next_id++;
  ts.link(self);
}

namespace {

// Freeing a greenlet drops its reference to its parent, which may free the
// parent (or kill it, then free it), and so on up the chain: done by
// recursion, a chain of N unreferenced greenlets took N nested
// dispose/release/kill frames, and a few thousand overflowed a greenlet's
// stack. Instead the first dispose() on this stack frees greenlets in a loop,
// and a dispose() nested in it (from the parent release of one it freed)
// only queues its greenlet for that loop. The queue is linked through
// registry_next, free once a greenlet is out of its thread's registry.
//
// A kill switches to its victim, which may run any code (and free greenlets)
// before it comes back, if it ever does: kill() gives the victim a queue of
// its own and restores the killer's when control returns.
struct disposal_queue {
  greenlet_impl* head = nullptr;
  greenlet_impl* tail = nullptr;
  bool draining = false;
};
// Not thread_state's: a greenlet whose thread has exited is freed on any
// thread, greenlet-using or not.
constinit thread_local disposal_queue disposals __attribute__((tls_model("initial-exec")));

// free_now(g) deletes g and drops its reference to its parent.
void free_now(greenlet_impl* g) noexcept {
  greenlet_impl* parent = g->parent;
  g->parent = nullptr;
  g->ops->dispose(g);
  if (parent != nullptr) release(parent);
}

}  // namespace

void dispose(thread_state* ts, greenlet_impl* g) noexcept {
  if (ts != nullptr && owner_of(g) == ts) ts->unlink(g);
  disposal_queue& queue = disposals;
  g->registry_next = nullptr;
  if (queue.draining) {
    (queue.tail != nullptr ? queue.tail->registry_next : queue.head) = g;
    queue.tail = g;
    return;
  }
  queue.draining = true;
  while (g != nullptr) {
    free_now(g);
    g = queue.head;
    if (g != nullptr) {
      queue.head = g->registry_next;
      if (queue.head == nullptr) queue.tail = nullptr;
    }
  }
  queue.draining = false;
}

namespace {

// kill_is_safe(g) says whether GreenletExit may be thrown into suspended g.
// Not while its stack is unwinding (it switched away from a destructor, or
// from code a destructor calls, that an exception's unwinding runs):
// GreenletExit would have to leave that destructor, and C++ destructors are
// noexcept, so std::terminate would end the process. Such a greenlet is left
// as it is, and leaked once nothing can reach it.
bool kill_is_safe(const greenlet_impl* g) noexcept { return g->exceptions.uncaught_exceptions == 0; }

// The greenlet as reports name it: "greenlet #id", with its name if it has
// one, or what it is for ("Task 'x' (greenlet #id)").
std::string label(const greenlet_impl* g) {
  char text[320];
  write_greenlet_label(g, text, sizeof text);
  return text;
}

// report_leaked(g) reports, once, that suspended g could not be killed and
// nothing can reach it any more: its stack and what lives there are leaked.
void report_leaked(greenlet_impl* g) noexcept {
  if (std::exchange(g->leaked, true)) return;
  try {
    const std::string why =
        kill_is_safe(g) ? " caught GreenletExit and switched away instead of finishing"
                        : " is suspended in a destructor (or code it calls) run while an exception unwinds its stack, "
                          "so GreenletExit cannot be thrown there (destructors are noexcept: std::terminate); a "
                          "destructor that may switch must catch GreenletExit";
    report_unraisable(nullptr, label(g) + why + "; it can no longer be reached and its stack is leaked");
  } catch (...) {
    report_unraisable(nullptr, "a greenlet could not be killed; its stack is leaked");
  }
}

}  // namespace

namespace {

// reaches(from, g) says whether g is on from's parent chain (from included).
// Parent chains have no cycles (set_parent() refuses them; kill() keeps it so).
bool reaches(const greenlet_impl* from, const greenlet_impl* g) noexcept {
  for (; from != nullptr; from = from->parent) {
    if (from == g) return true;
  }
  return false;
}

}  // namespace

void kill(thread_state& ts, greenlet_impl* g) noexcept {
  if (g->leaked || !kill_is_safe(g)) return;
  // The killer never descends from g (that would make its temporary parent a
  // cycle): a child holds a reference to its parent, so g's last release
  // cannot happen then, and unwind_now() refuses it.
  // Python sets the parent to the killer so the GreenletExit (or whatever
  // the victim does instead) comes back here, then restores it.
  greenlet_impl* old_parent = g->parent;
  greenlet_impl* killer = ts.current;
  retain(killer);
  g->parent = killer;
  // being_killed also tells layers above (a generator body that yields
  // instead of finishing) that nobody but the killer waits for it.
  const bool was_being_killed = std::exchange(g->being_killed, true);
  const disposal_queue killers_disposals = std::exchange(disposals, disposal_queue{});
  const std::uint64_t reparents_before = ts.reparents;
  try {
    throw_to(ts, g, std::make_exception_ptr(GreenletExit()));
  } catch (...) {
    report_unraisable(std::current_exception(), "killing greenlet #" + std::to_string(g->id) + " with GreenletExit");
  }
  disposals = killers_disposals;
  g->being_killed = was_being_killed;
  if (g->parent == killer) {
    if (ts.reparents != reparents_before && reaches(old_parent, g)) {
      // Meanwhile g became an ancestor of its old parent (a.set_parent(g),
      // accepted: the check saw the killer as g's parent). Putting the old
      // parent back would close a cycle, where switches and finishing
      // greenlets would look for a live ancestor for ever: g keeps the
      // killer instead.
      release(old_parent);
      return;
    }
    g->parent = old_parent;
    release(killer);
  } else if (old_parent != nullptr) {
    // The victim chose a parent of its own meanwhile (set_parent() released
    // the killer and holds the new one): keep its choice, as Python does.
    release(old_parent);
  }
}

bool unwind_now(const ::greenlet::greenlet& handle) noexcept {
  greenlet_impl* g = handle.impl();
  if (g == nullptr) return true;
  thread_state* owner = owner_of(g);
  if (owner == nullptr) return true;  // its thread has exited, after its last kill
  if (g->state != run_state::active) return true;
  thread_state* ts = tls_state;
  // Not the running greenlet nor one of its ancestors: kill() makes g's
  // parent the killer for the kill, which would be a cycle.
  if (owner != ts || reaches(ts->current, g) || g->being_killed) return false;
  kill(*ts, g);  // the caller's handle keeps g alive meanwhile
  return g->state != run_state::active;
}

void kill_and_release(thread_state& ts, greenlet_impl* g) noexcept {
  kill(ts, g);
  const long left = drop_local_reference(g);
  if (g->state == run_state::dead) {
    release_stack(ts, g);
    if (left == 0) dispose(&ts, g);
  } else if (left == g->stack_refs) {
    // Still suspended (it switched away instead of dying, or could not be
    // killed) and nothing can reach it: killing it again would only repeat
    // that, and it may be suspended mid-unwind by now. Leak it, once.
    report_leaked(g);
  }
}

void on_unreachable(thread_state& ts, greenlet_impl* g) noexcept {
  if (g->state != run_state::active) {
    if (reference_count(g) == 0) dispose(&ts, g);
    return;
  }
  if (g->is_main || g->being_killed || g->leaked) return;  // main: freed at thread exit
  if (g == ts.current) {
    g->orphaned = true;  // killed once it switches away, by whoever it resumes
    ts.pending |= pending_work::bookkeeping;
    return;
  }
  // Hold a reference of our own while it dies, so that the handles its
  // unwinding drops do not bring us back here.
  retain(g);
  kill_and_release(ts, g);
}

void release_here(thread_state& ts, greenlet_impl* g) noexcept {
  if (drop_local_reference(g) == g->stack_refs) [[unlikely]] {
    on_unreachable(ts, g);
  }
}

void release(greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  thread_state* owner = owner_of(g);
  if (owner == ts && ts != nullptr) {
    release_here(*ts, g);
    return;
  }
  if (owner != nullptr) {
    // Another thread's greenlet: hand this reference to its owner, which
    // drops it on its own thread, where killing it is safe.
    std::lock_guard<std::mutex> lock(foreign_release_mutex());
    owner = owner_of(g);
    if (owner != nullptr) {
      try {
        owner->mail.push_back(g);
        owner->has_mail.store(true, std::memory_order_release);
      } catch (...) {
        report_unraisable(std::current_exception(), "mailing a greenlet to its thread");
      }
      return;
    }
  }
  // Its thread has exited, after finishing every greenlet it could: nothing
  // of this one runs anymore, so any thread may free it. Its owner moved
  // its local_refs here as it left.
  if (g->shared_refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && (g->state != run_state::active || g->is_main)) {
    dispose(nullptr, g);
  }
}

namespace {

// Whether `where` is on g's own stack, g being of this thread (ts).
bool on_own_stack(const thread_state& ts, const greenlet_impl* g, const void* where) noexcept {
  // Every shared-stack greenlet has the same bounds; the bytes there are
  // the owner's.
  return where >= g->stack_limit && where < g->stack_base && (!g->shared_stack || ts.shared_owner == g);
}

bool on_own_stack(const greenlet_impl* g, const void* where) noexcept {
  thread_state* ts = tls_state;
  return ts != nullptr && owner_of(g) == ts && on_own_stack(*ts, g, where);
}

}  // namespace

void drop_handle(greenlet_impl* g, const void* where) noexcept {
  thread_state* ts = tls_state;
  if (ts != nullptr && owner_of(g) == ts) [[likely]] {
    if (on_own_stack(*ts, g, where)) --g->stack_refs;
    release_here(*ts, g);
    return;
  }
  release(g);  // another thread's greenlet: nothing of it is on this stack
}

void place(greenlet_impl* g, const void* where) noexcept {
  if (on_own_stack(g, where)) ++g->stack_refs;
}

void unplace(greenlet_impl* g, const void* where) noexcept {
  if (on_own_stack(g, where)) --g->stack_refs;
}

}  // namespace greenlet::detail
