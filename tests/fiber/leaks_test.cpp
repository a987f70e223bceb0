// leaks_test.cpp: scenarios that once leaked, ported from greenlet's
// src/greenlet/tests/test_leaks.py (TestLeaks) where they mean something in
// C++. Python counts references and weakrefs; here shared_ptr use counts,
// instance counters and the fixture's operator-new balance do that job.
#include <atomic>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using TestLeaks = greenlet_test::GreenletTest;

// Tracked counts live instances, as HasFinalizerTracksInstances does. A
// moved-from one no longer counts: the count is of objects, not of shells.
struct Tracked {
  static inline std::atomic<int> extant{0};
  Tracked() { ++extant; }
  Tracked(const Tracked& other) : owns(other.owns) {
    if (owns) ++extant;
  }
  Tracked(Tracked&& other) noexcept : owns(std::exchange(other.owns, false)) {}
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() {
    if (owns) --extant;
  }
  bool owns = true;
};

// MoveOnlyTracked is Tracked that can only be moved.
struct MoveOnlyTracked {
  static inline std::atomic<int> extant{0};
  MoveOnlyTracked() { ++extant; }
  MoveOnlyTracked(MoveOnlyTracked&& other) noexcept : owns(std::exchange(other.owns, false)) {}
  MoveOnlyTracked(const MoveOnlyTracked&) = delete;
  MoveOnlyTracked& operator=(const MoveOnlyTracked&) = delete;
  ~MoveOnlyTracked() {
    if (owns) --extant;
  }
  bool owns = true;
};

greenlet::value echo_to_parent(greenlet::value args) {
  return greenlet::getcurrent().parent().switch_value(std::move(args));
}

TEST_F(TestLeaks, test_arg_refs) {
  auto a = std::make_shared<std::string>("a");
  auto b = std::make_shared<std::string>("b");
  auto c = std::make_shared<std::string>("c");
  greenlet::greenlet g(&echo_to_parent);
  for (int i = 0; i < 100; ++i) {
    greenlet::value back = g.switch_(a, b, c);
    auto [x, y, z] =
        back.get<std::shared_ptr<std::string>, std::shared_ptr<std::string>, std::shared_ptr<std::string>>();
    ASSERT_EQ(x, a);
    ASSERT_EQ(y, b);
    ASSERT_EQ(z, c);
  }
  // The first switch started g, the second ended it; the other 98 went to
  // the dead greenlet and came straight back. No copy stayed anywhere.
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(a.use_count(), 1);
  EXPECT_EQ(b.use_count(), 1);
  EXPECT_EQ(c.use_count(), 1);
}

// Arguments of a move-only type are moved, never copied, and every instance
// made on the way is destroyed.
TEST_F(TestLeaks, MoveOnlyArgumentsAreNotLeaked) {
  ASSERT_EQ(MoveOnlyTracked::extant, 0);
  {
    greenlet::greenlet g(&echo_to_parent);
    for (int i = 0; i < 100; ++i) {
      greenlet::value back = g.switch_(MoveOnlyTracked());
      ASSERT_TRUE(back.holds<MoveOnlyTracked>());
      EXPECT_TRUE(back.get<MoveOnlyTracked>().owns);
      ASSERT_EQ(MoveOnlyTracked::extant, 1) << "switch " << i;
    }
    EXPECT_TRUE(g.dead());
  }
  EXPECT_EQ(MoveOnlyTracked::extant, 0);
}

// A value a suspended greenlet holds (its pending switch_()'s arguments, a
// local) is destroyed when the greenlet is killed.
TEST_F(TestLeaks, ValuesOnAKilledGreenletAreDestroyed) {
  ASSERT_EQ(Tracked::extant, 0);
  greenlet::greenlet g([](Tracked arg) {
    Tracked local;
    greenlet::getcurrent().parent().switch_(Tracked());
    (void)arg;
  });
  g.switch_(Tracked());
  EXPECT_EQ(Tracked::extant, 2);  // arg and local; the switched one was dropped
  g = greenlet::greenlet();
  EXPECT_EQ(Tracked::extant, 0);
}

