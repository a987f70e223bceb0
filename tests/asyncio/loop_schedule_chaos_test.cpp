// loop_schedule_chaos_test.cpp: seeded random trees of plain callbacks on a
// virtual-time loop, checked step by step against a model of one iteration
// (docs/asyncio.md, "One iteration"): one FIFO ready queue shared by
// call_soon() and call_soon_threadsafe(); due timers appended after what is
// ready, in (deadline, order of scheduling) order; the callbacks ready at the
// start of an iteration run in it, those they schedule in the next; the
// virtual clock jumps to the next timer only when nothing is ready; a
// cancelled handle never runs, whether still a timer or already ready; a
// callback that throws goes to the exception handler and the loop goes on;
// stop() ends run_forever() after the current iteration, and the next
// run_forever() carries on where it left.
//
// Each callback's actions come from an RNG seeded by (seed, its id), so the
// model and the loop make the same tree as long as they run it in the same
// order; the test compares the two traces (id and loop time of each run)
// and reports the first difference. Many cancellations exercise the heap's
// bulk removal of cancelled timers.
//
// GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n instead of the fixed list.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"
#include "support/chaos_seeds.hpp"

namespace loop_schedule_chaos_a {

namespace asyncio = greenlet::asyncio;
using LoopScheduleChaosTests = greenlet_test::GreenletTest;

constexpr int max_callbacks = 600;

enum class how { soon, soon_threadsafe, later, at };

struct action {
  enum kind { schedule, cancel, stop, raise } what;
  how via = how::soon;
  double delay = 0;  // seconds, for later/at (at: now + delay)
  int back = 0;      // cancel: the callback scheduled `back` before the newest
};

// plan(seed, id) is what callback `id` does when it runs (id 0: the driver, before the loop runs).
std::vector<action> plan(std::uint32_t seed, int id) {
  std::minstd_rand rng(seed * 7919u + static_cast<std::uint32_t>(id) + 1);  // cheap to seed: one per callback run
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<action> actions;
  const int n = id == 0 ? 6 : uniform(1, 4);
  for (int i = 0; i < n; ++i) {
    const int pick = uniform(0, 99);
    action a{action::schedule};
    if (pick < 60) {
      const int v = uniform(0, 9);
      a.via = v < 3 ? how::soon : v < 4 ? how::soon_threadsafe : v < 8 ? how::later : how::at;
      // Deadlines on a millisecond grid, some equal, some in the past.
      a.delay = uniform(-2, 12) * 0.001;
    } else if (pick < 88) {
      a.what = action::cancel;
      a.back = uniform(0, 40);
    } else if (pick < 94) {
      a.what = action::raise;
    } else {
      a.what = action::stop;
    }
    actions.push_back(a);
  }
  return actions;
}

struct entry {
  int id;
  double time;
  bool operator==(const entry&) const = default;
};

// model(seed, t0) is the trace the loop must produce, and the ids that throw, in order.
std::pair<std::vector<entry>, std::vector<int>> model(std::uint32_t seed, double t0) {
  struct timer {
    double when;
    std::uint64_t seq;
    int id;
  };
  auto later = [](const timer& x, const timer& y) { return x.when != y.when ? x.when > y.when : x.seq > y.seq; };
  std::vector<timer> heap;
  std::deque<int> ready;
  std::vector<char> cancelled(max_callbacks + 1, 0);
  std::vector<char> uncancellable(max_callbacks + 1, 0);
  std::vector<int> created;  // ids in scheduling order
  std::uint64_t seq = 0;
  double now = t0;
  std::vector<entry> trace;
  std::vector<int> raised;
  int next_id = 0;
  auto run = [&](int id) {
    for (const action& a : plan(seed, id)) {
      switch (a.what) {
        case action::schedule: {
          if (next_id >= max_callbacks) break;
          const int child = ++next_id;
          created.push_back(child);
          // call_soon_threadsafe() gives no handle: its callback cannot be cancelled.
          if (a.via == how::soon_threadsafe) uncancellable[static_cast<std::size_t>(child)] = 1;
          if (a.via == how::soon || a.via == how::soon_threadsafe) {
            ready.push_back(child);
          } else {
            heap.push_back({now + a.delay, seq++, child});
            std::push_heap(heap.begin(), heap.end(), later);
          }
          break;
        }
        case action::cancel:
          if (!created.empty()) {
            const std::size_t back = std::min<std::size_t>(static_cast<std::size_t>(a.back), created.size() - 1);
            const auto target = static_cast<std::size_t>(created[created.size() - 1 - back]);
            if (!uncancellable[target]) cancelled[target] = 1;
          }
          break;
        case action::stop: break;
        case action::raise: raised.push_back(id); return;  // the rest of its actions never happen
      }
    }
  };
  run(0);
  for (;;) {
    if (ready.empty()) {
      while (!heap.empty() && cancelled[static_cast<std::size_t>(heap.front().id)]) {
        std::pop_heap(heap.begin(), heap.end(), later);
        heap.pop_back();
      }
      if (heap.empty()) break;
      now = std::max(now, heap.front().when);
    }
    while (!heap.empty() && heap.front().when <= now) {
      ready.push_back(heap.front().id);
      std::pop_heap(heap.begin(), heap.end(), later);
      heap.pop_back();
    }
    for (std::size_t n = ready.size(); n > 0; --n) {
      const int id = ready.front();
      ready.pop_front();
      if (cancelled[static_cast<std::size_t>(id)]) continue;
      trace.push_back({id, now});
      run(id);
    }
  }
  return {trace, raised};
}

// The real run: the same plans, on a loop.
struct real_run {
  real_run(std::uint32_t s, asyncio::event_loop& l) : seed(s), loop(l) {}
  std::uint32_t seed;
  asyncio::event_loop& loop;
  std::vector<asyncio::Handle> handles;  // by id - 1
  std::vector<int> created;
  std::vector<entry> trace;
  int next_id = 0;
  std::size_t expected = 0;

