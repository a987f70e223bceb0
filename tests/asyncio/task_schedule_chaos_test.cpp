// task_schedule_chaos_test.cpp: seeded random task programs on a virtual-time
// loop, checked step by step against a model of asyncio's scheduling. Tasks
// run scripts of sleep(0), sleep(d), awaits of shared futures, set_result()
// on them, and creation of more tasks; the model follows asyncio's rules:
// - a new task's first step is queued with call_soon() (an eager task takes
//   it inside create_task(), once the loop runs);
// - sleep(0) queues the next step at the back of the ready queue;
// - sleep(d) is a timer whose callback completes a future, which queues the
//   step: two hops, so the step runs in the iteration after the timer's
//   (on a virtual clock, which moves only when nothing is ready, that second
//   hop changes no order: modelled as asyncio has it all the same);
// - call_soon() and call_later(0) callbacks that complete a future;
// - set_result() queues the wake-ups of the future's awaiters in the order
//   they started awaiting; awaiting a done future does not suspend;
// - one FIFO ready queue; due timers appended after what is ready; the
//   callbacks ready at the start of an iteration run in it.
// So the order tasks run in, and the loop time they see, are the asyncio
// order however the loop shortens the path (a suspending task handing the
// turn straight to the next one, eager first steps). The test compares the
// traces (task, script position, time) and reports the first difference.
//
// GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n instead of the fixed list.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"
#include "support/chaos_seeds.hpp"

namespace task_schedule_chaos_a {

namespace asyncio = greenlet::asyncio;
using TaskScheduleChaosTests = greenlet_test::GreenletTest;

constexpr int max_tasks = 300;
constexpr int futures_in_pool = 12;
constexpr double sweep_at = 0.2;  // a timer then completes every future left, so no program deadlocks

struct op {
  enum kind { sleep0, sleep, await_future, set_future, spawn, later0_set, soon_set } what;
  double delay = 0;
  int future = 0;
};

// script(seed, id) is what task `id` does, in order.
std::vector<op> script(std::uint32_t seed, int id) {
  std::minstd_rand rng(seed * 7919u + static_cast<std::uint32_t>(id) + 1);
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<op> ops;
  const int n = uniform(1, 6);
  for (int i = 0; i < n; ++i) {
    const int pick = uniform(0, 99);
    op o{op::sleep0};
    if (pick < 20) {
      o.what = op::sleep0;
    } else if (pick < 40) {
      o.what = op::sleep;
      o.delay = uniform(1, 6) * 0.001;
    } else if (pick < 60) {
      o.what = op::await_future;
      o.future = uniform(0, futures_in_pool - 1);
    } else if (pick < 72) {
      o.what = op::set_future;
      o.future = uniform(0, futures_in_pool - 1);
    } else if (pick < 80) {
      // A callback that completes a future: queued now, or a timer due now,
      // which joins the ready queue only when the next iteration starts.
      o.what = uniform(0, 1) == 0 ? op::later0_set : op::soon_set;
      o.future = uniform(0, futures_in_pool - 1);
    } else {
      o.what = op::spawn;
    }
    ops.push_back(o);
  }
  return ops;
}

struct entry {
  int task;  // -1: the sweeper, -2: a callback completing future `at`
  int at;    // position in the script
  double time;
  bool operator==(const entry&) const = default;
};

std::string show(const std::vector<entry>& t, std::size_t at) {
  std::ostringstream out;
  const std::size_t from = at < 3 ? 0 : at - 3;
  for (std::size_t i = from; i < std::min(t.size(), at + 3); ++i) {
    out << (i == at ? " >" : "  ") << "#" << i << " task " << t[i].task << "[" << t[i].at << "] t=" << t[i].time;
  }
  return out.str();
}

// The model: asyncio's rules, over plain data.
class model {
 public:
  model(std::uint32_t seed, double t0, bool eager, int roots) : seed_(seed), now_(t0), eager_(eager) {
    for (int i = 0; i < roots; ++i) start_task(false);
    push_timer(t0 + sweep_at, {item::sweep, 0});
  }

