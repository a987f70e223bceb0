// swallowed_end_test.cpp: a generator body that catches everything around
// its yield, in a loop, so it swallows close()'s GeneratorExit and then the
// kill's GreenletExit. Dropping it must return (Python drops such a frame and
// reports it), with a report that says what to fix, and leave the thread's
// other generators working; its thread must still be able to exit.
//
// Each case runs in a child process with an alarm: before the fix, the drop
// looped for ever in the body (every yield refused with an exception, which
// the body caught too).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <greenlet/generator.hpp>

#include <gtest/gtest.h>

#include "support/forked_child.hpp"

namespace {

// Not GreenletTest: the death test machinery allocates in the parent.
using SwallowedEndDeathTest = ::testing::Test;
using gen_t = greenlet::generator<int>;

// The hook outlives the thread exits below, so it records into a global.
std::mutex reports_mutex;
std::vector<std::string> reported_contexts;

void record_reports() {
  greenlet::set_unraisable_hook([](std::exception_ptr, std::string_view context) {
    std::lock_guard<std::mutex> lock(reports_mutex);
    reported_contexts.emplace_back(context);
  });
}

bool reported(std::string_view fragment) {
  std::lock_guard<std::mutex> lock(reports_mutex);
  for (const std::string& r : reported_contexts) {
    if (r.find(fragment) != std::string::npos) return true;
  }
  return false;
}

using greenlet_test::forked::fail;

// A body that swallows everything, the common way: catch std::exception
// around the step of an endless loop.
gen_t swallowing_generator(int* yields) {
  return gen_t([yields](gen_t::context& co) {
    for (;;) {
      try {
        co.yield(*yields);
        ++*yields;
      } catch (const std::exception&) {
      }
    }
  });
}

void expect_a_fresh_generator_works() {
  gen_t fresh([] {
    for (int i = 0; i < 3; ++i) gen_t::yield(i);
  });
  std::vector<int> got;
  for (int x : fresh) got.push_back(x);
  if (got != std::vector<int>{0, 1, 2}) fail("a fresh generator yielded the wrong values");
}

void drop_on_a_thread_then_exit_it() {
  ::alarm(30);
  record_reports();
  int yields = 0;
  std::thread worker([&] {
    {
      gen_t g = swallowing_generator(&yields);
      if (g.next() != 0) fail("first value");
      if (g.next() != 1) fail("second value");
    }  // the drop: close() is refused, the kill is swallowed
    if (!reported("closing a generator being destroyed")) fail("no report of the refused close()");
    if (!reported("Rethrow greenlet::GreenletExit")) fail("no report telling how to fix the body");
    expect_a_fresh_generator_works();
  });  // thread exit kills the stranded body again: it must still end
  worker.join();
  std::_Exit(0);
}

TEST_F(SwallowedEndDeathTest, DroppingABodyThatSwallowsItsEndReturnsAndReports) {
  EXPECT_EXIT(drop_on_a_thread_then_exit_it(), ::testing::ExitedWithCode(0), "");
}

// close() alone keeps Python's behaviour: it raises "generator ignored
// GeneratorExit" and leaves the generator suspended and usable.
void close_then_go_on() {
  ::alarm(30);
  record_reports();
  int yields = 0;
  std::thread worker([&] {
    gen_t g = swallowing_generator(&yields);
    g.next();
    try {
      g.close();
      fail("close() returned");
    } catch (const greenlet::generator_error& e) {
      if (e.code() != greenlet::generator_errc::ignored_generator_exit) fail("close(): wrong error");
    }
    if (!g.suspended()) fail("not suspended after the refused close()");
    if (g.next() != 1) fail("the generator did not go on after close()");
  });
  worker.join();
  std::_Exit(0);
}

TEST_F(SwallowedEndDeathTest, RefusedCloseLeavesTheGeneratorUsable) {
  EXPECT_EXIT(close_then_go_on(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