// test_threaded_leak: a thread that only touched its main greenlet frees it
// at exit. A handle to it kept past the thread's end sees a dead greenlet it
// cannot switch to, and dropping it frees the last of that thread's state.
TEST_F(TestLeaks, test_threaded_leak) {
  const long allocations_before = greenlet_test::live_allocations();
  std::vector<greenlet::greenlet> gg;
  for (int i = 0; i < 2; ++i) {
    std::thread t([&] { gg.push_back(greenlet::getcurrent()); });
    t.join();
  }
  (void)greenlet::getcurrent();
  ASSERT_EQ(gg.size(), 2u);
  for (greenlet::greenlet& g : gg) {
    EXPECT_TRUE(g.is_main());
    EXPECT_TRUE(g.dead());
    try {
      g.switch_();
      ADD_FAILURE() << "switch_() to an exited thread's main greenlet returned";
    } catch (const greenlet::error& e) {
      EXPECT_EQ(e.code(), greenlet::errc::thread_exited) << e.what();
    }
  }
  gg.clear();
  gg.shrink_to_fit();
  EXPECT_EQ(greenlet_test::live_allocations(), allocations_before);
}

// test_threaded_adv_leak: the same with finished greenlets that held handles
// to themselves in a list owned by the thread.
TEST_F(TestLeaks, test_threaded_adv_leak) {
  ASSERT_EQ(Tracked::extant, 0);
  const long allocations_before = greenlet_test::live_allocations();
  std::atomic<int> finished{0};
  for (int i = 0; i < 2; ++i) {
    std::thread t([&] {
      std::vector<greenlet::greenlet> ll;
      for (int j = 0; j < 2; ++j) {
        greenlet::greenlet([&ll, &finished, tracked = Tracked()] {
          ll.push_back(greenlet::getcurrent());
          ++finished;
        }).switch_();
      }
      EXPECT_EQ(ll.size(), 2u);
      for (const greenlet::greenlet& g : ll) EXPECT_TRUE(g.dead());
    });
    t.join();
  }
  EXPECT_EQ(finished, 4);
  EXPECT_EQ(Tracked::extant, 0);
  EXPECT_EQ(greenlet_test::live_allocations(), allocations_before);
}

// _check_untracked_memory_thread: a thread leaves many greenlets suspended.
// Dropped in the thread, each is killed there and then; kept past the
// thread's end, each is killed at thread exit (Python leaves those alone;
// here thread exit finishes them so their destructors run on their thread).
void check_unfinished_thread(bool deallocate_in_thread) {
  constexpr int iterations = 1000;
  ASSERT_EQ(Tracked::extant, 0);
  std::atomic<int> exit_count{0};
  std::vector<greenlet::greenlet> glets;
  std::thread t([&] {
    for (int i = 0; i < iterations; ++i) {
      greenlet::greenlet g([&exit_count] {
        Tracked on_stack;
        try {
          greenlet::getcurrent().parent().switch_();
        } catch (const greenlet::GreenletExit&) {
          ++exit_count;
          throw;
        }
        return 1;
      });
      g.switch_();
      glets.push_back(std::move(g));
    }
    for (const greenlet::greenlet& g : glets) EXPECT_TRUE(g && !g.dead());
    EXPECT_EQ(Tracked::extant, iterations);
    if (deallocate_in_thread) {
      glets.clear();
      EXPECT_EQ(exit_count, iterations);
      EXPECT_EQ(Tracked::extant, 0);
    }
  });
  t.join();
  EXPECT_EQ(exit_count, iterations);
  EXPECT_EQ(Tracked::extant, 0);
  for (const greenlet::greenlet& g : glets) EXPECT_TRUE(g.dead());
  glets.clear();
}

TEST_F(TestLeaks, test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_thread) {
  check_unfinished_thread(/*deallocate_in_thread=*/true);
}