  void fire(int id) {
    trace.push_back({id, loop.time()});
    if (trace.size() == expected) loop.stop();
    act(id);
  }
  void act(int id) {
    for (const action& a : plan(seed, id)) {
      switch (a.what) {
        case action::schedule: {
          if (next_id >= max_callbacks) break;
          const int child = ++next_id;
          created.push_back(child);
          auto fn = [this, child] { fire(child); };
          switch (a.via) {
            case how::soon: handles.push_back(loop.call_soon(fn)); break;
            case how::soon_threadsafe:
              loop.call_soon_threadsafe(fn);
              handles.emplace_back();  // no handle to cancel it with
              break;
            case how::later: handles.push_back(loop.call_later(a.delay, fn)); break;
            case how::at: handles.push_back(loop.call_at(loop.time() + a.delay, fn)); break;
          }
          break;
        }
        case action::cancel:
          if (!created.empty()) {
            const std::size_t back = std::min<std::size_t>(static_cast<std::size_t>(a.back), created.size() - 1);
            handles[static_cast<std::size_t>(created[created.size() - 1 - back] - 1)].cancel();
          }
          break;
        case action::stop: loop.stop(); break;
        case action::raise: throw std::runtime_error("callback " + std::to_string(id));
      }
    }
  }
};

std::string show(const std::vector<entry>& t, std::size_t at) {
  std::ostringstream out;
  const std::size_t from = at < 3 ? 0 : at - 3;
  for (std::size_t i = from; i < std::min(t.size(), at + 3); ++i) {
    out << (i == at ? " >" : "  ") << "#" << i << " cb " << t[i].id << " t=" << t[i].time;
  }
  return out.str();
}

struct tally {
  std::size_t runs = 0, raised = 0, seeds = 0;
};

void check_seed(std::uint32_t seed, tally& total) {
  const std::string replay = "; seed " + std::to_string(seed);
  asyncio_test::error_log log;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  log.attach(loop);
  const double t0 = loop.time();
  auto [expected, raised] = model(seed, t0);
  real_run real(seed, loop);
  real.expected = expected.size();
  // Plans are about the same "cancel or stop" actions for the model's
  // cancelled ids as for the loop's, so the slot ids of the driver's plan
  // must match: the real run schedules its roots the same way.
  try {
    real.act(0);
  } catch (const std::runtime_error&) {  // the driver's own plan may raise: the model stops it there too
  }
  // stop() inside a callback ends run_forever() after that iteration;
  // carry on until the model's trace is complete, or the loop has nothing
  // left (the deadlock error of a virtual-time loop with no work).
  for (int rounds = 0; real.trace.size() < expected.size() && rounds < 10000; ++rounds) {
    try {
      loop.run_forever();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "run_forever() threw " << e.what() << " after " << real.trace.size() << " of " << expected.size()
                    << " callbacks" << replay;
      break;
    }
  }
  std::size_t i = 0;
  while (i < expected.size() && i < real.trace.size() && expected[i] == real.trace[i]) ++i;
  EXPECT_EQ(real.trace.size(), expected.size()) << replay;
  if (i < std::max(expected.size(), real.trace.size())) {
    ADD_FAILURE() << "first difference at #" << i << "\n  model:" << show(expected, i)
                  << "\n  loop: " << show(real.trace, i) << replay;
  }
  std::vector<int> reported;
  for (const auto& w : log.whats) reported.push_back(std::stoi(w.substr(w.find(' ') + 1)));
  // The driver's raise happens outside the loop: the model lists it, the handler never sees it.
  if (!raised.empty() && raised.front() == 0) raised.erase(raised.begin());
  EXPECT_EQ(reported, raised) << "callbacks whose exception reached the handler" << replay;
  total.runs += real.trace.size();
  total.raised += reported.size();
  ++total.seeds;
  loop.close();
}

TEST_F(LoopScheduleChaosTests, callbacks_run_in_the_models_order_at_the_models_times) {
  tally total;
  for (const std::uint32_t seed : greenlet_test::chaos_seeds(100)) {
    check_seed(seed, total);
    if (HasFailure()) break;
  }
  if (HasFailure()) return;
  // The trees must be big enough to mean something.
  EXPECT_GT(total.runs, total.seeds * 50);
  EXPECT_GT(total.raised, total.seeds / 2);
}

}  // namespace loop_schedule_chaos_a
