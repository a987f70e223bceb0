// async_generator_unwinding_test.cpp: calls on an async_generator whose body
// is unwinding from a close no call waits for (asyncio::run()'s end closes
// every parked generator at once). The call waits for the unwinding to end
// and gets its outcome; it used to resume the body a second time (the
// pending GeneratorExit's future set again: InvalidStateError), or refuse
// with "already running" a cleanup as ordinary as an outer generator closing
// the inner one it iterates. A call under way from another task is still
// refused, as CPython's "anext(): asynchronous generator is already running".
#include <optional>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using AsyncGenUnwindingTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;
using AG = asyncio::async_generator<int>;

// counter(log, cleanup_awaits, cleanup_error) yields 0, 1, ... for ever; on
// GeneratorExit it logs, awaits in its cleanup if asked, and throws
// cleanup_error (if any) instead of the GeneratorExit.
AG counter(Strings& log, bool cleanup_awaits, const char* cleanup_error = nullptr) {
  return AG([&log, cleanup_awaits, cleanup_error](AG::context& co) {
    try {
      for (int i = 0;; ++i) co.yield(i);
    } catch (const greenlet::GeneratorExit&) {
      log.push_back("inner GeneratorExit");
      if (cleanup_awaits) asyncio::sleep(0);
      log.push_back("inner cleaned up");
      if (cleanup_error != nullptr) throw TestError(cleanup_error);
      throw;
    }
  });
}

// outer(inner, log, use) forwards inner's values; closed, it calls `use` on
// inner in its cleanup (aclose(), anext(), ...) and logs what that gave.
template <class Use>
AG outer(AG& inner, Strings& log, Use use) {
  return AG([&inner, &log, use](AG::context& co) {
    try {
      while (std::optional<int> v = inner.anext()) co.yield(*v);
    } catch (const greenlet::GeneratorExit&) {
      try {
        log.push_back("outer cleanup: " + use(inner));
      } catch (const std::exception& e) {
        log.push_back(std::string("outer cleanup threw: ") + e.what());
      }
      throw;
    }
  });
}

// run_both(use, cleanup_awaits, cleanup_error, log, errors) starts inner
// and then outer (which iterates inner) and lets asyncio::run()'s end close
// both, oldest first: inner's body is unwinding (parked with its
// GeneratorExit on the way, or awaiting in its cleanup) when outer's cleanup
// calls `use` on it.
template <class Use>
void run_both(Use use, bool cleanup_awaits, const char* cleanup_error, Strings& log, error_log& errors) {
  std::optional<AG> inner;
  std::optional<AG> out;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        inner.emplace(counter(log, cleanup_awaits, cleanup_error));
        EXPECT_EQ(inner->anext(), 0);  // inner's body is the older
        out.emplace(outer(*inner, log, use));
        EXPECT_EQ(out->anext(), 1);
      },
      virtual_time());
  out.reset();
  inner.reset();
}

std::string aclose_it(AG& g) {
  g.aclose();
  return "aclose() returned";
}
std::string anext_it(AG& g) {
  std::optional<int> v = g.anext();
  return v ? "anext() gave " + std::to_string(*v) : "anext() gave nullopt";
}

// The inner body's GeneratorExit is on its way but it has not woken yet:
// aclose() waits for its cleanup and returns. It threw InvalidStateError.
TEST_F(AsyncGenUnwindingTests, aclose_waits_for_a_body_about_to_unwind) {
  Strings log;
  error_log errors;
  // Outer first here: its body is woken first and closes inner, still parked.
  std::optional<AG> inner;
  std::optional<AG> out;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        inner.emplace(counter(log, false));
        out.emplace(outer(*inner, log, aclose_it));
        EXPECT_EQ(out->anext(), 0);  // starts outer, which starts inner: outer is the older
      },
      virtual_time());
  out.reset();
  inner.reset();
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up", "outer cleanup: aclose() returned"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages[0];
}

