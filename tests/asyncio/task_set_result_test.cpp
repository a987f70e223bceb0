// task_set_result_test.cpp: a task's result is what its function returns,
// as asyncio's Task.set_result()/set_exception() raise RuntimeError("Task
// does not support set_result operation"). Task<T> has no set_result() or
// set_exception(); through a Future<T>& that refers to a task they throw
// RuntimeError and leave the task alone. They used to be accepted: the task
// was marked done with the given value while its function ran on, and what
// it returned was lost.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>

namespace asyncio = greenlet::asyncio;

// A Task handle does not offer them at all; a Future does.
template <class H, class... A>
concept can_set_result = requires(H& h, A... a) {
  h.set_result(a...);
};
template <class H, class E>
concept can_set_exception = requires(H& h, E e) {
  h.set_exception(e);
};
static_assert(!can_set_result<asyncio::Task<int>, int>);
static_assert(!can_set_result<asyncio::Task<void>>);
static_assert(!can_set_exception<asyncio::Task<int>, std::runtime_error>);
static_assert(!can_set_exception<asyncio::Task<int>, std::exception_ptr>);
static_assert(can_set_result<asyncio::Future<int>, int>);
static_assert(can_set_result<asyncio::Future<void>>);
static_assert(can_set_exception<asyncio::Future<int>, std::runtime_error>);
static_assert(can_set_exception<asyncio::Future<int>, std::exception_ptr>);

namespace {

// expect_task_refuses(label, call, operation) checks call throws asyncio's RuntimeError.
template <class Call>
void expect_task_refuses(const std::string& label, Call call, const std::string& operation) {
  try {
    call();
    ADD_FAILURE() << label << ": accepted";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::invalid_state) << label;
    EXPECT_NE(std::string(e.what()).find("Task does not support " + operation + " operation"), std::string::npos)
        << label << ": " << e.what();
  }
}

}  // namespace

TEST(TaskSetResult, ThroughAFutureReferenceASuspendedTaskRefusesAndFinishesItself) {
  std::vector<std::string> log;
  asyncio::run([&] {
    asyncio::Task<int> t = asyncio::create_task([&] {
      asyncio::sleep(0.01);
      log.push_back("body finished");
      return 1;
    });
    asyncio::sleep(0);  // the body has started and sleeps
    asyncio::Future<int>& as_future = t;
    expect_task_refuses(
        "set_result", [&] { as_future.set_result(5); }, "set_result");
    expect_task_refuses(
        "set_exception", [&] { as_future.set_exception(std::runtime_error("x")); }, "set_exception");
    expect_task_refuses(
        "set_exception(ptr)", [&] { as_future.set_exception(std::make_exception_ptr(std::runtime_error("x"))); },
        "set_exception");
    EXPECT_FALSE(t.done());
    EXPECT_EQ(asyncio::await(t), 1);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"body finished"}));
}

TEST(TaskSetResult, AnUnstartedTaskRefusesAndStillRuns) {
  bool ran = false;
  asyncio::run([&] {
    asyncio::Task<void> t = asyncio::create_task([&] { ran = true; });
    asyncio::Future<void>& as_future = t;
    expect_task_refuses(
        "set_result", [&] { as_future.set_result(); }, "set_result");
    asyncio::await(t);
  });
  EXPECT_TRUE(ran);
}

TEST(TaskSetResult, PlainFuturesAreUnaffected) {
  asyncio::run([] {
    auto f = asyncio::get_running_loop().create_future<int>();
    f.set_result(4);
    EXPECT_EQ(asyncio::await(f), 4);
    auto g = asyncio::get_running_loop().create_future<int>();
    g.set_exception(std::runtime_error("boom"));
    EXPECT_THROW(asyncio::await(g), std::runtime_error);
  });
}
