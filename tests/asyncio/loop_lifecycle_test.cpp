// loop_lifecycle_test.cpp: what outlives what around the event loop: an
// exception handler that replaces itself while it runs, a loop destroyed
// from one of its own callbacks, and reports made after the loop is gone.
#include <memory>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::TestError;
using LoopLifecycle = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// closure_copies counts the live copies of a closure that holds a
// Counted: a handler checks whether its own closure still exists without
// reading the closure (a global, not a capture).
int closure_copies = 0;
// handler_log is the test's log, for handlers that must not read their captures.
Strings* handler_log = nullptr;
struct Counted {
  Counted() noexcept { ++closure_copies; }
  Counted(const Counted&) noexcept { ++closure_copies; }
  ~Counted() { --closure_copies; }
};

// A one-shot handler (Python: `def h(loop, ctx): loop.set_exception_handler(None); ...`) removes
// itself while it runs: its closure stays alive until it returns, as Python keeps the callable.
// It was destroyed on the spot, under the running handler (heap-use-after-free of its captures).
TEST_F(LoopLifecycle, handler_that_removes_itself_keeps_its_closure_until_it_returns) {
  Strings log;
  handler_log = &log;
  closure_copies = 0;
  {
    asyncio::event_loop loop;
    loop.set_exception_handler(
        [mark = Counted(), tag = std::string(100, 'h')](asyncio::event_loop* l, const asyncio::exception_context& c) {
          l->set_exception_handler(nullptr);
          handler_log->push_back(c.message + " / closures alive: " + std::to_string(closure_copies));
          handler_log->push_back(tag.substr(0, 3));  // a capture on the heap, read after the removal
        });
    loop.call_soon([] { throw TestError("x"); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(closure_copies, 0);  // gone once the handler returned
    testing::internal::CaptureStderr();
    loop.call_exception_handler({"second report", nullptr, ""});  // the default handler now
    EXPECT_NE(testing::internal::GetCapturedStderr().find("asyncio: second report"), std::string::npos);
  }
  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(log[0].starts_with("Exception in callback")) << log[0];
  EXPECT_TRUE(log[0].ends_with(" / closures alive: 1")) << log[0];
  EXPECT_EQ(log[1], "hhh");
}

// A handler that installs its successor while it runs finishes its call; the next report goes to
// the successor, and a handler that reports from inside itself is called again (Python's loop
// calls its handler each time).
TEST_F(LoopLifecycle, handler_that_replaces_itself_hands_on_to_the_next) {
  Strings log;
  handler_log = &log;
  closure_copies = 0;
  asyncio::event_loop loop;
  loop.set_exception_handler([mark = Counted(), name = std::string(64, 'a')](asyncio::event_loop* l,
                                                                             const asyncio::exception_context& c) {
    l->set_exception_handler([](asyncio::event_loop*, const asyncio::exception_context& c2) {
      handler_log->push_back("second: " + c2.message);
    });
    l->call_exception_handler({"from inside " + c.message, nullptr, ""});
    handler_log->push_back(name.substr(0, 1) + ": " + c.message + ", closures alive " + std::to_string(closure_copies));
  });
  loop.call_exception_handler({"one", nullptr, ""});
  loop.call_exception_handler({"two", nullptr, ""});
  EXPECT_EQ(log, (Strings{"second: from inside one", "a: one, closures alive 1", "second: two"}));
  EXPECT_EQ(closure_copies, 0);
}

}  // namespace
