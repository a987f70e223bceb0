// taskgroup_test.cpp: TaskGroup, ported from CPython's
// Lib/test/test_asyncio/test_taskgroups.py (cases named after theirs).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;

namespace {

using TestTaskGroup = greenlet_test::GreenletTest;

struct GroupErr : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> whats(const asyncio::ExceptionGroup& group) {
  std::vector<std::string> out;
  for (const auto& e : group.exceptions()) out.push_back(asyncio_test::what_of(e));
  return out;
}

// test_taskgroup_01: results of the children are there after the group.
TEST_F(TestTaskGroup, test_taskgroup_01) {
  asyncio::run(
      [] {
        asyncio::Task<int> t1, t2;
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          t1 = g.create_task([] {
            asyncio::sleep(0.1);
            return 42;
          });
          t2 = g.create_task([] {
            asyncio::sleep(0.2);
            return 11;
          });
        });
        EXPECT_EQ(t1.result(), 42);
        EXPECT_EQ(t2.result(), 11);
      },
      virtual_time());
}

// test_taskgroup_03: the group waits for children started by children.
TEST_F(TestTaskGroup, test_taskgroup_03) {
  asyncio::run(
      [] {
        asyncio::Task<int> t1, t2;
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          t1 = g.create_task([] {
            asyncio::sleep(0.1);
            return 42;
          });
          asyncio::sleep(0.15);
          t2 = g.create_task([] {
            asyncio::sleep(0.2);
            return 11;
          });
        });
        EXPECT_EQ(t1.result(), 42);
        EXPECT_EQ(t2.result(), 11);
      },
      virtual_time());
}

// test_taskgroup_05/06 (failure of one child cancels the others, the
// errors come out as an ExceptionGroup).
TEST_F(TestTaskGroup, test_taskgroup_06) {
  std::vector<std::string> events;
  asyncio::run(
      [&] {
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task([&] {
              try {
                asyncio::sleep(10);
              } catch (const asyncio::CancelledError&) {
                events.push_back("sibling cancelled");
                throw;
              }
            });
            g.create_task([] {
              asyncio::sleep(0.1);
              throw GroupErr("boom");
            });
            asyncio::sleep(10);  // the body is interrupted too
            events.push_back("body not interrupted");
          });
          events.push_back("no exception");
        } catch (const asyncio::ExceptionGroup& group) {
          EXPECT_EQ(whats(group), (std::vector<std::string>{"boom"}));
          EXPECT_EQ(group.message(), "unhandled errors in a TaskGroup");
          events.push_back("group");
        }
        // The group's own cancellation of this task was withdrawn.
        auto* self = asyncio::detail::awaiting_task().future();
        EXPECT_FALSE(self->cancelled());
      },
      virtual_time());
  EXPECT_EQ(events, (std::vector<std::string>{"sibling cancelled", "group"}));
}

// test_taskgroup_07: several failures are all reachable.
TEST_F(TestTaskGroup, test_taskgroup_07_several_errors) {
  asyncio::run(
      [] {
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task([] { throw GroupErr("first"); });
            g.create_task([] { throw GroupErr("second"); });
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& group) {
          EXPECT_EQ(whats(group), (std::vector<std::string>{"first", "second"}));
        }
      },
      virtual_time());
}

// test_taskgroup_08: the body's own exception joins the group, and the
// children are cancelled.
TEST_F(TestTaskGroup, test_taskgroup_08_body_error) {
  bool child_cancelled = false;
  asyncio::run(
      [&] {
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task([&] {
              try {
                asyncio::sleep(10);
              } catch (const asyncio::CancelledError&) {
                child_cancelled = true;
                throw;
              }
            });
            asyncio::sleep(0.1);
            throw GroupErr("from body");
          });
        } catch (const asyncio::ExceptionGroup& group) {
          EXPECT_EQ(whats(group), (std::vector<std::string>{"from body"}));
        }
      },
      virtual_time());
  EXPECT_TRUE(child_cancelled);
}

// test_taskgroup_cancel_parent: cancelling the task running the group
// cancels the children and the group raises CancelledError.
TEST_F(TestTaskGroup, test_cancel_parent_task_cancels_children) {
  std::vector<std::string> events;
  asyncio::run(
      [&] {
        auto runner = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task([&] {
              try {
                asyncio::sleep(10);
              } catch (const asyncio::CancelledError&) {
                events.push_back("child cancelled");
                throw;
              }
            });
            asyncio::sleep(10);
          });
        });
        asyncio::sleep(0.1);
        runner.cancel();
        try {
          asyncio::await(runner);
        } catch (const asyncio::CancelledError&) {
          events.push_back("runner cancelled");
        }
      },
      virtual_time());
  EXPECT_EQ(events, (std::vector<std::string>{"child cancelled", "runner cancelled"}));
}

