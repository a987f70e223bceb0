// shield_test.cpp: asyncio::shield() once its caller gave up (what becomes of
// the shielded work's exception) and with move-only results; ported from
// CPython's Lib/test/test_asyncio/test_tasks.py (test_shield_*) and checked
// against Python 3.11/3.12 running the same programs.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using Strings = std::vector<std::string>;

namespace {

using ShieldTests = greenlet_test::GreenletTest;

// test_shield_cancel_outer_exception: the shield is cancelled while the
// inner future is pending; the exception the inner future gets afterwards is
// nobody's, so dropping it reports "Future exception was never retrieved".
// Regression test, this once failed: the shield's callback stayed on the inner
// future and read its exception (marking it retrieved), so nothing was reported.
TEST_F(ShieldTests, test_shield_cancel_outer_exception_is_reported) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto inner = loop.create_future<int>();
    asyncio::Future<int> outer;
    loop.call_soon([&] { outer = asyncio::shield(inner); });
    run_briefly(loop);
    outer.cancel();
    run_briefly(loop);
    inner.set_exception(TestError("foo"));
    run_briefly(loop);
    EXPECT_TRUE(outer.cancelled());
  }
  EXPECT_EQ(errors.messages, (Strings{"Future exception was never retrieved"}));
  EXPECT_EQ(errors.whats, (Strings{"foo"}));
}

// test_shield_cancel_outer_result: the same with a result: nothing to report.
TEST_F(ShieldTests, test_shield_cancel_outer_result_is_not_reported) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto inner = loop.create_future<int>();
    asyncio::Future<int> outer;
    loop.call_soon([&] { outer = asyncio::shield(inner); });
    run_briefly(loop);
    outer.cancel();
    run_briefly(loop);
    inner.set_result(1);
    run_briefly(loop);
    EXPECT_EQ(inner.result(), 1);
  }
  EXPECT_TRUE(errors.messages.empty());
}

// The explorer's shield_silent program: the task awaiting shield(fn) is
// cancelled, then fn fails. Python 3.11/3.12 log "Task exception was never
// retrieved" naming the shielded task; so does the loop's handler here.
// Regression test, this once failed: nothing was reported.
TEST_F(ShieldTests, test_shielded_task_failing_after_caller_cancelled_is_reported) {
  error_log errors;
  std::string work_name;
  {
    asyncio::event_loop loop(virtual_time());
    errors.attach(loop);
    loop.run_until_complete([&work_name] {
      auto caller = asyncio::create_task([&work_name] {
        asyncio::await(asyncio::shield([&work_name] {
          work_name = asyncio::current_task().get_name();
          asyncio::sleep(0.01);
          throw TestError("work failed");
        }));
      });
      asyncio::sleep(0.001);
      caller.cancel();
      EXPECT_THROW(asyncio::await(caller), asyncio::CancelledError);
      asyncio::sleep(0.05);
    });
  }
  EXPECT_EQ(errors.messages, (Strings{"Task exception was never retrieved"}));
  EXPECT_EQ(errors.whats, (Strings{"work failed"}));
  EXPECT_EQ(errors.sources, (Strings{"<Task finished name='" + work_name + "' exception=TestError('work failed')>"}));
}

// The same through the default exception handler: the exact text on stderr.
TEST_F(ShieldTests, test_shielded_task_failure_report_text) {
  std::string work_name;
  int throw_line = 0;
  testing::internal::CaptureStderr();
  asyncio::run(
      [&work_name, &throw_line] {
        auto caller = asyncio::create_task([&work_name, &throw_line] {
          asyncio::await(asyncio::shield([&work_name, &throw_line] {
            work_name = asyncio::current_task().get_name();
            asyncio::sleep(0.01);
            throw_line = __LINE__ + 1;
            throw TestError("work failed");
          }));
        });
        asyncio::sleep(0.001);
        caller.cancel();
        EXPECT_THROW(asyncio::await(caller), asyncio::CancelledError);
        asyncio::sleep(0.05);
      },
      virtual_time());
  // The traceback's one frame is the function's (named as the debug information names a lambda).
  const std::string err = testing::internal::GetCapturedStderr();
  const std::string head =
      "asyncio: Task exception was never retrieved\n"
      "  in <Task finished name='" +
      work_name +
      "' exception=TestError('work failed')>\n"
      "  Traceback (most recent call last):\n"
      "    File \"" __FILE__ "\", line " +
      std::to_string(throw_line) + ", in ";
  const std::string tail = "\n  exception: work failed\n";
  ASSERT_GT(err.size(), head.size() + tail.size()) << err;
  EXPECT_EQ(err.substr(0, head.size()), head) << err;
  EXPECT_EQ(err.substr(err.size() - tail.size()), tail) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 5) << err;
}

