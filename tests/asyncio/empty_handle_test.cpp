// empty_handle_test.cpp: calls on an empty Future, Task or AnyTask handle
// (default-constructed or moved from) throw RuntimeError (invalid_state)
// saying so, as an empty greenlet or generator handle throws; they were
// null-pointer dereferences (segmentation faults). await() and the waits
// given an empty handle throw the same.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <greenlet/asyncio.hpp>

namespace asyncio = greenlet::asyncio;

namespace {

// expect_empty_handle_error(call) runs call and checks it throws the empty-handle RuntimeError.
void expect_empty_handle_error(const std::string& label, const std::function<void()>& call) {
  try {
    call();
    ADD_FAILURE() << label << ": no exception";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::invalid_state) << label;
    const std::string what = e.what();
    EXPECT_NE(what.find("empty"), std::string::npos) << label << ": " << what;
    EXPECT_NE(what.find("default-constructed or moved from"), std::string::npos) << label << ": " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": unexpected exception " << e.what();
  }
}

}  // namespace

TEST(EmptyHandle, FutureMembersThrow) {
  asyncio::Future<int> f;
  EXPECT_TRUE(f.empty());
  expect_empty_handle_error("done", [&] { (void)f.done(); });
  expect_empty_handle_error("cancelled", [&] { (void)f.cancelled(); });
  expect_empty_handle_error("cancel", [&] { f.cancel(); });
  expect_empty_handle_error("result", [&] { (void)f.result(); });
  expect_empty_handle_error("exception", [&] { (void)f.exception(); });
  expect_empty_handle_error("set_result", [&] { f.set_result(1); });
  expect_empty_handle_error("set_exception", [&] { f.set_exception(std::runtime_error("x")); });
  expect_empty_handle_error("add_done_callback", [&] { f.add_done_callback([](asyncio::Future<int>&) {}); });
  expect_empty_handle_error("remove_done_callback", [&] { f.remove_done_callback(1); });
  expect_empty_handle_error("repr", [&] { (void)f.repr(); });
  asyncio::Future<void> v;
  expect_empty_handle_error("void set_result", [&] { v.set_result(); });
}

TEST(EmptyHandle, MovedFromFutureThrows) {
  asyncio::event_loop loop;
  asyncio::Future<int> f = loop.create_future<int>();
  asyncio::Future<int> g = std::move(f);
  EXPECT_TRUE(f.empty());  // NOLINT(bugprone-use-after-move): the point of the test
  expect_empty_handle_error("moved-from done", [&] { (void)f.done(); });
  EXPECT_FALSE(g.done());
  g.cancel();
}

TEST(EmptyHandle, TaskMembersThrow) {
  asyncio::Task<int> t;
  expect_empty_handle_error("cancel", [&] { t.cancel(); });
  expect_empty_handle_error("done", [&] { (void)t.done(); });
  expect_empty_handle_error("get_name", [&] { (void)t.get_name(); });
  expect_empty_handle_error("set_name", [&] { t.set_name("x"); });
  expect_empty_handle_error("uncancel", [&] { t.uncancel(); });
  expect_empty_handle_error("cancelling", [&] { (void)t.cancelling(); });
}

TEST(EmptyHandle, AnyTaskMembersThrow) {
  asyncio::AnyTask t;
  expect_empty_handle_error("done", [&] { (void)t.done(); });
  expect_empty_handle_error("cancel", [&] { t.cancel(); });
  expect_empty_handle_error("get_name", [&] { (void)t.get_name(); });
  expect_empty_handle_error("repr", [&] { (void)t.repr(); });
  expect_empty_handle_error("result", [&] { t.result(); });
}

// current_task() outside a task is an empty AnyTask: asking its name used to crash.
TEST(EmptyHandle, CurrentTaskInACallbackIsEmptyAndSaysSo) {
  asyncio::event_loop loop;
  bool checked = false;
  loop.call_soon([&] {
    asyncio::AnyTask none = asyncio::current_task();
    EXPECT_TRUE(none.empty());
    expect_empty_handle_error("current_task().get_name()", [&] { (void)none.get_name(); });
    checked = true;
  });
  loop.run_until_complete([] { asyncio::sleep(0); });
  EXPECT_TRUE(checked);
}

TEST(EmptyHandle, AwaitAndWaitsThrow) {
  asyncio::run([] {
    asyncio::Future<int> f;
    asyncio::Task<int> t;
    expect_empty_handle_error("await(future)", [&] { asyncio::await(f); });
    expect_empty_handle_error("await(temporary future)", [] { asyncio::await(asyncio::Future<int>()); });
    expect_empty_handle_error("await(task)", [&] { asyncio::await(t); });
    expect_empty_handle_error("await(AnyTask)", [] { asyncio::await(asyncio::AnyTask()); });
    expect_empty_handle_error("gather", [&] { asyncio::gather(f); });
    expect_empty_handle_error("gather(vector)", [&] { asyncio::gather(std::vector<asyncio::Future<int>>{f}); });
    expect_empty_handle_error("wait", [&] { asyncio::wait(std::vector<asyncio::Future<int>>{f}); });
    expect_empty_handle_error("wait_for", [&] { asyncio::wait_for(f, 1); });
    // The task goes on: nothing was registered anywhere.
    asyncio::sleep(0);
  });
}

TEST(EmptyHandle, RunUntilCompleteThrows) {
  asyncio::event_loop loop;
  expect_empty_handle_error("run_until_complete", [&] { loop.run_until_complete(asyncio::Future<int>()); });
  EXPECT_EQ(loop.run_until_complete([] { return 3; }), 3);
}