  std::vector<entry> run() {
    for (;;) {
      if (ready_.empty()) {
        if (heap_.empty()) break;
        now_ = std::max(now_, heap_.front().when);
      }
      while (!heap_.empty() && heap_.front().when <= now_) {
        ready_.push_back(heap_.front().what);
        std::pop_heap(heap_.begin(), heap_.end(), later);
        heap_.pop_back();
      }
      for (std::size_t n = ready_.size(); n > 0; --n) {
        const item it = ready_.front();
        ready_.pop_front();
        if (it.kind == item::step) {
          step(it.task);
        } else if (it.kind == item::timer_done) {
          ready_.push_back({item::step, it.task});  // the sleep's future completes: the step is queued
        } else if (it.kind == item::set_callback) {
          trace_.push_back({-2, it.task, now_});
          set(it.task);
        } else {
          trace_.push_back({-1, 0, now_});
          for (int f = 0; f < futures_in_pool; ++f) set(f);
        }
      }
    }
    return trace_;
  }

 private:
  struct item {
    enum { step, timer_done, sweep, set_callback } kind;
    int task;  // set_callback: the future
  };
  struct timer {
    double when;
    std::uint64_t seq;
    item what;
  };
  static bool later(const timer& x, const timer& y) { return x.when != y.when ? x.when > y.when : x.seq > y.seq; }

  void push_timer(double when, item what) {
    heap_.push_back({when, seq_++, what});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  void start_task(bool loop_running) {
    const int id = next_id_++;
    scripts_.push_back(script(seed_, id));
    position_.push_back(0);
    if (eager_ && loop_running) {
      step(id);
    } else {
      ready_.push_back({item::step, id});
    }
  }
  void set(int f) {
    if (done_[static_cast<std::size_t>(f)]) return;
    done_[static_cast<std::size_t>(f)] = true;
    for (int t : waiters_[static_cast<std::size_t>(f)]) ready_.push_back({item::step, t});
    waiters_[static_cast<std::size_t>(f)].clear();
  }
  // step(id) runs task id's script from where it stopped to its next suspension.
  void step(int id) {
    for (;;) {
      const auto& ops = scripts_[static_cast<std::size_t>(id)];
      int& at = position_[static_cast<std::size_t>(id)];
      if (at >= static_cast<int>(ops.size())) return;  // finished
      const op o = ops[static_cast<std::size_t>(at)];
      trace_.push_back({id, at, now_});
      ++at;
      switch (o.what) {
        case op::sleep0: ready_.push_back({item::step, id}); return;
        case op::sleep: push_timer(now_ + o.delay, {item::timer_done, id}); return;
        case op::await_future:
          if (done_[static_cast<std::size_t>(o.future)]) break;
          waiters_[static_cast<std::size_t>(o.future)].push_back(id);
          return;
        case op::set_future: set(o.future); break;
        case op::spawn:
          if (next_id_ < max_tasks) start_task(true);
          break;
        case op::later0_set: push_timer(now_, {item::set_callback, o.future}); break;
        case op::soon_set: ready_.push_back({item::set_callback, o.future}); break;
      }
    }
  }

  std::uint32_t seed_;
  double now_;
  bool eager_;
  int next_id_ = 0;
  std::uint64_t seq_ = 0;
  std::vector<std::vector<op>> scripts_;
  std::vector<int> position_;
  std::deque<item> ready_;
  std::vector<timer> heap_;
  bool done_[futures_in_pool] = {};
  std::vector<int> waiters_[futures_in_pool];
  std::vector<entry> trace_;
};

// The real run: the same scripts, as tasks of a loop.
struct real_run {
  real_run(std::uint32_t s, asyncio::event_loop& l) : seed(s), loop(l) {}
  std::uint32_t seed;
  asyncio::event_loop& loop;
  std::vector<asyncio::Future<int>> futures;
  std::deque<asyncio::Task<>> tasks;  // stable: run_until_complete() holds one while more are added
  std::vector<entry> trace;
  int next_id = 0;

