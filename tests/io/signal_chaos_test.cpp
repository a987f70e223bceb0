// signal_chaos_test.cpp: seeded randomized ("chaos") runs of add_signal_handler() and
// remove_signal_handler(). Three tasks run random steps on one loop: raise() a signal of a set
// (SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH and two real-time signals), add a handler (or replace one),
// remove one, yield, block or unblock a signal in the thread itself (pthread_sigmask, while it has
// no handler), or wait until every pending signal has run its handler. The handlers
// themselves now and then remove their own handler, add another, or raise a signal. The run ends
// with some handlers left installed, some signals pending, and the loop closes.
//
// The test keeps a model of what the kernel holds: raise() of a signal with a handler leaves it
// pending (blocked in this thread; raise() is thread-directed); pending instances of one signal,
// standard or real-time, run its handler once (POSIX merges a standard signal's; the library reads
// every queued instance at once and runs the handler once, as its header says); replacing a
// handler keeps the pending instance for the new one; removing the handler unblocks the signal and
// discards its pending instances, unless the thread had blocked it itself: then it stays blocked,
// its instances kept, and the thread's unblock delivers them to the process's handler (each
// real-time instance, one standard). Checked against it:
//  - a handler runs only while its signal is pending, on the loop's thread, and only the current
//    handler of its signal (never a replaced or removed one); a wait for the pending signals ends;
//  - the signal is blocked in the thread exactly while a handler is installed or the thread
//    blocked it itself;
//  - without a handler, raise() runs the process's own handler (sigaction, installed by the test),
//    at once: removal restores the signal's disposition; with one, it never does;
//  - remove_signal_handler() returns whether there was a handler;
//  - closing the loop removes the handlers left: nothing blocked but what the thread blocked, the
//    pending instances discarded
//    (never delivered to the process's handler), no descriptor leaked, nothing reported to the
//    loop's exception handler, no task left pending.
//
// GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n, GREENLET_CHAOS_SEED=<s> one seed
// (support/chaos_seeds.hpp). A run is deterministic but for when the loop polls.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/chaos_seeds.hpp"
#include "support/process_stats.hpp"

