// async_generator_test.cpp: async_generator's lifetime, shutdown, context
// and PEP 525 protocol (asend/athrow). Cases follow CPython's
// Lib/test/test_asyncgen.py where there is one; each names its source.
// (aiter_test.cpp has the first async_generator cases, with aiter().)
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::Guard;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using AsyncGenLifetimeTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;
using AG = asyncio::async_generator<int>;

// ------------------------------------------- lifetime: anext() under way

// A pending __anext__ keeps its generator alive in Python: dropping the only
// reference while another task awaits anext() lets that anext() finish with
// the value, and the generator is finalized afterwards. Here the body's task
// had not run yet when the generator was dropped; it used to be cancelled
// before its first step, so the anext() waited for ever (and read the freed
// generator once cancelled).
TEST_F(AsyncGenLifetimeTests, dropped_while_anext_waits_for_unstarted_body) {
  Strings log;
  asyncio::run(
      [&] {
        std::optional<AG> holder(AG([&](AG::context& co) {
          Guard g{log, "body"};
          for (int i = 0; i < 3; ++i) {
            asyncio::sleep(0.01);
            co.yield(i);
          }
        }));
        auto consumer = asyncio::create_task([&] {
          std::optional<int> v = holder->anext();
          log.push_back("got " + (v ? std::to_string(*v) : "nothing"));
        });
        asyncio::sleep(0);  // the consumer is in anext(); the body's task has not started
        holder.reset();
        log.push_back("dropped");
        asyncio::await(consumer);
        asyncio::sleep(0);  // the finalizer's GeneratorExit unwinds the body
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"dropped", "got 0", "~body"}));
}

// The same with the body already running (awaiting its sleep) when the
// generator is dropped: it is not cancelled, the anext() gets its value.
TEST_F(AsyncGenLifetimeTests, dropped_while_anext_waits_for_running_body) {
  Strings log;
  asyncio::run(
      [&] {
        std::optional<AG> holder(AG([&](AG::context& co) {
          Guard g{log, "body"};
          try {
            asyncio::sleep(0.01);
          } catch (const asyncio::CancelledError&) {
            log.push_back("body cancelled");
            throw;
          }
          co.yield(7);
          co.yield(8);
        }));
        auto consumer = asyncio::create_task([&] {
          std::optional<int> v = holder->anext();
          log.push_back("got " + (v ? std::to_string(*v) : "nothing"));
        });
        asyncio::sleep(0);
        asyncio::sleep(0);  // the body is in its sleep now
        holder.reset();
        log.push_back("dropped");
        asyncio::await(consumer);
        asyncio::sleep(0);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"dropped", "got 7", "~body"}));
}

// A body woken at its yield by its own task group (a child failed), which
// swallows that error and runs on, the generator dropped meanwhile: nobody
// will resume it, so its next yield raises GeneratorExit (the finalizer's)
// instead of parking the body until the loop closes. (A consumer's cancel no
// longer leaves a body running: anext() waits for it to settle.)
TEST_F(AsyncGenLifetimeTests, abandoned_running_body_is_closed_at_its_next_yield) {
  Strings log;
  asyncio::run(
      [&] {
        std::optional<AG> holder(AG([&](AG::context& co) {
          try {
            asyncio::task_group([&](asyncio::TaskGroup& tg) {
              tg.create_task([] {
                asyncio::sleep(0.5);
                throw TestError("child");
              });
              co.yield(1);
            });
          } catch (const asyncio::ExceptionGroup&) {
            log.push_back("body woken at its yield");
          }
          asyncio::sleep(1);  // still running when the generator is dropped
          try {
            co.yield(2);
          } catch (const greenlet::GeneratorExit&) {
            log.push_back("GeneratorExit at the yield");
            throw;
          }
          log.push_back("resumed");
        }));
        EXPECT_EQ(holder->anext(), 1);
        asyncio::sleep(0.75);  // the body sleeps, on its own
        holder.reset();
        log.push_back("dropped");
        asyncio::sleep(2);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"body woken at its yield", "dropped", "GeneratorExit at the yield"}));
}

// A generator dropped while parked at a yield: its finalizer's GeneratorExit
// unwinds the body in the body's task, the task ends and its done callback
// finishes the generator's state. The task's function is destroyed as the
// body returns, before that callback: the state must not be owned by the
// function (AddressSanitizer reported a heap-use-after-free in the callback
// when it was; without it this test passes either way).
TEST_F(AsyncGenLifetimeTests, dropped_while_parked_is_finalized_after_its_task_lets_go_of_its_function) {
  Strings log;
  auto capture = std::make_shared<int>(0);
  long captures_after = -1;
  asyncio::run([&] {
    std::optional<AG> holder(AG([&, keep = capture](AG::context& co) {
      Guard g{log, "body"};
      co.yield(1);
      co.yield(2);
    }));
    EXPECT_EQ(holder->anext(), 1);
    holder.reset();
    log.push_back("dropped");
    for (int i = 0; i < 3; ++i) asyncio::sleep(0);
    captures_after = capture.use_count();
  });
  EXPECT_EQ(log, (Strings{"dropped", "~body"}));
  EXPECT_EQ(captures_after, 1);
}

// The same with a call under way when the generator is dropped, and the body
// returning rather than being closed: anext() gets the end, the generator is
// finalized as the call returns, and nothing outlives it.
TEST_F(AsyncGenLifetimeTests, dropped_while_anext_waits_for_the_body_to_return) {
  Strings log;
  auto capture = std::make_shared<int>(0);
  long captures_after = -1;
  asyncio::run([&] {
    std::optional<AG> holder(AG([&, keep = capture](AG::context&) {
      Guard g{log, "body"};
      asyncio::sleep(0);
    }));
    auto consumer = asyncio::create_task([&] {
      std::optional<int> v = holder->anext();
      log.push_back(v ? "got a value" : "got the end");
    });
    asyncio::sleep(0);  // the consumer waits in anext(); the body's task is queued
    holder.reset();
    log.push_back("dropped");
    asyncio::await(consumer);
    asyncio::sleep(0);
    captures_after = capture.use_count();
  });
  EXPECT_EQ(log, (Strings{"dropped", "~body", "got the end"}));
  EXPECT_EQ(captures_after, 1);
}