TEST_F(TestLeaks, test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_main) {
  check_unfinished_thread(/*deallocate_in_thread=*/false);
}

// test_issue251_*: the last handle to a suspended greenlet is dropped on
// another thread. Its own thread kills it (so the destructors on its stack
// run there) on its next getcurrent(), its next greenlet creation, or at
// its exit, whichever comes first.
enum class collect_by { getcurrent, new_greenlet, thread_exit };

void check_issue251(collect_by how, bool explicit_reference_to_switch = false) {
  ASSERT_EQ(Tracked::extant, 0);
  std::binary_semaphore running{0};
  std::binary_semaphore dropped{0};
  std::vector<greenlet::greenlet> background_greenlets;
  std::thread::id killed_on;
  std::thread::id background_id;
  int extant_after_collect = -1;

  std::thread t([&] {
    background_id = std::this_thread::get_id();
    greenlet::greenlet glet([&] {
      Tracked jd;  // "DELETING STACK OBJECT"
      try {
        if (explicit_reference_to_switch) {
          greenlet::greenlet s = greenlet::getcurrent().parent();
          s.switch_();
        } else {
          greenlet::getcurrent().parent().switch_();
        }
      } catch (const greenlet::GreenletExit&) {
        killed_on = std::this_thread::get_id();
        throw;
      }
    });
    glet.switch_();  // be sure it is active
    background_greenlets.push_back(glet);
    glet = greenlet::greenlet();  // drop the reference of the thread it runs in
    running.release();
    dropped.acquire();
    // Dropped on the main thread: mailed here, not yet killed.
    EXPECT_EQ(Tracked::extant, 1);
    if (how == collect_by::getcurrent) {
      (void)greenlet::getcurrent();
      extant_after_collect = Tracked::extant;
    } else if (how == collect_by::new_greenlet) {
      greenlet::greenlet fresh([] {});
      extant_after_collect = Tracked::extant;
    }
  });
  running.acquire();
  ASSERT_EQ(background_greenlets.size(), 1u);
  EXPECT_FALSE(background_greenlets[0].dead());
  background_greenlets.clear();   // the last handle, from a different thread
  EXPECT_EQ(Tracked::extant, 1);  // nothing of it ran here
  dropped.release();
  t.join();

  if (how != collect_by::thread_exit) {
    EXPECT_EQ(extant_after_collect, 0);
  }
  EXPECT_EQ(Tracked::extant, 0);
  EXPECT_EQ(killed_on, background_id);
}

TEST_F(TestLeaks, test_issue251_killing_cross_thread_leaks_list) { check_issue251(collect_by::getcurrent); }

TEST_F(TestLeaks, KillingCrossThreadOnGreenletCreation) { check_issue251(collect_by::new_greenlet); }

TEST_F(TestLeaks, test_issue251_issue252_need_to_collect_in_background) { check_issue251(collect_by::thread_exit); }

// Python cannot collect a greenlet suspended while its stack holds a bound
// `parent.switch`; a handle to its parent on its stack is no obstacle here.
TEST_F(TestLeaks, test_issue251_issue252_explicit_reference_not_collectable) {
  check_issue251(collect_by::thread_exit, /*explicit_reference_to_switch=*/true);
}

// test_untracked_memory_doesnt_increase: making and finishing greenlets in a
// loop settles; after a warm-up, more rounds allocate nothing that stays.
TEST_F(TestLeaks, test_untracked_memory_doesnt_increase) {
  constexpr int iterations = 10000;
  auto run_it = [] {
    for (int i = 0; i < iterations; ++i) {
      greenlet::greenlet([] { return 1; }).switch_();
    }
  };
  run_it();
  const long before = greenlet_test::live_allocations();
  const std::size_t live_before = greenlet::debug::live_count();
  for (int round = 0; round < 3; ++round) run_it();
  EXPECT_EQ(greenlet_test::live_allocations(), before);
  EXPECT_EQ(greenlet::debug::live_count(), live_before);
}

}  // namespace