namespace signal_chaos_a {

namespace asyncio = greenlet::asyncio;
using SignalChaos = greenlet_test::GreenletTest;

int uniform(std::mt19937& g, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
bool chance(std::mt19937& g, int percent) { return uniform(g, 0, 99) < percent; }

// The process's own handler: counts, per signal, the deliveries that did not go to the loop.
volatile std::sig_atomic_t direct_count[_NSIG];
void count_direct(int sig) { direct_count[sig] = direct_count[sig] + 1; }

bool blocked_here(int sig) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}

struct signal_model {
  int sig = 0;
  bool installed = false;
  bool pending = false;
  int queued = 0;             // instances the kernel holds (a standard signal's merge into one)
  bool self_blocked = false;  // the thread blocked it itself (pthread_sigmask), not the library
  int version = 0;            // of the current handler
  int raised = 0, runs = 0, direct = 0;
};

struct world {
  explicit world(std::uint32_t seed) : g(seed) {}
  std::mt19937 g;
  std::vector<signal_model> sigs;
  std::vector<std::string> failures;
  std::thread::id loop_thread;
  asyncio::event_loop* loop = nullptr;
  int replaced = 0, removed_in_handler = 0, flushes = 0, removed = 0;
  bool ending = false;  // the main task is done
  int self_blocks = 0;
  void fail(const std::string& what) { failures.push_back(what); }
};

std::string name_of(int sig) { return "signal " + std::to_string(sig); }

void add_handler(world& wd, signal_model& m);

void do_raise(world& wd, signal_model& m) {
  const int before = direct_count[m.sig];
  ++m.raised;
  if (::raise(m.sig) != 0) wd.fail("raise(" + std::to_string(m.sig) + ") failed");
  const int direct = direct_count[m.sig] - before;
  if (m.installed || m.self_blocked) {
    m.pending = true;
    m.queued = m.sig >= SIGRTMIN ? m.queued + 1 : 1;  // real-time signals queue, standard ones merge
    if (direct != 0) wd.fail(name_of(m.sig) + " reached the process's handler while blocked");
  } else {
    ++m.direct;
    if (direct != 1)
      wd.fail(name_of(m.sig) + " without a loop handler: the process's handler ran " + std::to_string(direct) +
              " times in raise(), not once");
  }
}

void do_remove(world& wd, signal_model& m) {
  const bool had = asyncio::remove_signal_handler(*wd.loop, m.sig);
  if (had != m.installed) wd.fail(name_of(m.sig) + ": remove_signal_handler() returned " + (had ? "true" : "false"));
  if (m.installed) ++wd.removed;
  m.installed = false;
  if (!m.self_blocked) {
    m.pending = false;  // unblocked: a thread-directed instance is discarded
    m.queued = 0;
  }
  // The library unblocks only what it blocked; a pending instance stays while the signal is blocked.
  if (blocked_here(m.sig) != m.self_blocked)
    wd.fail(name_of(m.sig) + (m.self_blocked ? " unblocked by remove_signal_handler(), though the thread had blocked it"
                                             : " still blocked after remove_signal_handler()"));
}

void run_handler(world& wd, signal_model& m, int version, std::uint32_t rng_seed) {
  if (std::this_thread::get_id() != wd.loop_thread) wd.fail(name_of(m.sig) + ": handler ran off the loop's thread");
  if (!m.installed || version != m.version) {
    wd.fail(name_of(m.sig) + ": handler version " + std::to_string(version) + " ran, the current one is " +
            (m.installed ? std::to_string(m.version) : "none"));
    return;
  }
  if (!m.pending) {
    wd.fail(name_of(m.sig) + ": handler ran without an instance pending (spurious or twice)");
    return;
  }
  m.pending = false;
  m.queued = 0;  // the library reads every instance at once
  ++m.runs;
  if (wd.ending) return;
  // Now and then, what a handler may do: remove itself, add another, raise a signal.
  std::mt19937 g(rng_seed + static_cast<std::uint32_t>(m.runs));
  const int act = uniform(g, 0, 9);
  signal_model& other = wd.sigs[static_cast<std::size_t>(uniform(g, 0, static_cast<int>(wd.sigs.size()) - 1))];
  if (act == 0) {
    ++wd.removed_in_handler;
    do_remove(wd, m);
  } else if (act == 1) {
    add_handler(wd, other);
  } else if (act == 2) {
    do_raise(wd, other);
  }
}

void add_handler(world& wd, signal_model& m) {
  const int version = ++m.version;
  const std::uint32_t rng_seed = static_cast<std::uint32_t>(wd.g());
  if (m.installed) ++wd.replaced;
  asyncio::add_signal_handler(*wd.loop, m.sig, [&wd, &m, version, rng_seed] { run_handler(wd, m, version, rng_seed); });
  m.installed = true;  // pending stays as it was: a replacement keeps it for the new handler
  if (!blocked_here(m.sig)) wd.fail(name_of(m.sig) + " not blocked after add_signal_handler()");
}

// flush(wd): waits until no installed signal is pending. Bounded in loop turns, not time: a
// pending signal is readable at once, so its handler runs at the loop's next poll.
void flush(world& wd) {
  ++wd.flushes;
  for (int turn = 0; turn < 1000; ++turn) {
    if (std::none_of(wd.sigs.begin(), wd.sigs.end(), [](const signal_model& m) { return m.installed && m.pending; }))
      return;
    asyncio::sleep(0);
  }
  for (const signal_model& m : wd.sigs) {
    if (m.installed && m.pending) wd.fail(name_of(m.sig) + " pending for 1,000 loop turns: its handler never ran");
  }
}

// self_block(wd, m) and self_unblock(wd, m): the thread's own pthread_sigmask() on a signal
// without a handler. Unblocking delivers what the kernel held to the process's handler at once.
void self_block(world& wd, signal_model& m) {
  if (m.installed || m.self_blocked) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, m.sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  m.self_blocked = true;
  ++wd.self_blocks;
}

void self_unblock(world& wd, signal_model& m) {
  if (m.installed || !m.self_blocked) return;
  const int before = direct_count[m.sig];
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, m.sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  const int direct = direct_count[m.sig] - before;
  if (direct != m.queued)
    wd.fail(name_of(m.sig) + ": unblocked with " + std::to_string(m.queued) +
            " instance(s) held, the process's handler ran " + std::to_string(direct) + " times");
  m.direct += direct;
  m.self_blocked = false;
  m.pending = false;
  m.queued = 0;
}

void script(world& wd, std::uint32_t seed, int steps) {
  std::mt19937 g(seed);
  for (int i = 0; i < steps; ++i) {
    signal_model& m = wd.sigs[static_cast<std::size_t>(uniform(g, 0, static_cast<int>(wd.sigs.size()) - 1))];
    const int step = uniform(g, 0, 99);
    if (step < 40) {
      for (int k = uniform(g, 1, 3); k > 0; --k) do_raise(wd, m);
    } else if (step < 55) {
      add_handler(wd, m);
    } else if (step < 65) {
      do_remove(wd, m);
    } else if (step < 85) {
      asyncio::sleep(0);
    } else if (step < 90) {
      asyncio::sleep(uniform(g, 1, 5) * 0.0002);
    } else if (step < 93) {
      self_block(wd, m);
    } else if (step < 96) {
      self_unblock(wd, m);
    } else {
      flush(wd);
    }
    for (const signal_model& s : wd.sigs) {
      if (blocked_here(s.sig) != (s.installed || s.self_blocked))
        wd.fail(name_of(s.sig) + (s.installed      ? " not blocked with a handler"
                                  : s.self_blocked ? " unblocked, though the thread had blocked it"
                                                   : " blocked without a handler"));
    }
  }
}

struct run_stats {
  int raised = 0, runs = 0, direct = 0, replaced = 0, removed = 0, removed_in_handler = 0, left_pending = 0,
      self_blocks = 0;
};

run_stats run_chaos(std::uint32_t seed) {
  world wd(seed);
  const std::string tag =
      "seed " + std::to_string(seed) + " (GREENLET_CHAOS_SEED=" + std::to_string(seed) + " replays it): ";
  for (int sig : {SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGRTMIN, SIGRTMIN + 1}) wd.sigs.push_back({.sig = sig});
  std::vector<std::string> reported;
  run_stats stats;
  const int fds_before = greenlet_test::open_fd_count();
  std::vector<int> direct_before;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    wd.loop = &loop;
    wd.loop_thread = std::this_thread::get_id();
    loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      reported.push_back(c.message + (c.exception ? ": " + greenlet_test::describe_exception(c.exception) : ""));
    });
    std::vector<asyncio::Task<>> tasks;
    for (int i = 0; i < 3; ++i) {
      const std::uint32_t s = static_cast<std::uint32_t>(wd.g());
      const int steps = uniform(wd.g, 20, 80);
      tasks.push_back(asyncio::create_task([&wd, s, steps] { script(wd, s, steps); }));
    }
    try {
      asyncio::timeout(20.0, [&] { asyncio::gather(tasks); });
    } catch (const asyncio::TimeoutError&) {
      wd.fail("the run hung (watchdog)");
    } catch (const std::exception& e) {
      wd.fail(std::string("a script failed: ") + e.what());
    }
    asyncio::gather(asyncio::return_exceptions, tasks);
    // The end: some handlers stay for the loop's close to remove, some with a signal pending.
    for (signal_model& m : wd.sigs) {
      if (chance(wd.g, 50)) add_handler(wd, m);
      if (m.installed && chance(wd.g, 50)) do_raise(wd, m);
      if (m.installed && m.pending) ++stats.left_pending;
    }
    for (const signal_model& m : wd.sigs) direct_before.push_back(static_cast<int>(direct_count[m.sig]));
    // run() may turn the loop a few more times as it shuts down: a pending signal may run its
    // handler then (which no longer acts), or be discarded by the close.
    wd.ending = true;
    const asyncio::AnyTask me = asyncio::current_task();
    for (const asyncio::AnyTask& t : asyncio::all_tasks()) {
      if (!(t == me)) wd.fail("a task still pending at the end: " + t.repr());
    }
  });
  // Closed: nothing blocked, what was pending discarded, and each signal reaches the process's
  // handler again.
  for (std::size_t i = 0; i < wd.sigs.size(); ++i) {
    signal_model& m = wd.sigs[i];
    const int sig = m.sig;
    if (blocked_here(sig) != m.self_blocked)
      wd.fail(name_of(sig) + (m.self_blocked ? " unblocked by the loop's close, though the thread had blocked it"
                                             : " still blocked after the loop closed"));
    if (direct_count[sig] != direct_before[i])
      wd.fail(name_of(sig) + ": an instance pending at the loop's close reached the process's handler");
    m.installed = false;
    self_unblock(wd, m);  // what the thread's own block kept goes to the process's handler now
    direct_before[i] = direct_count[sig];
    ::raise(sig);
    if (direct_count[sig] != direct_before[i] + 1)
      wd.fail(name_of(sig) + ": raise() after the close did not reach the process's handler");
  }
  EXPECT_LE(greenlet_test::open_fd_count(), fds_before) << tag << "descriptors leaked";
  for (const std::string& f : wd.failures) ADD_FAILURE() << tag << f;
  for (const std::string& r : reported) ADD_FAILURE() << tag << "reported to the loop's exception handler: " << r;
  for (const signal_model& m : wd.sigs) {
    stats.raised += m.raised;
    stats.runs += m.runs;
    stats.direct += m.direct;
  }
  stats.replaced = wd.replaced;
  stats.removed = wd.removed;
  stats.removed_in_handler = wd.removed_in_handler;
  stats.self_blocks = wd.self_blocks;
  return stats;
}