// A finished generator still held keeps nothing its body captured, as Python
// clears a finished async generator's frame: the body goes as it returns or
// throws (in its task, before anext() hears of the end), or when aclose() or
// athrow() finishes it unstarted. Before, the captures lived as long as the
// generator did.
TEST_F(AsyncGenLifetimeTests, finished_generator_keeps_none_of_its_bodys_captures) {
  Strings log;
  auto capture = std::make_shared<int>(0);
  long after_return = -1, after_throw = -1, after_aclose = -1, after_athrow = -1;
  asyncio::run([&] {
    AG returns([&, keep = capture](AG::context& co) {
      Guard g{log, "body"};
      co.yield(1);
    });
    EXPECT_EQ(returns.anext(), 1);
    EXPECT_EQ(returns.anext(), std::nullopt);
    after_return = capture.use_count();
    log.push_back("returned");

    AG throws([keep = capture](AG::context&) { throw TestError("boom"); });
    EXPECT_THROW(throws.anext(), TestError);
    after_throw = capture.use_count();

    AG closed([keep = capture](AG::context& co) { co.yield(1); });
    closed.aclose();
    after_aclose = capture.use_count();

    AG thrown_into([keep = capture](AG::context& co) { co.yield(1); });
    EXPECT_THROW(thrown_into.athrow(TestError("in")), TestError);
    after_athrow = capture.use_count();
    EXPECT_TRUE(returns.finished() && throws.finished() && closed.finished() && thrown_into.finished());
  });
  EXPECT_EQ(log, (Strings{"~body", "returned"}));
  EXPECT_EQ(after_return, 1);
  EXPECT_EQ(after_throw, 1);
  EXPECT_EQ(after_aclose, 1);
  EXPECT_EQ(after_athrow, 1);
}

// vm_bytes() is the process's virtual size.
[[maybe_unused]] unsigned long vm_bytes() {
  std::ifstream statm("/proc/self/statm");
  unsigned long pages = 0;
  statm >> pages;
  return pages * static_cast<unsigned long>(::sysconf(_SC_PAGESIZE));
}

// The child of body_task_without_a_stack_fails_anext: the body's task cannot
// map a stack (RLIMIT_AS leaves no room), so it ends before the body runs.
[[noreturn, maybe_unused]] void anext_with_no_stack_for_the_body() {
  ::alarm(20);
  std::string first, second;
  asyncio::run([&] {
    AG gen([](AG::context& co) { co.yield(7); });
    rlimit old{};
    ::getrlimit(RLIMIT_AS, &old);
    rlimit tight = old;
    // malloc grows its heap by what a request needs plus M_TOP_PAD (128 KiB),
    // and shrinks it on a free down to that pad: with it, a small allocation
    // could hit the limit first, or a free make room for the stack. No pad,
    // and the heap trimmed before measuring, so that neither can happen.
    ::mallopt(M_TOP_PAD, 0);
    ::malloc_trim(0);
    tight.rlim_cur = vm_bytes() + 64 * 1024;  // less than a task's stack
    ::setrlimit(RLIMIT_AS, &tight);
    try {
      gen.anext();
      first = "a value";
    } catch (const greenlet::error& e) {
      first = e.code() == greenlet::errc::stack_exhausted ? "stack_exhausted" : e.what();
    } catch (const std::exception& e) {
      first = e.what();
    }
    ::setrlimit(RLIMIT_AS, &old);
    try {
      second = gen.anext() ? "a value" : "nullopt";
    } catch (const std::exception& e) {
      second = e.what();
    }
  });
  std::fprintf(stderr, "FIRST %s SECOND %s\n", first.c_str(), second.c_str());
  std::_Exit(0);
}

// A body whose task fails before its first step (no stack could be mapped):
// the pending anext() raises that error and the generator is finished. It
// used to wait for ever (the loop reported a deadlock; the error only as
// "Task exception was never retrieved"), and the next anext() said "already
// running".
TEST(AsyncGenLifetimeDeathTest, body_task_without_a_stack_fails_anext) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer needs more address space than RLIMIT_AS leaves";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(anext_with_no_stack_for_the_body(), ::testing::ExitedWithCode(0), "FIRST stack_exhausted SECOND nullopt");
#endif
}

}  // namespace