// The same with anext(): the close under way ends the generator, so anext()
// gets its end (Python's StopAsyncIteration) once the body has unwound; the
// body is not resumed twice.
TEST_F(AsyncGenUnwindingTests, anext_waits_for_a_body_about_to_unwind) {
  Strings log;
  error_log errors;
  std::optional<AG> inner;
  std::optional<AG> out;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        inner.emplace(counter(log, false));
        out.emplace(outer(*inner, log, anext_it));
        EXPECT_EQ(out->anext(), 0);
      },
      virtual_time());
  out.reset();
  inner.reset();
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up", "outer cleanup: anext() gave nullopt"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages[0];
}

// The inner body is awaiting in its cleanup (woken first, it is the older):
// aclose() waits until the cleanup is done. It raised "aclose():
// asynchronous generator is already running" though no call was running it.
TEST_F(AsyncGenUnwindingTests, aclose_waits_for_a_cleanup_that_awaits) {
  Strings log;
  error_log errors;
  run_both(aclose_it, true, nullptr, log, errors);
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up", "outer cleanup: aclose() returned"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages[0];
}

// anext(), asend() and athrow() wait the same way and get the end.
TEST_F(AsyncGenUnwindingTests, anext_and_athrow_wait_for_a_cleanup_that_awaits) {
  Strings log;
  error_log errors;
  run_both(anext_it, true, nullptr, log, errors);
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up", "outer cleanup: anext() gave nullopt"}));
  log.clear();
  run_both(
      [](AG& g) {
        std::optional<int> v = g.athrow(TestError("thrown in"));
        return v ? std::string("athrow() gave a value") : std::string("athrow() gave nullopt");
      },
      true, nullptr, log, errors);
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up", "outer cleanup: athrow() gave nullopt"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages[0];
}

// The cleanup's error goes to the call that waited for it, not to the loop's
// exception handler as well.
TEST_F(AsyncGenUnwindingTests, error_of_the_cleanup_goes_to_the_waiting_call) {
  Strings log;
  error_log errors;
  run_both(aclose_it, true, "cleanup failed", log, errors);
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up", "outer cleanup threw: cleanup failed"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages[0];
}

// A call under way (aclose() in one task, its cleanup awaiting) still
// refuses a second one from another task, as CPython does.
TEST_F(AsyncGenUnwindingTests, call_during_another_tasks_aclose_is_refused) {
  Strings log;
  asyncio::run(
      [&] {
        AG gen = counter(log, true);
        EXPECT_EQ(gen.anext(), 0);
        asyncio::Task<void> closer = asyncio::create_task([&] { gen.aclose(); });
        asyncio::sleep(0);  // closer's aclose() runs the body to its cleanup's await
        try {
          gen.anext();
          ADD_FAILURE() << "anext() during aclose() did not throw";
        } catch (const asyncio::RuntimeError& e) {
          EXPECT_STREQ(e.what(), "anext(): asynchronous generator is already running");
        }
        asyncio::await(closer);
        EXPECT_TRUE(gen.finished());
        EXPECT_EQ(gen.anext(), std::nullopt);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"inner GeneratorExit", "inner cleaned up"}));
}

// The body itself calling its own generator while it unwinds (a cleanup
// that closes "the generator" it was handed) is refused as running, as
// Python refuses it: waiting for its own end would never return.
TEST_F(AsyncGenUnwindingTests, body_calling_its_own_generator_while_unwinding_is_refused) {
  Strings log;
  error_log errors;
  std::optional<AG> gen;
  asyncio::run(
      [&] {
        errors.attach(asyncio::get_running_loop());
        gen.emplace([&log, &gen](AG::context& co) {
          try {
            co.yield(0);
          } catch (const greenlet::GeneratorExit&) {
            try {
              gen->aclose();
              log.push_back("aclose() returned");
            } catch (const asyncio::RuntimeError& e) {
              log.push_back(e.what());
            }
            throw;
          }
        });
        EXPECT_EQ(gen->anext(), 0);
      },
      virtual_time());
  gen.reset();
  EXPECT_EQ(log, (Strings{"aclose(): asynchronous generator is already running"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages[0];
}

}  // namespace