// direct_handlers installs count_direct() for the signals of the run, and puts back what was
// there at the end.
struct direct_handlers {
  std::vector<std::pair<int, struct sigaction>> saved;
  direct_handlers() {
    for (int sig : {SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGRTMIN, SIGRTMIN + 1}) {
      struct sigaction sa {};
      sa.sa_handler = count_direct;
      sigemptyset(&sa.sa_mask);
      struct sigaction old {};
      sigaction(sig, &sa, &old);
      saved.emplace_back(sig, old);
    }
  }
  ~direct_handlers() {
    for (auto& [sig, old] : saved) sigaction(sig, &old, nullptr);
  }
};

TEST_F(SignalChaos, RandomRaisesAddsAndRemovesMatchTheKernelsModel) {
  direct_handlers installed;
  run_stats total;
  for (const std::uint32_t seed : greenlet_test::chaos_seeds(30)) {
    const run_stats s = run_chaos(seed);
    total.raised += s.raised;
    total.runs += s.runs;
    total.direct += s.direct;
    total.replaced += s.replaced;
    total.removed += s.removed;
    total.removed_in_handler += s.removed_in_handler;
    total.left_pending += s.left_pending;
    total.self_blocks += s.self_blocks;
    if (HasFailure()) break;
  }
  std::printf(
      "signal chaos: raised %d handler-runs %d direct %d replaced %d removed %d removed-in-handler %d "
      "pending-at-close %d self-blocks %d\n",
      total.raised, total.runs, total.direct, total.replaced, total.removed, total.removed_in_handler,
      total.left_pending, total.self_blocks);
  if (HasFailure() || std::getenv("GREENLET_CHAOS_SEED") != nullptr) return;
  EXPECT_GT(total.runs, 0);
  EXPECT_GT(total.direct, 0);
  EXPECT_GT(total.replaced, 0);
  EXPECT_GT(total.removed_in_handler, 0);
  EXPECT_GT(total.left_pending, 0);
  EXPECT_GT(total.self_blocks, 0);
}

}  // namespace signal_chaos_a
