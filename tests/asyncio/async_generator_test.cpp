// async_generator_test.cpp: async_generator's lifetime, shutdown, context
// and PEP 525 protocol (asend/athrow). Cases follow CPython's
// Lib/test/test_asyncgen.py where there is one; each names its source.
// (aiter_test.cpp has the first async_generator cases, with aiter().)
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

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

// The consumer cancelled while the body awaits, the body swallowing the
// cancellation and yielding, the generator dropped meanwhile: nobody will
// resume it, so that yield raises GeneratorExit (the finalizer's) instead of
// parking the body until the loop closes.
TEST_F(AsyncGenLifetimeTests, abandoned_running_body_is_closed_at_its_next_yield) {
  Strings log;
  asyncio::run(
      [&] {
        std::optional<AG> holder(AG([&](AG::context& co) {
          try {
            asyncio::sleep(10);
          } catch (const asyncio::CancelledError&) {
            log.push_back("body cancelled");
          }
          asyncio::sleep(1);  // still running when the generator is dropped
          try {
            co.yield(1);
          } catch (const greenlet::GeneratorExit&) {
            log.push_back("GeneratorExit at the yield");
            throw;
          }
          log.push_back("resumed");
        }));
        auto consumer = asyncio::create_task([&] { holder->anext(); });
        asyncio::sleep(0);
        asyncio::sleep(0);  // the body sleeps
        consumer.cancel();
        EXPECT_THROW(asyncio::await(consumer), asyncio::CancelledError);
        holder.reset();
        log.push_back("dropped");
        asyncio::sleep(2);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"body cancelled", "dropped", "GeneratorExit at the yield"}));
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