namespace {

using AsyncGenShutdownTests = greenlet_test::GreenletTest;
using AsyncGenContextTests = greenlet_test::GreenletTest;
using asyncio_test::error_log;

// ------------------------------------ all_tasks() and asyncio::run's end

// The body's task is a part of its consumer's, as in Python, where the body
// runs in the consumer's task: all_tasks() does not list it, so the common
// "cancel every other task" leaves the generator working. It was listed,
// and cancelling it finished the generator.
TEST_F(AsyncGenShutdownTests, all_tasks_does_not_list_the_body) {
  Strings log;
  asyncio::run([&] {
    AG gen([&](AG::context& co) {
      Guard g{log, "body"};
      for (int i = 0; i < 5; ++i) co.yield(i);
    });
    EXPECT_EQ(gen.anext(), 0);
    std::vector<asyncio::AnyTask> tasks = asyncio::all_tasks();
    EXPECT_EQ(tasks.size(), 1u);  // main only
    for (asyncio::AnyTask& t : tasks) {
      if (!(t == asyncio::current_task())) t.cancel();
    }
    asyncio::sleep(0);
    asyncio::sleep(0);
    EXPECT_EQ(gen.anext(), 1);
    gen.aclose();
    log.push_back("closed");
  });
  EXPECT_EQ(log, (Strings{"~body", "closed"}));
}

// ticks(name, log) yields for ever and logs how it is ended.
AG ticks(const std::string& name, Strings& log) {
  return AG([name, &log](AG::context& co) {
    try {
      for (int i = 0;; ++i) co.yield(i);
    } catch (const greenlet::GeneratorExit&) {
      log.push_back(name + " GeneratorExit");
      throw;
    } catch (const asyncio::CancelledError&) {
      log.push_back(name + " CancelledError");
      throw;
    } catch (const greenlet::GreenletExit&) {
      log.push_back(name + " GreenletExit");
      throw;
    }
  });
}

// asyncio.run ends with loop.shutdown_asyncgens(): a generator still parked
// at a yield is closed with aclose(), GeneratorExit at the yield (after the
// remaining tasks were cancelled). Its body was cancelled instead
// (CancelledError), like any task. The generators outlive the run here.
TEST_F(AsyncGenShutdownTests, run_closes_live_generators_with_generator_exit) {
  Strings log;
  std::vector<AG> keep;
  asyncio::run([&] {
    keep.push_back(ticks("K", log));
    EXPECT_EQ(keep.back().anext(), 0);
    AG other = ticks("U", log);
    asyncio::await(asyncio::create_task([&] { EXPECT_EQ(other.anext(), 0); }));  // started by a task now gone
    keep.push_back(std::move(other));
    log.push_back("main returns");
  });
  log.push_back("after run");
  keep.clear();
  // Oldest first, as Python 3.11 closes them (its WeakSet lists them in creation order here).
  EXPECT_EQ(log, (Strings{"main returns", "K GeneratorExit", "U GeneratorExit", "after run"}));
}

// test_asyncgen.py test_async_gen_asyncio_shutdown_01: two consumers in
// async for, cancelled at the end of run(); their generators' cleanups,
// which await, run to completion at shutdown.
TEST_F(AsyncGenShutdownTests, test_async_gen_asyncio_shutdown_01) {
  int finalized = 0;
  asyncio::run(
      [&] {
        auto waiter = [&](double timeout) {
          return AG([&finalized, timeout](AG::context& co) {
            struct cleanup {
              int& finalized;
              ~cleanup() {
                try {  // Python's `finally: await sleep(0); finalized += 1`
                  asyncio::sleep(0);
                  ++finalized;
                } catch (const asyncio::CancelledError&) {
                }
              }
            } c{finalized};
            asyncio::sleep(timeout);
            co.yield(1);
          });
        };
        auto wait = [&] {
          for (int i : asyncio::aiter(waiter(1))) (void)i;
        };
        asyncio::create_task(wait);
        asyncio::create_task(wait);
        asyncio::sleep(0.1);
      },
      virtual_time());
  EXPECT_EQ(finalized, 2);
}

// What a body closed at run()'s end throws goes to the loop's exception
// handler, as shutdown_asyncgens() reports "an error occurred during
// closing of asynchronous generator".
TEST_F(AsyncGenShutdownTests, error_while_closing_at_shutdown_is_reported) {
  error_log errors;
  std::optional<AG> keep;
  asyncio::run([&] {
    errors.attach(asyncio::get_running_loop());
    keep.emplace([](AG::context& co) {
      try {
        co.yield(1);
      } catch (const greenlet::GeneratorExit&) {
        throw TestError("cleanup failed");
      }
    });
    EXPECT_EQ(keep->anext(), 1);
  });
  keep.reset();
  ASSERT_EQ(errors.messages.size(), 1u);
  EXPECT_EQ(errors.messages[0], "an error occurred during closing of asynchronous generator");
  EXPECT_EQ(errors.whats[0], "cleanup failed");
}

// The same for a generator finalized by its destructor (asyncio's finalizer
// hook runs aclose() in a task whose exception is then reported): the error
// was lost.
TEST_F(AsyncGenShutdownTests, error_while_finalizing_is_reported) {
  error_log errors;
  asyncio::run([&] {
    errors.attach(asyncio::get_running_loop());
    {
      AG gen([](AG::context& co) {
        try {
          co.yield(1);
        } catch (const greenlet::GeneratorExit&) {
          throw TestError("cleanup failed");
        }
      });
      EXPECT_EQ(gen.anext(), 1);
    }
    asyncio::sleep(0);
    asyncio::sleep(0);
  });
  ASSERT_EQ(errors.messages.size(), 1u);
  EXPECT_EQ(errors.messages[0], "an error occurred during closing of asynchronous generator");
  EXPECT_EQ(errors.whats[0], "cleanup failed");
}

// ---------------------------------------------------------------- context

asyncio::context_var<std::string> var("var", std::string("default"));

// The body runs in the context of the task that resumes it, at every step
// (in Python they are one task): it sees what the consumer set since the
// last step, and the consumer sees what it set. The body's task copied the
// context once, at the first anext(), and kept its own.
TEST_F(AsyncGenContextTests, each_step_runs_in_the_consumers_context) {
  Strings log;
  asyncio::run([&] {
    var.set("consumer1");
    AG gen([&](AG::context& co) {
      log.push_back("body sees " + var.get());
      var.set("body");
      co.yield(1);
      log.push_back("body sees " + var.get());
      co.yield(2);
    });
    gen.anext();
    log.push_back("consumer sees " + var.get());
    var.set("consumer2");
    gen.anext();
    gen.aclose();
  });
  EXPECT_EQ(log, (Strings{"body sees consumer1", "consumer sees body", "body sees consumer2"}));
}

// Two consumer tasks in turn: each step sees its own consumer's context,
// and aclose() runs the body's cleanup in the closer's.
TEST_F(AsyncGenContextTests, steps_of_different_tasks_see_each_ones_context) {
  Strings log;
  asyncio::run([&] {
    AG gen([&](AG::context& co) {
      try {
        for (int i = 0;; ++i) {
          log.push_back("step " + std::to_string(i) + " sees " + var.get());
          co.yield(i);
        }
      } catch (const greenlet::GeneratorExit&) {
        log.push_back("closing sees " + var.get());
        throw;
      }
    });
    auto step_in_task = [&](const std::string& value) {
      asyncio::await(asyncio::create_task([&] {
        var.set(value);
        gen.anext();
      }));
    };
    step_in_task("A");
    step_in_task("B");
    var.set("main");
    gen.aclose();
  });
  EXPECT_EQ(log, (Strings{"step 0 sees A", "step 1 sees B", "closing sees main"}));
}

// ----------------------------------------------------------- current_task()

using AsyncGenCurrentTaskTests = greenlet_test::GreenletTest;

// same_task(t, consumer) says which task t is: "consumer", "another task" or "no task".
std::string same_task(const asyncio::AnyTask& t, const asyncio::AnyTask& consumer) {
  if (t.empty()) return "no task";
  return t == consumer ? "consumer" : "another task";
}

// In Python the body runs in the task that awaits anext(): current_task()
// there is the consumer, before and after the body's own awaits and across
// yields, and all_tasks() lists it. It was the hidden task that runs the
// body (unlisted, never cancelled with the consumer).
TEST_F(AsyncGenCurrentTaskTests, body_current_task_is_the_consumer) {
  Strings log;
  asyncio::run([&] {
    const asyncio::AnyTask consumer = asyncio::current_task();
    AG gen([&](AG::context& co) {
      log.push_back("start: " + same_task(asyncio::current_task(), consumer));
      asyncio::sleep(0);
      log.push_back("after an await: " + same_task(asyncio::current_task(), consumer));
      co.yield(1);
      log.push_back("resumed: " + same_task(asyncio::current_task(), consumer));
      const std::vector<asyncio::AnyTask> all = asyncio::all_tasks();
      log.push_back(std::string("listed: ") +
                    (std::find(all.begin(), all.end(), asyncio::current_task()) != all.end() ? "yes" : "no"));
      co.yield(2);
    });
    EXPECT_EQ(gen.anext(), 1);
    EXPECT_EQ(gen.anext(), 2);
    EXPECT_TRUE(asyncio::current_task() == consumer);
    gen.aclose();
  });
  EXPECT_EQ(log, (Strings{"start: consumer", "after an await: consumer", "resumed: consumer", "listed: yes"}));
}

// Each step's current task is the one calling anext() (asend(), athrow(),
// aclose()) then: another task stepping it, and a task closing it, as in
// Python (`await create_task(g.aclose(), name="closer")` runs the body's
// finally in "closer").
TEST_F(AsyncGenCurrentTaskTests, each_step_sees_the_task_stepping_it) {
  Strings log;
  asyncio::run([&] {
    asyncio::async_generator<int, int> gen([&](auto& co) {
      try {
        for (;;) {
          log.push_back(asyncio::current_task().get_name());
          co.yield(0);
        }
      } catch (const TestError&) {
        log.push_back("athrow in " + asyncio::current_task().get_name());
        throw;
      }
    });
    asyncio::current_task().set_name("main");
    gen.anext();
    asyncio::await(asyncio::create_task([&] { gen.asend(5); }, "sender"));
    asyncio::await(asyncio::create_task(
        [&] {
          try {
            gen.athrow(TestError("x"));
          } catch (const TestError&) {
          }
        },
        "thrower"));
    EXPECT_TRUE(gen.finished());
    asyncio::async_generator<int> closing([&](auto& co) {
      try {
        co.yield(1);
      } catch (const greenlet::GeneratorExit&) {
        log.push_back("closing in " + asyncio::current_task().get_name());
        throw;
      }
    });
    closing.anext();
    asyncio::await(asyncio::create_task([&] { closing.aclose(); }, "closer"));
  });
  EXPECT_EQ(log, (Strings{"main", "sender", "athrow in thrower", "closing in closer"}));
}

// A generator consumed by another generator's body: the inner body's
// current task is the outer one's, the task consuming the outer generator
// (in Python all three run in that task).
TEST_F(AsyncGenCurrentTaskTests, nested_generators_see_the_outermost_consumer) {
  Strings log;
  asyncio::run([&] {
    const asyncio::AnyTask consumer = asyncio::current_task();
    AG outer([&](AG::context& co) {
      AG inner([&](AG::context& ico) {
        log.push_back("inner: " + same_task(asyncio::current_task(), consumer));
        ico.yield(1);
      });
      log.push_back("outer: " + same_task(asyncio::current_task(), consumer));
      for (int i : asyncio::aiter(inner)) co.yield(i);
    });
    for (int i : asyncio::aiter(outer)) EXPECT_EQ(i, 1);
  });
  EXPECT_EQ(log, (Strings{"outer: consumer", "inner: consumer"}));
}

// The body cancelling its current task cancels the consumer, as in Python
// (one task): CancelledError at the body's next await and out of anext(),
// the request counted on the consumer (Python: cancelling() == 1). The body
// cancelled its hidden task instead, leaving the consumer's count at 0.
// As in Python, anext() raises once the body has seen its CancelledError.
TEST_F(AsyncGenCurrentTaskTests, body_cancelling_current_task_cancels_the_consumer) {
  std::string body_saw = "nothing";
  std::string consumer_saw = "nothing";
  asyncio::run([&] {
    AG gen([&](AG::context& co) {
      asyncio::current_task().cancel();
      try {
        asyncio::sleep(0);
      } catch (const asyncio::CancelledError&) {
        body_saw = "CancelledError";
        throw;
      }
      co.yield(1);
    });
    try {
      gen.anext();
      consumer_saw = "a value";
    } catch (const asyncio::CancelledError&) {
      consumer_saw = "CancelledError, cancelling " + std::to_string(asyncio::current_task().cancelling()) +
                     ", body saw " + body_saw;
      asyncio::current_task().uncancel();
    }
  });
  EXPECT_EQ(body_saw, "CancelledError");
  EXPECT_EQ(consumer_saw, "CancelledError, cancelling 1, body saw CancelledError");
}

// A body run by no anext() (finalized by the destructor, or closed at
// asyncio::run()'s end) runs as Python's aclose() task would: a task, never
// the consumer, which has moved on. The consumer's own current_task() is
// back to itself after each step.
TEST_F(AsyncGenCurrentTaskTests, body_between_steps_is_not_the_consumer) {
  Strings log;
  std::optional<AG> keep;
  auto closing_logger = [&log](const asyncio::AnyTask& consumer) {
    return [&log, consumer](AG::context& co) {
      try {
        co.yield(1);
      } catch (const greenlet::GeneratorExit&) {
        log.push_back("closed: " + same_task(asyncio::current_task(), consumer));
        throw;
      }
    };
  };
  asyncio::run([&] {
    const asyncio::AnyTask consumer = asyncio::current_task();
    {
      AG dropped(closing_logger(consumer));
      EXPECT_EQ(dropped.anext(), 1);
      EXPECT_TRUE(asyncio::current_task() == consumer);
    }
    asyncio::sleep(0);
    asyncio::sleep(0);
    keep.emplace(closing_logger(consumer));
    EXPECT_EQ(keep->anext(), 1);
  });
  keep.reset();
  EXPECT_EQ(log, (Strings{"closed: another task", "closed: another task"}));
}

}  // namespace

