// greenlet_threads_test.cpp: greenlets and threads, ported from greenlet's
// src/greenlet/tests/test_greenlet.py (TestGreenlet, TestRepr). A greenlet
// belongs to the thread that made it; handles dropped on another thread are
// mailed to the owner, which acts on them at its next getcurrent().
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace {

using TestGreenlet = greenlet_test::GreenletTest;
using TestRepr = greenlet_test::GreenletTest;
using greenlet_port::Event;
using greenlet_port::fmain;
using greenlet_port::SomeError;
using greenlet_port::switch_up;

// do_simple_test() is TestGreenlet._do_simple_test; true if it passed.
bool do_simple_test() { return greenlet_port::simple_test_events() == std::vector<int>{0, 1, 2, 3, 4}; }

TEST_F(TestGreenlet, test_threads) {
  std::atomic<int> success{0};
  std::vector<std::thread> ths;
  for (int i = 0; i < 10; ++i) {
    ths.emplace_back([&success] {
      if (do_simple_test()) ++success;
    });
  }
  for (std::thread& th : ths) th.join();
  EXPECT_EQ(success.load(), 10);
}

// Python skips the switch when `g.dead`; reading another thread's greenlet
// state while that thread kills it would be a data race in C++, and every
// switch into another thread's greenlet fails anyway, dead or not. Each
// switcher makes at least one pass, so the error count is known.
TEST_F(TestGreenlet, test_switching_many_threads) {
  constexpr int thread_count = 16;
  for (int rep = 0; rep < 20; ++rep) {
    std::mutex mutex;
    std::vector<greenlet::greenlet> greenlets;
    Event greenlets_all_created;
    Event all_threads_dead;
    std::atomic<int> attempts{0};
    std::atomic<int> errors{0};
    std::atomic<int> unexpected{0};

    auto creates_greenlet = [&] {
      greenlet::greenlet g([] {
        for (;;) switch_up();
      });
      g.switch_();
      {
        std::lock_guard<std::mutex> lock(mutex);
        greenlets.push_back(g);
      }
      greenlets_all_created.wait();
    };
    auto switches_from_other_thread = [&] {
      greenlets_all_created.wait();
      do {
        std::vector<greenlet::greenlet> snapshot;
        {
          std::lock_guard<std::mutex> lock(mutex);
          snapshot = greenlets;
        }
        for (greenlet::greenlet& g : snapshot) {
          ++attempts;
          try {
            g.switch_();
          } catch (const greenlet::error& e) {
            if (e.code() == greenlet::errc::wrong_thread || e.code() == greenlet::errc::thread_exited) {
              ++errors;
            } else {
              ++unexpected;
            }
          }
        }
      } while (!all_threads_dead.is_set());
    };

    std::vector<std::thread> creators;
    std::vector<std::thread> switchers;
    for (int i = 0; i < thread_count; ++i) creators.emplace_back(creates_greenlet);
    for (int i = 0; i < thread_count; ++i) switchers.emplace_back(switches_from_other_thread);

    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (greenlets.size() == thread_count) break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    greenlets_all_created.set();
    for (std::thread& t : creators) t.join();
    all_threads_dead.set();
    for (std::thread& t : switchers) t.join();

    EXPECT_EQ(unexpected.load(), 0);
    EXPECT_EQ(errors.load(), attempts.load());
    EXPECT_GE(errors.load(), thread_count * thread_count);
    for (const greenlet::greenlet& g : greenlets) EXPECT_TRUE(g.dead());
  }
}

TEST_F(TestGreenlet, test_dealloc_other_thread) {
  std::vector<std::string> seen;
  std::vector<greenlet::greenlet> someref;
  Event bg_glet_created_running_and_no_longer_ref_in_bg;
  Event fg_ref_released;
  Event bg_should_be_clear;
  Event ok_to_exit_bg_thread;

  std::thread t([&] {
    greenlet::greenlet g1(fmain);
    g1.switch_(&seen);
    someref.push_back(g1);
    g1 = greenlet::greenlet();
    bg_glet_created_running_and_no_longer_ref_in_bg.set();
    fg_ref_released.wait();

    (void)greenlet::getcurrent();  // trigger release
    bg_should_be_clear.set();
    ok_to_exit_bg_thread.wait();
    (void)greenlet::getcurrent();  // one more time
  });
  bg_glet_created_running_and_no_longer_ref_in_bg.wait();

  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(someref.size(), 1u);
  someref.clear();
  // g1 is not killed here, on the wrong thread: its own thread does that at
  // its next getcurrent().
  EXPECT_TRUE(seen.empty());
  fg_ref_released.set();
  bg_should_be_clear.wait();
  EXPECT_EQ(seen, (std::vector<std::string>{"GreenletExit"}));
  ok_to_exit_bg_thread.set();
  t.join();
}

// Python sleeps 0.2 s and 0.3 s; the length does not matter.
TEST_F(TestGreenlet, test_thread_bug) {
  std::atomic<int> ran{0};
  auto runner = [&ran](int ms) {
    greenlet::greenlet g([ms, &ran] {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      ++ran;
    });
    g.switch_();
  };
  std::thread t1(runner, 20);
  std::thread t2(runner, 30);
  t1.join();
  t2.join();
  EXPECT_EQ(ran.load(), 2);
}

TEST_F(TestGreenlet, test_switch_to_another_thread) {
  greenlet::greenlet data;
  Event created_event;
  Event done_event;
  std::thread thread([&] {
    data = greenlet::greenlet([] {});
    created_event.set();
    done_event.wait();
  });
  created_event.wait();
  try {
    data.switch_();
    ADD_FAILURE() << "switch_() into another thread's greenlet did not throw";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::wrong_thread) << e.what();
  }
  done_event.set();
  thread.join();
  EXPECT_FALSE(data.started());
  data = greenlet::greenlet();
}

