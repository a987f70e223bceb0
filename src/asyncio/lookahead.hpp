// lookahead.hpp: prefetching the ready queue's next task steps.
//
// Why: with many tasks, a task step is dominated by cache and TLB misses, not
// by work. Running one step reads the queue node, the task object, its future
// and greenlet object, the task's saved stack frames and its stack canary (on
// an unguarded stack, the lowest bytes: another page). Each read depends on
// the one before, so with 100,000 tasks a step paid about seven DRAM round
// trips in a row (~600 ns). The loop knows which steps come next (the ready
// queue is a ring, so step i+k is one index away), so while steps run it
// asks the CPU to fetch the next ones, a stage of that chain at a time: each
// stage reads only what an earlier burst fetched, so the fetches of the
// next 32 steps overlap with the work of the current ones. With 100,000
// tasks a step went from ~450 to ~200 ns (bench/loop_bench, 100000/40).
//
// Prefetching never faults, and the look-ahead reads only fields of objects
// the queue still owns (a queued step that is not cancelled holds its task
// alive), so a wrong guess costs a wasted fetch and nothing else.
#pragma once

#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/detail/loop_core.hpp"
#include "greenlet/detail/stack_canary.hpp"
#include "greenlet/detail/task_state.hpp"

namespace greenlet::asyncio::detail {

// Below this many ready callbacks a turn's working set stays in the core's
// cache (~800 B a task; this VM's L2 is 2 MiB) and the bursts' dependent
// loads only add to each step: T tasks × sleep(0), ns a step, with and
// without bursts (three runs each, before the pipeline below existed): 1,000: 36-37 / 27-28 (Boost.Fiber 25-28);
// 2,000: 42-45 / 31-32; 4,000: 61-67 / 49-51; 6,000: even; 8,000: 68-82 /
// 70-82; 10,000: 75-86 / 85-90; 40,000: 164-177 / 196-218.
inline constexpr std::size_t lookahead_min_ready = 4096;
// From this many (and below lookahead_min_ready) the steps ahead are
// fetched one stage per step (lookahead_pipeline()): the chain then costs
// cache hits instead of a dependent L2 miss per link: 1,000 tasks 30-32 ->
// 25-27 ns a step, 100 tasks 19.5 -> 18.6 (bench/README.md). Below it the
// few tasks' lines stay in the first-level cache: nothing to gain.
inline constexpr std::size_t lookahead_pipeline_min = 64;

// prefetch_lines(p, n) fetches n cache lines from p into every cache level;
// prefetch_lines<outer_caches>(p, n) into the outer ones only (prefetcht2),
// for data needed a burst later.
inline constexpr int all_caches = 3;
inline constexpr int outer_caches = 1;
template <int Locality = all_caches>
[[gnu::always_inline]] inline void prefetch_lines(const void* p, int lines) noexcept {
  const char* c = static_cast<const char*>(p);
  for (int i = 0; i < lines; ++i) __builtin_prefetch(c + 64 * i, 0, Locality);
}

// task_of(n) is the task whose step n runs, or null for another callback.
[[gnu::always_inline]] inline task_state* task_of(const callback_node* n) noexcept {
  if (n->cancelled) return nullptr;  // its task may be gone already
  if (n->fast == &task_state::step_callback || n->fast == &task_state::wakeup_callback) {
    return static_cast<task_state*>(n->args.a);
  }
  return nullptr;
}

// The look-ahead runs through one turn of run_once(). Every
// lookahead_batch steps it issues one burst covering the next 4 x batch queued
// steps, a stage of the chain per batch: nodes for the furthest, then tasks,
// then their futures and greenlet objects, then, for the nearest batch, the
// stack frames and canary. Bursts, not one prefetch per step, because a
// prefetch that misses the TLB holds up the CPU until its page walk ends:
// a task's stack is a page of its own, and its walk is the longest wait of
// a step (~130 ns measured, in a VM); issued together, the walks of a batch
// overlap instead of following one another.
inline constexpr std::size_t lookahead_batch = 8;

// lookahead_burst(loop): index 0 is the step about to run; its stack was
// fetched by the previous burst, as each batch's objects were one burst
// before their stacks.
[[gnu::always_inline]] inline void lookahead_burst(const loop_core& loop) noexcept {
  constexpr std::size_t batch = lookahead_batch;
  const std::size_t queued = loop.ready_count;
  std::size_t i = 1;
  for (; i < 1 + batch && i < queued; ++i) {
    const task_state* t = task_of(loop.ready_at(i));
    if (t == nullptr) continue;
    if (const auto* g = t->glet.impl(); g != nullptr && g->context != nullptr) {
      // The frames a resumed task returns through: jump_fcontext's saved
      // registers, then suspend() and its callers. Four lines, not more:
      // with six, a step took 5-10% longer (1,000 and 100,000 tasks), the
      // extra lines crowding out what the next steps need.
      prefetch_lines(g->context, 4);
      if (::greenlet::detail::has_stack_canary(g)) __builtin_prefetch(g->stack_limit);
    }
  }
  for (; i < 1 + 2 * batch && i < queued; ++i) {
    const callback_node* n = loop.ready_at(i);
    // The future a wake-up releases (a general callback has no arguments).
    if (n->fast != nullptr && n->args.b != nullptr) __builtin_prefetch(n->args.b);
    const task_state* t = task_of(n);
    if (t == nullptr) continue;
    prefetch_lines(t->future(), 2);
    if (const auto* g = t->glet.impl()) prefetch_lines(g, 2);
  }
  for (; i < 1 + 3 * batch && i < queued; ++i) {
    if (const task_state* t = task_of(loop.ready_at(i))) prefetch_lines<outer_caches>(t, 3);
  }
  for (; i < 1 + 4 * batch && i < queued; ++i) prefetch_lines<outer_caches>(loop.ready_at(i), 2);
}

// lookahead_pipeline(loop) is the look-ahead below lookahead_min_ready:
// one stage of the chain per step, each for a different step ahead (the
// node of step 4, the task of step 3, the future and greenlet object of
// step 2, the stack frames of step 1), so each stage's loads hit what the
// previous step's prefetches brought in, and no burst of dependent loads
// holds up a step. (The bursts below cost more than they saved at 1,000
// tasks, where everything is in L2 already.)
[[gnu::always_inline]] inline void lookahead_pipeline(const loop_core& loop) noexcept {
  const std::size_t queued = loop.ready_count;
  if (queued > 4) __builtin_prefetch(loop.ready_at(4));
  if (queued > 3) {
    if (const task_state* t = task_of(loop.ready_at(3))) prefetch_lines(t, 2);
  }
  if (queued > 2) {
    if (const task_state* t = task_of(loop.ready_at(2))) {
      __builtin_prefetch(t->future());
      if (const auto* g = t->glet.impl()) prefetch_lines(g, 2);
    }
  }
  if (queued > 1) {
    if (const task_state* t = task_of(loop.ready_at(1))) {
      if (const auto* g = t->glet.impl(); g != nullptr && g->context != nullptr) {
        prefetch_lines(g->context, 4);
        if (::greenlet::detail::has_stack_canary(g)) __builtin_prefetch(g->stack_limit);
      }
    }
  }
}

// lookahead_start(loop) begins a turn of run_once(): the look-ahead runs
// when at least lookahead_min_ready callbacks are ready.
inline void lookahead_start(loop_core& loop) noexcept {
  using mode = loop_core::lookahead_mode;
  const std::size_t ready = loop.ready_count;
  loop.turn_lookahead = ready >= lookahead_min_ready      ? mode::bursts
                        : ready >= lookahead_pipeline_min ? mode::pipeline
                                                          : mode::off;
  loop.lookahead_countdown = 0;
}

// lookahead_before_step(loop) runs before each pop of a turn's callback,
// by run_once() or by a task handing the turn on (task_state::suspend):
// every lookahead_batch steps, one burst.
[[gnu::always_inline]] inline void lookahead_before_step(loop_core& loop) noexcept {
  if (loop.turn_lookahead != loop_core::lookahead_mode::bursts) {
    if (loop.turn_lookahead == loop_core::lookahead_mode::pipeline) lookahead_pipeline(loop);
    return;
  }
  if (loop.lookahead_countdown-- > 0) return;
  loop.lookahead_countdown = lookahead_batch - 1;
  lookahead_burst(loop);
}

}  // namespace greenlet::asyncio::detail