// Outer cancelled in the loop turn where inner fails (inner's callback is
// already scheduled): the callback marks the exception seen, as asyncio's
// _inner_done_callback does, so nothing is reported.
TEST_F(ShieldTests, test_shield_cancelled_in_the_turn_inner_fails_is_not_reported) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto inner = loop.create_future<int>();
    asyncio::Future<int> outer;
    loop.call_soon([&] { outer = asyncio::shield(inner); });
    run_briefly(loop);
    inner.set_exception(TestError("foo"));
    outer.cancel();
    run_briefly(loop);
    EXPECT_TRUE(outer.cancelled());
  }
  EXPECT_TRUE(errors.messages.empty());
}

// A shield and its inner future both pending and both dropped are freed (the
// shield refers to the inner future without owning it: no reference cycle;
// the sanitizer build's leak check would see one).
TEST_F(ShieldTests, test_pending_shield_and_inner_dropped_are_freed) {
  std::vector<std::string> log;
  asyncio::event_loop loop;
  loop.run_until_complete([&log] {
    auto inner = asyncio::get_running_loop().create_future<int>();
    auto outer = asyncio::shield(inner);
    inner.add_done_callback([guard = std::make_shared<asyncio_test::Guard>(log, "inner")](auto&) {});
    outer.add_done_callback([guard = std::make_shared<asyncio_test::Guard>(log, "outer")](auto&) {});
  });
  EXPECT_EQ(log, (Strings{"~outer", "~inner"}));
}

// Cancelling the shield's awaiter leaves inner's own readers its exception:
// awaiting the inner task retrieves it, so nothing is reported.
TEST_F(ShieldTests, test_inner_exception_retrieved_elsewhere_is_not_reported) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  loop.run_until_complete([] {
    auto inner = asyncio::create_task([] {
      asyncio::sleep(0.01);
      throw TestError("late");
    });
    auto caller = asyncio::create_task([&] { asyncio::await(asyncio::shield(inner)); });
    asyncio::sleep(0.001);
    caller.cancel();
    EXPECT_THROW(asyncio::await(caller), asyncio::CancelledError);
    EXPECT_THROW(asyncio::await(inner), TestError);
  });
  EXPECT_TRUE(errors.messages.empty());
}

// copy_counter counts the copies made of it.
struct copy_counter {
  int* copies;
  explicit copy_counter(int* c) : copies(c) {}
  copy_counter(const copy_counter& o) : copies(o.copies) { ++*copies; }
  copy_counter(copy_counter&&) noexcept = default;
  copy_counter& operator=(const copy_counter&) = delete;
  copy_counter& operator=(copy_counter&&) = delete;
};

// shield(fn) of a function with a move-only result compiles and gives the
// result. Regression test, this once failed: it did not compile (the result
// was copied from the inner task into the shield).
TEST_F(ShieldTests, test_shield_function_move_only_result) {
  asyncio::run([] {
    auto p = asyncio::await(asyncio::shield([] { return std::make_unique<int>(5); }));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 5);
  });
}

// shield(fn)'s task is the shield's own: its result is moved, not copied.
TEST_F(ShieldTests, test_shield_function_result_is_moved) {
  int copies = 0;
  asyncio::run([&copies] {
    auto shielded = asyncio::shield([&copies] { return copy_counter(&copies); });
    (void)asyncio::await(shielded);  // a reference: no copy of its own
  });
  EXPECT_EQ(copies, 0);
}

// shield(t) of a shared task with a move-only result: the result is moved into
// the shield, as gather() and await() of a temporary take one.
TEST_F(ShieldTests, test_shield_task_move_only_result_moves_into_shield) {
  asyncio::run([] {
    auto inner = asyncio::create_task([] {
      asyncio::sleep(0);
      return std::make_unique<int>(7);
    });
    std::unique_ptr<int> p = asyncio::await(asyncio::shield(inner));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 7);
    EXPECT_EQ(inner.result(), nullptr);  // moved out
  });
}

// shield(f) of a shared task whose result can be copied leaves it to f's
// other readers.
TEST_F(ShieldTests, test_shield_task_copyable_result_is_copied) {
  asyncio::run([] {
    auto inner = asyncio::create_task([] {
      asyncio::sleep(0);
      return std::make_shared<int>(9);
    });
    auto p = asyncio::await(asyncio::shield(inner));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p, inner.result());
  });
}

}  // namespace