// In Python the thread's cleanup may lag behind join(), so the wait=False
// variant accepts two messages. Here join() returns after the thread's
// greenlets were killed, so both variants see the greenlet dead and the
// "exited" message. The frame assertions are left out.
void do_test_throw_to_dead_thread_doesnt_crash(bool wait_for_cleanup) {
  std::vector<greenlet::greenlet> result;
  std::thread t([&result, wait_for_cleanup] {
    greenlet::greenlet g([] { switch_up(); });
    g.switch_();
    result.push_back(g);
    if (wait_for_cleanup) {
      // Let this greenlet eventually be cleaned up.
      g.switch_();
      (void)greenlet::getcurrent();
    }
  });
  t.join();
  ASSERT_EQ(result.size(), 1u);
  try {
    result[0].throw_(SomeError());
    ADD_FAILURE() << "throw_() into a dead thread's greenlet did not throw";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::thread_exited);
    EXPECT_EQ(greenlet_port::python_message(e), "cannot switch to a different thread (which happens to have exited)");
  }
  EXPECT_TRUE(result[0].dead());
  result.clear();
}

TEST_F(TestGreenlet, test_throw_to_dead_thread_doesnt_crash) { do_test_throw_to_dead_thread_doesnt_crash(false); }

TEST_F(TestGreenlet, test_throw_to_dead_thread_doesnt_crash_wait) { do_test_throw_to_dead_thread_doesnt_crash(true); }