// test_taskgroup_finished: no tasks after the group ended.
TEST_F(TestTaskGroup, test_create_task_after_finish_raises) {
  asyncio::run(
      [] {
        asyncio::TaskGroup* escaped = nullptr;
        asyncio::task_group([&](asyncio::TaskGroup& g) { escaped = &g; });
        (void)escaped;
      },
      virtual_time());
  asyncio::run(
      [] {
        asyncio::TaskGroup g;
        g.join();
        EXPECT_THROW(g.create_task([] {}), asyncio::RuntimeError);
      },
      virtual_time());
}

// The scoped form: the destructor waits for the children.
TEST_F(TestTaskGroup, ScopedGroupWaitsInDestructor) {
  asyncio::run(
      [] {
        asyncio::Task<int> t;
        {
          asyncio::TaskGroup g;
          t = g.create_task([] {
            asyncio::sleep(1);
            return 5;
          });
        }
        EXPECT_TRUE(t.done());
        EXPECT_EQ(t.result(), 5);
      },
      virtual_time());
}

// The scoped form, left by an exception: children are cancelled and the
// body's exception continues.
TEST_F(TestTaskGroup, ScopedGroupLeftByExceptionCancelsChildren) {
  asyncio::run(
      [] {
        asyncio::Task<> t;
        try {
          asyncio::TaskGroup g;
          t = g.create_task([] { asyncio::sleep(10); });
          asyncio::sleep(0.1);
          throw GroupErr("leaving");
        } catch (const GroupErr& e) {
          EXPECT_STREQ(e.what(), "leaving");
        }
        EXPECT_TRUE(t.cancelled());
      },
      virtual_time());
}

// Many children finishing in an order unrelated to their creation (each
// end unlists one child from the middle of the group's list): the group
// waits for the last, every child ran, and one failure among them cancels
// exactly the ones still running.
TEST_F(TestTaskGroup, ManyChildrenFinishingOutOfOrder) {
  constexpr int n = 300;
  std::vector<int> finished;
  int cancelled = 0;
  asyncio::run(
      [&] {
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          for (int i = 0; i < n; ++i) {
            // Delays scrambled by a multiplication modulo a prime.
            const double delay = static_cast<double>((i * 7919) % 311) / 100.0;
            g.create_task([&, i, delay] {
              asyncio::sleep(delay);
              finished.push_back(i);
            });
          }
        });
        EXPECT_EQ(finished.size(), static_cast<std::size_t>(n));
        std::vector<int> sorted = finished;
        std::sort(sorted.begin(), sorted.end());
        for (int i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
        EXPECT_NE(finished, sorted) << "the children were meant to finish out of creation order";

        finished.clear();
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            for (int i = 0; i < n; ++i) {
              const double delay = static_cast<double>((i * 7919) % 311) / 100.0;
              g.create_task([&, i, delay] {
                try {
                  asyncio::sleep(delay);
                } catch (const asyncio::CancelledError&) {
                  ++cancelled;
                  throw;
                }
                finished.push_back(i);
                if (i == 10) throw GroupErr("child 10");
              });
            }
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& group) {
          EXPECT_EQ(whats(group), (std::vector<std::string>{"child 10"}));
        }
      },
      virtual_time());
  // Child 10 sleeps (10 * 7919 % 311) / 100 s; every child due no later
  // finished before it failed (ties: those created first), the rest were
  // cancelled.
  const int due10 = (10 * 7919) % 311;
  int before = 0;
  for (int i = 0; i < n; ++i) {
    const int due = (i * 7919) % 311;
    if (due < due10 || (due == due10 && i <= 10)) ++before;
  }
  EXPECT_EQ(static_cast<int>(finished.size()), before);
  EXPECT_EQ(cancelled, n - before);
}

}  // namespace

namespace {

// A task inside task_group() when its loop closes: the kill (GreenletExit)
// must unwind it, as any task. task_group() took the kill for the body's
// error and awaited the children, so the task ended "finished" with
// "await outside a running event loop".
TEST(TaskGroupKill, LoopCloseUnwindsATaskInsideTaskGroup) {
  std::vector<std::string> log;
  struct noisy {
    std::vector<std::string>& log;
    const char* name;
    ~noisy() { log.push_back(std::string("~") + name); }
  };
  auto loop = greenlet::asyncio::new_event_loop();
  auto task = loop->create_task([&] {
    greenlet::asyncio::task_group([&](greenlet::asyncio::TaskGroup& tg) {
      tg.create_task([&] {
        noisy child{log, "child"};
        greenlet::asyncio::sleep(100);
      });
      noisy body{log, "body"};
      greenlet::asyncio::sleep(100);
    });
  });
  loop->run_until_complete(loop->create_task([] { greenlet::asyncio::sleep(0.01); }));
  loop->close();
  EXPECT_TRUE(task.cancelled()) << (task.done() ? "finished instead" : "still pending");
  EXPECT_NE(std::find(log.begin(), log.end(), "~body"), log.end());
  EXPECT_NE(std::find(log.begin(), log.end(), "~child"), log.end());
}

}  // namespace