namespace {

using AsyncGenProtocolTests = greenlet_test::GreenletTest;
using Ints = std::vector<int>;
using SendingAG = asyncio::async_generator<int, int>;

// FooError is test_asyncgen.py's FooEr.
class FooError : public std::runtime_error {
 public:
  FooError() : std::runtime_error("FooEr") {}
};

// sleep_n_crash(delay) is test_asyncgen.py's: a sleep in a task of its own,
// cancelled halfway by a timer, awaited: CancelledError.
void sleep_n_crash(double delay) {
  auto sleeper = asyncio::create_task([delay] { asyncio::sleep(delay); });
  asyncio::get_running_loop().call_later(delay / 2, [sleeper]() mutable { sleeper.cancel(); });
  asyncio::await(sleeper);
}

// ----------------------------------------------------------------- asend()

// test_asyncgen.py test_async_gen_exception_10: a value sent to a
// just-started generator is refused (Python's TypeError); the generator
// stays unstarted and starts on asend(None).
TEST_F(AsyncGenProtocolTests, test_async_gen_exception_10) {
  asyncio::run([] {
    SendingAG gen([](SendingAG::context& co) { co.yield(123); });
    try {
      gen.asend(100);
      ADD_FAILURE() << "asend(100) to a just-started generator did not throw";
    } catch (const greenlet::generator_error& e) {
      EXPECT_EQ(e.code(), greenlet::generator_errc::just_started);
      EXPECT_EQ(std::string(e.what()).rfind("can't send non-None value to a just-started async generator", 0), 0u)
          << e.what();
    }
    EXPECT_EQ(gen.asend(std::nullopt), 123);
  });
}

// test_asyncgen.py test_async_gen_asyncio_anext_05: what asend() sends is
// what the pending yield returns; anext() sends nothing.
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_anext_05) {
  asyncio::run([] {
    SendingAG gen([](SendingAG::context& co) {
      std::optional<int> v = co.yield(1);
      v = co.yield(v.value_or(-1));
      co.yield(v.value_or(-1) * 100);
    });
    EXPECT_EQ(gen.anext(), 1);
    EXPECT_EQ(gen.asend(10), 10);
    EXPECT_EQ(gen.asend(12), 1200);
    EXPECT_EQ(gen.anext(), std::nullopt);
    EXPECT_EQ(gen.asend(5), std::nullopt);  // exhausted: Python's StopAsyncIteration
  });
}