// Python's finalizer runs while getcurrent() updates ts_current; here the
// Finalized object lives on the greenlet's stack and is destroyed when the
// main thread's getcurrent() kills the greenlet whose last handle another
// thread dropped. While it runs, the other thread runs getcurrent() too.
TEST_F(TestGreenlet, test_threaded_updatecurrent) {
  // Released when the main thread should run.
  std::binary_semaphore lock1(0);
  // Released when the other thread should run.
  std::binary_semaphore lock2(0);
  std::vector<std::string> events;

  struct Finalized {
    std::binary_semaphore& lock1;
    std::binary_semaphore& lock2;
    std::vector<std::string>& events;
    ~Finalized() {
      events.push_back("finalizer");
      // Let the other thread run while this thread is inside getcurrent().
      lock2.release();
      lock1.acquire();
    }
  };

  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<greenlet::greenlet> g;
  g.emplace_back([&] {
    Finalized bomb{lock1, lock2, events};
    switch_up();
  });
  g[0].switch_();
  std::thread t([&] {
    lock2.acquire();
    (void)greenlet::getcurrent();
    g.erase(g.begin());  // the last handle, dropped on the wrong thread
    lock1.release();
    lock2.acquire();
    (void)greenlet::getcurrent();
    lock1.release();
  });
  // Let the other thread drop g[0].
  lock2.release();
  lock1.acquire();
  events.push_back("getcurrent");
  const bool is_main = greenlet::getcurrent() == main;
  events.push_back("returned");
  EXPECT_TRUE(is_main);
  t.join();
  EXPECT_EQ(events, (std::vector<std::string>{"getcurrent", "finalizer", "returned"}));
}

// The subclass refcount of issue 245 has no C++ counterpart; what remains is
// many threads whose suspended greenlets lose their last handle on the main
// thread and are killed by their own thread's next getcurrent().
TEST_F(TestGreenlet, test_issue_245_reference_counting_subclass_threads) {
  constexpr int thread_count = 50;
  std::mutex mutex;
  std::vector<greenlet::greenlet> glets;
  Event ref_cleared;
  std::atomic<int> killed_by_getcurrent{0};

  struct Unwound {
    bool& flag;
    ~Unwound() { flag = true; }
  };

  auto thread_main = [&](Event* greenlet_running_event) {
    bool unwound = false;
    greenlet::greenlet mine([&unwound] {
      Unwound guard{unwound};
      switch_up();
    });
    {
      std::lock_guard<std::mutex> lock(mutex);
      glets.push_back(mine);
    }
    // The greenlets being dropped must be active.
    mine.switch_();
    // Keep no handle in this thread.
    mine = greenlet::greenlet();
    greenlet_running_event->set();
    ref_cleared.wait();
    // The owning thread acts on handles dropped elsewhere at getcurrent().
    const bool before = unwound;
    (void)greenlet::getcurrent();
    if (!before && unwound) ++killed_by_getcurrent;
  };

  std::vector<Event> thread_ready_events(thread_count);
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_count; ++i) threads.emplace_back(thread_main, &thread_ready_events[i]);
  for (Event& done_event : thread_ready_events) done_event.wait();

  {
    std::lock_guard<std::mutex> lock(mutex);
    glets.clear();
  }
  ref_cleared.set();
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(killed_by_getcurrent.load(), thread_count);
}

// repr " suspended active started main>" seen from another thread, and
// " current active started main>" for that thread's own; once the thread
// has exited its main greenlet is dead.
TEST_F(TestRepr, test_main_from_other_thread) {
  using states = std::tuple<bool, bool, bool, bool>;  // current, active, started, main
  auto states_of = [](const greenlet::greenlet& g) {
    return states(g == greenlet::getcurrent(), static_cast<bool>(g), g.started(), g.is_main());
  };
  greenlet::greenlet main = greenlet::getcurrent();
  states original_main;
  states thread_main;
  greenlet::greenlet main_glet;
  std::thread t([&] {
    original_main = states_of(main);
    main_glet = greenlet::getcurrent();
    thread_main = states_of(main_glet);
  });
  t.join();
  EXPECT_EQ(original_main, states(false, true, true, true));
  EXPECT_EQ(thread_main, states(true, true, true, true));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(main_glet.dead());
    EXPECT_FALSE(static_cast<bool>(main_glet));
  }
  main_glet = greenlet::greenlet();
}

}  // namespace