  void start_task() {
    const int id = next_id++;
    tasks.push_back(loop.create_task([this, id] { run_script(id); }));
  }
  void run_script(int id) {
    const std::vector<op> ops = script(seed, id);
    for (std::size_t at = 0; at < ops.size(); ++at) {
      const op& o = ops[at];
      trace.push_back({id, static_cast<int>(at), loop.time()});
      switch (o.what) {
        case op::sleep0: asyncio::sleep(0); break;
        case op::sleep: asyncio::sleep(o.delay); break;
        case op::await_future: asyncio::await(futures[static_cast<std::size_t>(o.future)]); break;
        case op::set_future: {
          auto& f = futures[static_cast<std::size_t>(o.future)];
          if (!f.done()) f.set_result(o.future);
          break;
        }
        case op::spawn:
          if (next_id < max_tasks) start_task();
          break;
        case op::later0_set: loop.call_later(0, [this, f = o.future] { set_by_callback(f); }); break;
        case op::soon_set: loop.call_soon([this, f = o.future] { set_by_callback(f); }); break;
      }
    }
  }
  void set_by_callback(int f) {
    trace.push_back({-2, f, loop.time()});
    auto& fut = futures[static_cast<std::size_t>(f)];
    if (!fut.done()) fut.set_result(f);
  }
};

struct tally {
  std::size_t steps = 0, tasks = 0, seeds = 0;
};

void check_seed(std::uint32_t seed, bool eager, tally& total) {
  const std::string replay = std::string("; seed ") + std::to_string(seed) + (eager ? ", eager tasks" : "");
  asyncio_test::error_log log;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  log.attach(loop);
  if (eager) loop.set_task_factory(asyncio::eager_task_factory);
  const double t0 = loop.time();
  const int roots = 4;
  const std::vector<entry> expected = model(seed, t0, eager, roots).run();
  real_run real(seed, loop);
  for (int f = 0; f < futures_in_pool; ++f) real.futures.push_back(loop.create_future<int>());
  for (int i = 0; i < roots; ++i) real.start_task();
  loop.call_at(t0 + sweep_at, [&real] {
    real.trace.push_back({-1, 0, real.loop.time()});
    for (int f = 0; f < futures_in_pool; ++f) {
      auto& fut = real.futures[static_cast<std::size_t>(f)];
      if (!fut.done()) fut.set_result(f);
    }
  });
  // Run until every task is done (each one ends once the sweeper has completed the futures).
  try {
    for (std::size_t i = 0; i < real.tasks.size(); ++i) loop.run_until_complete(real.tasks[i]);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the loop threw " << e.what() << replay;
  }
  // The sweeper may be the last to run, after every task is done.
  if (real.trace.size() < expected.size()) {
    loop.call_at(t0 + sweep_at + 1, [&loop] { loop.stop(); });
    loop.run_forever();
  }
  std::size_t i = 0;
  while (i < expected.size() && i < real.trace.size() && expected[i] == real.trace[i]) ++i;
  EXPECT_EQ(real.trace.size(), expected.size()) << replay;
  if (i < std::max(expected.size(), real.trace.size())) {
    ADD_FAILURE() << "first difference at #" << i << "\n  model:" << show(expected, i)
                  << "\n  loop: " << show(real.trace, i) << replay;
  }
  EXPECT_TRUE(log.messages.empty()) << log.messages.front() << replay;
  total.steps += real.trace.size();
  total.tasks += real.tasks.size();
  ++total.seeds;
  real.tasks.clear();
  loop.close();
}

TEST_F(TaskScheduleChaosTests, tasks_step_in_asyncios_order_at_asyncios_times) {
  tally total;
  for (const std::uint32_t seed : greenlet_test::chaos_seeds(100)) {
    check_seed(seed, false, total);
    if (HasFailure()) return;
  }
  if (HasFailure()) return;
  EXPECT_GT(total.tasks, total.seeds * 30);
  EXPECT_GT(total.steps, total.seeds * 100);
}

TEST_F(TaskScheduleChaosTests, eager_tasks_step_in_asyncios_order_at_asyncios_times) {
  tally total;
  for (const std::uint32_t seed : greenlet_test::chaos_seeds(100)) {
    check_seed(seed, true, total);
    if (HasFailure()) return;
  }
  if (HasFailure()) return;
  EXPECT_GT(total.tasks, total.seeds * 30);
  EXPECT_GT(total.steps, total.seeds * 100);
}

}  // namespace task_schedule_chaos_a