// test_asyncgen.py test_async_gen_asyncio_anext_06: a body that returns
// after its yield ends asend(None) with StopAsyncIteration (nullopt).
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_anext_06) {
  int done = 0;
  asyncio::run([&] {
    SendingAG gen([&](SendingAG::context& co) {
      try {
        co.yield(0);
      } catch (...) {
      }
      done = 1;
    });
    EXPECT_EQ(gen.asend(), 0);
    EXPECT_EQ(gen.asend(std::nullopt), std::nullopt);
    done += 10;
  });
  EXPECT_EQ(done, 11);
}

// cleanup is a body's `finally: await sleep(0.01); await sleep(0.01); DONE = 1`.
struct cleanup {
  int& done;
  ~cleanup() {
    asyncio::sleep(0.01);
    asyncio::sleep(0.01);
    done = 1;
  }
};

// test_asyncgen.py test_async_gen_asyncio_asend_01.
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_asend_01) {
  int done = 0;
  asyncio::run(
      [&] {
        SendingAG gen([&](SendingAG::context& co) {
          cleanup c{done};
          asyncio::sleep(0.01);
          std::optional<int> v = co.yield(1);
          asyncio::sleep(0.01);
          co.yield(v.value_or(-1) * 2);
          asyncio::sleep(0.01);
        });
        EXPECT_EQ(gen.asend(std::nullopt), 1);
        EXPECT_EQ(gen.asend(100), 200);
        EXPECT_EQ(gen.asend(std::nullopt), std::nullopt);
      },
      virtual_time());
  EXPECT_EQ(done, 1);
}

// test_asyncgen.py test_async_gen_asyncio_asend_02: the body fails after
// the value sent: asend() raises that, and the body's cleanup ran.
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_asend_02) {
  int done = 0;
  EXPECT_THROW(asyncio::run(
                   [&] {
                     SendingAG gen([&](SendingAG::context& co) {
                       cleanup c{done};
                       asyncio::sleep(0.01);
                       std::optional<int> v = co.yield(1);
                       asyncio::sleep(0.01);
                       throw TestError("1 / 0");
                       done += 1000;
                       co.yield(v.value_or(-1) * 2);
                     });
                     EXPECT_EQ(gen.asend(std::nullopt), 1);
                     gen.asend(100);
                   },
                   virtual_time()),
               TestError);
  EXPECT_EQ(done, 1);
}

// test_asyncgen.py test_async_gen_asyncio_asend_03: the body's await is
// cancelled: asend() raises CancelledError, after the body's cleanup.
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_asend_03) {
  int done = 0;
  EXPECT_THROW(asyncio::run(
                   [&] {
                     SendingAG gen([&](SendingAG::context& co) {
                       cleanup c{done};
                       asyncio::sleep(0.01);
                       std::optional<int> v = co.yield(1);
                       sleep_n_crash(0.01);
                       done += 1000;
                       co.yield(v.value_or(-1) * 2);
                     });
                     EXPECT_EQ(gen.asend(std::nullopt), 1);
                     gen.asend(100);
                   },
                   virtual_time()),
               asyncio::CancelledError);
  EXPECT_EQ(done, 1);
}

// ---------------------------------------------------------------- athrow()

// test_asyncgen.py test_async_gen_asyncio_athrow_01: the body catches what
// athrow() raises at its yield and yields again: athrow() returns that.
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_athrow_01) {
  int done = 0;
  asyncio::run(
      [&] {
        SendingAG gen([&](SendingAG::context& co) {
          cleanup c{done};
          asyncio::sleep(0.01);
          int v = 0;
          try {
            v = co.yield(1).value_or(-1);
          } catch (const FooError&) {
            v = 1000;
            asyncio::sleep(0.01);
          }
          co.yield(v * 2);
          asyncio::sleep(0.01);
        });
        EXPECT_EQ(gen.asend(std::nullopt), 1);
        EXPECT_EQ(gen.athrow(FooError()), 2000);
        EXPECT_EQ(gen.asend(std::nullopt), std::nullopt);
      },
      virtual_time());
  EXPECT_EQ(done, 1);
}

// test_asyncgen.py test_async_gen_asyncio_athrow_02: the body's handler is
// cancelled: athrow() raises CancelledError once the cleanup has run.
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_athrow_02) {
  int done = 0;
  EXPECT_THROW(asyncio::run(
                   [&] {
                     SendingAG gen([&](SendingAG::context& co) {
                       cleanup c{done};
                       asyncio::sleep(0.01);
                       int v = 0;
                       try {
                         v = co.yield(1).value_or(-1);
                       } catch (const FooError&) {
                         sleep_n_crash(0.01);
                       }
                       co.yield(v * 2);
                     });
                     EXPECT_EQ(gen.asend(std::nullopt), 1);
                     try {
                       gen.athrow(FooError());
                     } catch (const asyncio::CancelledError&) {
                       EXPECT_EQ(done, 1);
                       throw;
                     }
                     ADD_FAILURE() << "CancelledError was not raised";
                   },
                   virtual_time()),
               asyncio::CancelledError);
  EXPECT_EQ(done, 1);
}

// test_asyncgen.py test_async_gen_asyncio_athrow_03: the body swallows the
// exception and returns: athrow() ends with StopAsyncIteration (nullopt).
TEST_F(AsyncGenProtocolTests, test_async_gen_asyncio_athrow_03) {
  int done = 0;
  asyncio::run([&] {
    AG gen([&](AG::context& co) {
      try {
        co.yield(0);
      } catch (...) {
      }
      done = 1;
    });
    EXPECT_EQ(gen.asend(), 0);
    EXPECT_EQ(gen.athrow(TestError("ValueError")), std::nullopt);
    done += 10;
  });
  EXPECT_EQ(done, 11);
}

// athrow() into a generator that has not started raises at once, without
// running the body, and finishes it; into a finished one it returns nothing
// (Python 3.11: athrow() of an exhausted generator returns None); what the
// body does not catch comes back out.
TEST_F(AsyncGenProtocolTests, athrow_unstarted_finished_and_uncaught) {
  bool ran = false;
  asyncio::run([&] {
    AG fresh([&](AG::context& co) {
      ran = true;
      co.yield(1);
    });
    EXPECT_THROW(fresh.athrow(TestError("fresh")), TestError);
    EXPECT_TRUE(fresh.finished());
    EXPECT_EQ(fresh.anext(), std::nullopt);

    AG gen([](AG::context& co) { co.yield(1); });
    EXPECT_EQ(gen.anext(), 1);
    EXPECT_THROW(gen.athrow(TestError("escapes")), TestError);
    EXPECT_TRUE(gen.finished());
    EXPECT_EQ(gen.athrow(TestError("after")), std::nullopt);
    EXPECT_EQ(gen.anext(), std::nullopt);
    EXPECT_THROW(gen.athrow(std::exception_ptr()), asyncio::ValueError);
  });
  EXPECT_FALSE(ran);
}

// test_asyncgen.py test_async_gen_exception_11: GeneratorExit thrown in by
// athrow() (not aclose()) passes through the body to the caller, which may
// go on yielding. Compared with the sync generator's throw(), as there.
TEST_F(AsyncGenProtocolTests, test_async_gen_exception_11) {
  Ints got = asyncio::run([] {
    AG wrapper([](AG::context& co) {
      co.yield(1);
      AG inner([](AG::context& c) {
        c.yield(10);
        c.yield(20);
      });
      inner.asend();
      try {
        inner.athrow(greenlet::GeneratorExit());
      } catch (const greenlet::GeneratorExit&) {
        co.yield(2);
      }
      co.yield(3);
    });
    Ints out;
    for (int i : asyncio::aiter(wrapper)) out.push_back(i);
    return out;
  });
  EXPECT_EQ(got, (Ints{1, 2, 3}));

  greenlet::generator<int> sync_wrapper([](greenlet::generator<int>::context& co) {
    co.yield(1);
    greenlet::generator<int> inner([](greenlet::generator<int>::context& c) {
      c.yield(10);
      c.yield(20);
    });
    inner.next();
    try {
      inner.throw_(greenlet::GeneratorExit());
    } catch (const greenlet::GeneratorExit&) {
      co.yield(2);
    }
    co.yield(3);
  });
  Ints sync_got;
  for (int i : sync_wrapper) sync_got.push_back(i);
  EXPECT_EQ(sync_got, got);
}

// test_asyncgen.py test_async_gen_exception_06 (PEP 479): StopIteration
// escaping the body becomes RuntimeError.
TEST_F(AsyncGenProtocolTests, test_async_gen_exception_06) {
  asyncio::run([] {
    AG gen([](AG::context& co) {
      co.yield(123);
      throw greenlet::StopIteration();
    });
    EXPECT_EQ(gen.anext(), 123);
    try {
      gen.anext();
      ADD_FAILURE() << "no RuntimeError";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("async generator raised StopIteration"), std::string::npos) << e.what();
    }
  });
}

// asend() and athrow() while the body runs are refused, as anext().
TEST_F(AsyncGenProtocolTests, asend_and_athrow_while_running_are_runtime_errors) {
  asyncio::run(
      [] {
        SendingAG gen([](SendingAG::context& co) {
          co.yield(0);
          asyncio::sleep(0.01);
          co.yield(1);
        });
        EXPECT_EQ(gen.anext(), 0);
        auto first = asyncio::create_task([&] { return gen.asend(5); });
        asyncio::sleep(0);
        EXPECT_THROW(gen.asend(6), asyncio::RuntimeError);
        EXPECT_THROW(gen.athrow(TestError("x")), asyncio::RuntimeError);
        EXPECT_THROW(gen.aclose(), asyncio::RuntimeError);
        EXPECT_EQ(asyncio::await(first), 1);
      },
      virtual_time());
}

// Move-only values both ways.
TEST_F(AsyncGenProtocolTests, move_only_sent_values) {
  int sum = asyncio::run([] {
    asyncio::async_generator<std::unique_ptr<int>, std::unique_ptr<int>> gen([](auto& co) {
      std::optional<std::unique_ptr<int>> got = co.yield(std::make_unique<int>(1));
      while (got) got = co.yield(std::make_unique<int>(**got * 2));
    });
    int total = **gen.anext();
    total += **gen.asend(std::make_unique<int>(5));
    EXPECT_EQ(gen.asend(std::nullopt), std::nullopt);
    return total;
  });
  EXPECT_EQ(sum, 11);
}

// -------------------------------------- a body that fails at its yield

using AsyncGenFailureTests = greenlet_test::GreenletTest;

// whats_of(group) is the whats of an ExceptionGroup's exceptions.
Strings whats_of(const asyncio::ExceptionGroup& group) {
  Strings whats;
  for (const std::exception_ptr& e : group.exceptions()) whats.push_back(asyncio_test::what_of(e));
  return whats;
}

// A task group's child fails while the body is parked at its yield inside
// the group: the body's task is cancelled there and the group raises
// ExceptionGroup. The next anext() raises it, as Python's does (the body runs
// in the consumer's task there, the failure surfacing when it resumes); then
// the generator is finished. The error went to the exception handler ("had no
// anext() to go to") and the next anext() returned std::nullopt as if the
// body had ended normally.
TEST_F(AsyncGenFailureTests, task_group_failure_at_the_yield_is_raised_by_the_next_anext) {
  error_log errors;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        AG gen([](AG::context& co) {
          asyncio::task_group([&](asyncio::TaskGroup& tg) {
            tg.create_task([] {
              asyncio::sleep(0.01);
              throw TestError("child");
            });
            co.yield(1);
            asyncio::sleep(1);
          });
        });
        EXPECT_EQ(gen.anext(), 1);
        asyncio::sleep(0.05);  // the child fails meanwhile
        EXPECT_TRUE(gen.finished());
        try {
          gen.anext();
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& e) {
          EXPECT_EQ(whats_of(e), (Strings{"child"}));
        }
        EXPECT_EQ(gen.anext(), std::nullopt);
      },
      virtual_time());
  EXPECT_EQ(errors.messages, Strings{});
}

// The body's own timeout() expiring while it is parked at its yield: the next
// step raises the TimeoutError, athrow() too (rather than what it throws in),
// and asend() on another generator; then the generators are finished.
TEST_F(AsyncGenFailureTests, timeout_at_the_yield_is_raised_by_the_next_athrow_or_asend) {
  error_log errors;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        auto body = [](SendingAG::context& co) {
          asyncio::timeout(0.01, [&] {
            co.yield(1);
            co.yield(2);
          });
        };
        SendingAG thrown_into(body);
        SendingAG sent_to(body);
        EXPECT_EQ(thrown_into.anext(), 1);
        EXPECT_EQ(sent_to.anext(), 1);
        asyncio::sleep(0.05);
        EXPECT_THROW(thrown_into.athrow(TestError("thrown in")), asyncio::TimeoutError);
        EXPECT_EQ(thrown_into.athrow(TestError("thrown in")), std::nullopt);
        EXPECT_THROW(sent_to.asend(5), asyncio::TimeoutError);
        EXPECT_EQ(sent_to.asend(5), std::nullopt);
      },
      virtual_time());
  EXPECT_EQ(errors.messages, Strings{});
}

// A failure at the yield that no step raised goes to the exception handler
// when the generator is closed (aclose() returns normally, as in Python,
// where the failure would only have surfaced on a resumption) or destroyed.
TEST_F(AsyncGenFailureTests, failure_at_the_yield_is_reported_if_closed_or_destroyed_first) {
  error_log errors;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        auto body = [](AG::context& co) { asyncio::timeout(0.01, [&] { co.yield(1); }); };
        AG closed(body);
        std::optional<AG> destroyed(AG{body});
        EXPECT_EQ(closed.anext(), 1);
        EXPECT_EQ(destroyed->anext(), 1);
        asyncio::sleep(0.05);
        closed.aclose();
        EXPECT_EQ(closed.anext(), std::nullopt);
        destroyed.reset();
      },
      virtual_time());
  ASSERT_EQ(errors.messages.size(), 2u);
  EXPECT_EQ(errors.messages[0],
            "an asynchronous generator failed at its yield and was closed before an anext() raised it");
  EXPECT_EQ(errors.messages[1],
            "an asynchronous generator failed at its yield and was destroyed before an anext() raised it");
  EXPECT_EQ(errors.whats[0], errors.whats[1]);
  EXPECT_THROW(std::rethrow_exception(errors.exceptions[0]), asyncio::TimeoutError);
}

// ---------------------------------------------- a cancelled anext()

using AsyncGenCancelTests = greenlet_test::GreenletTest;

// A consumer's anext() cancelled (by its timeout()) while the body awaits
// cancels the body there and waits until the body has unwound, as in Python
// (and as wait_for() waits, bpo-32751): its cleanup runs before anext()
// raises, and the next anext() and aclose() see a finished generator. The
// TimeoutError came first, the cleanup ran on afterwards, and an anext() or
// aclose() right away said "asynchronous generator is already running".
TEST_F(AsyncGenCancelTests, cancelled_anext_returns_once_the_body_has_unwound) {
  Strings log;
  asyncio::run(
      [&] {
        AG gen([&](AG::context& co) {
          try {
            asyncio::sleep(1);
            co.yield(1);
          } catch (const asyncio::CancelledError&) {
            log.push_back("cleanup start");
            asyncio::sleep(0.01);
            log.push_back("cleanup end");
            throw;
          }
        });
        try {
          asyncio::timeout(0.01, [&] { gen.anext(); });
          log.push_back("anext returned");
        } catch (const asyncio::TimeoutError&) {
          log.push_back("anext: TimeoutError");
        }
        EXPECT_TRUE(gen.finished());
        EXPECT_EQ(gen.anext(), std::nullopt);
        gen.aclose();
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"cleanup start", "cleanup end", "anext: TimeoutError"}));
}

// A body that swallows the cancel and yields: the cancelled anext() returns
// that value, as Python's anext() does (the cancel is swallowed in the one
// task there); the body is parked at that yield and goes on from it.
TEST_F(AsyncGenCancelTests, body_swallowing_the_cancel_yields_to_the_cancelled_anext) {
  Strings log;
  asyncio::run(
      [&] {
        AG gen([&](AG::context& co) {
          try {
            asyncio::sleep(1);
          } catch (const asyncio::CancelledError&) {
            log.push_back("body cancelled");
          }
          asyncio::sleep(0.01);
          co.yield(5);
          co.yield(6);
        });
        auto consumer = asyncio::create_task([&] { return gen.anext(); });
        asyncio::sleep(0.01);
        consumer.cancel();
        EXPECT_EQ(asyncio::await(consumer), 5);
        EXPECT_FALSE(gen.finished());
        EXPECT_EQ(gen.anext(), 6);
        EXPECT_EQ(gen.anext(), std::nullopt);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"body cancelled"}));
}

// The consumer cancelled again while the body unwinds: that cancel reaches
// the body too (one task in Python), and anext() still waits for the body's
// end before raising CancelledError.
TEST_F(AsyncGenCancelTests, cancel_again_while_the_body_unwinds_reaches_the_body) {
  Strings log;
  asyncio::run(
      [&] {
        AG gen([&](AG::context& co) {
          try {
            asyncio::sleep(10);
            co.yield(1);
          } catch (const asyncio::CancelledError&) {
            try {
              asyncio::sleep(1);
            } catch (const asyncio::CancelledError&) {
              log.push_back("cleanup cancelled");
            }
            asyncio::sleep(0.01);
            log.push_back("cleanup end");
            throw;
          }
        });
        auto consumer = asyncio::create_task([&] {
          try {
            gen.anext();
          } catch (const asyncio::CancelledError&) {
            log.push_back("anext: CancelledError");
            throw;
          }
        });
        asyncio::sleep(0.01);
        consumer.cancel();
        asyncio::sleep(0.01);
        consumer.cancel();
        EXPECT_THROW(asyncio::await(consumer), asyncio::CancelledError);
        EXPECT_TRUE(gen.finished());
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"cleanup cancelled", "cleanup end", "anext: CancelledError"}));
}

// An error the body's cleanup throws replaces the cancel, as in Python.
TEST_F(AsyncGenCancelTests, error_of_the_cleanup_replaces_the_cancel) {
  asyncio::run(
      [&] {
        AG gen([&](AG::context& co) {
          try {
            asyncio::sleep(1);
            co.yield(1);
          } catch (const asyncio::CancelledError&) {
            asyncio::sleep(0.01);
            throw TestError("cleanup failed");
          }
        });
        auto consumer = asyncio::create_task([&] { gen.anext(); });
        asyncio::sleep(0.01);
        consumer.cancel();
        EXPECT_THROW(asyncio::await(consumer), TestError);
        EXPECT_TRUE(gen.finished());
      },
      virtual_time());
}

// athrow(nullptr) is refused with ValueError, as a null exception_ptr is, and the generator goes on.
// The literal took the exception-object overload and raised a std::nullptr_t at the yield.
TEST_F(AsyncGenLifetimeTests, AthrowNullLiteralIsRefused) {
  asyncio::run([] {
    asyncio::async_generator<int> g([](auto& co) {
      co.yield(1);
      co.yield(2);
    });
    EXPECT_EQ(g.anext(), 1);
    EXPECT_THROW(g.athrow(nullptr), asyncio::ValueError);
    EXPECT_EQ(g.anext(), 2);
  });
}

}  // namespace
