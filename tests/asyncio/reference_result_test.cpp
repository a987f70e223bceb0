// reference_result_test.cpp: functions that return a reference, given to the entry points that
// make a task of them (create_task, await, wait_for, gather, shield, ensure_future, run,
// run_until_complete, TaskGroup::create_task). A task's result is stored by value: the task gets a
// copy of the referred object, made when the function returns, as a Python task's result outlives
// the coroutine's frame. The scopes that run their body in the calling task (timeout(),
// task_group()) return the reference itself.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace {

using ReferenceResultTests = greenlet_test::GreenletTest;

// big is a result worth returning by reference.
struct big {
  std::string text;
  int numbers[64] = {};
};

// The task holds a copy of the object: the same value, another address, unchanged when the
// original changes afterwards.
TEST_F(ReferenceResultTests, create_task_of_a_function_returning_a_reference_holds_a_copy) {
  asyncio::run([] {
    std::string s = "original";
    auto task = asyncio::create_task([&]() -> std::string& { return s; });
    static_assert(std::is_same_v<decltype(task), asyncio::Task<std::string>>);
    std::string& result = asyncio::await(task);
    EXPECT_EQ(result, "original");
    EXPECT_NE(&result, &s);
    s = "changed";
    EXPECT_EQ(task.result(), "original");
  });
}

TEST_F(ReferenceResultTests, const_reference_and_const_value_results_are_plain_values) {
  asyncio::run([] {
    big b;
    b.text = "big";
    b.numbers[63] = 7;
    auto by_ref = asyncio::create_task([&]() -> const big& { return b; });
    static_assert(std::is_same_v<decltype(by_ref), asyncio::Task<big>>);
    auto by_const_value = asyncio::create_task([]() -> const std::string { return "value"; });
    static_assert(std::is_same_v<decltype(by_const_value), asyncio::Task<std::string>>);
    EXPECT_EQ(asyncio::await(by_ref).text, "big");
    EXPECT_EQ(by_ref.result().numbers[63], 7);
    EXPECT_EQ(asyncio::await(by_const_value), "value");
  });
}

// A function returning an rvalue reference hands its object over: the task's result is moved from
// it (a move-only type too).
TEST_F(ReferenceResultTests, rvalue_reference_result_is_moved_into_the_task) {
  asyncio::run([] {
    auto owned = std::make_unique<int>(42);
    auto task = asyncio::create_task([&]() -> std::unique_ptr<int>&& { return std::move(owned); });
    static_assert(std::is_same_v<decltype(task), asyncio::Task<std::unique_ptr<int>>>);
    std::unique_ptr<int> result = asyncio::await(std::move(task));
    ASSERT_NE(result, nullptr);
    EXPECT_EQ(*result, 42);
    EXPECT_EQ(owned, nullptr);
  });
}

// To share the object itself, return std::ref(object) (or a pointer), as the docs say.
TEST_F(ReferenceResultTests, reference_wrapper_result_shares_the_object) {
  asyncio::run([] {
    std::string s = "shared";
    auto task = asyncio::create_task([&] { return std::ref(s); });
    std::string& same = asyncio::await(task).get();
    EXPECT_EQ(&same, &s);
    EXPECT_NE(task.repr().find("result="), std::string::npos);
  });
}

// The copy is taken when the function returns, not when the result is read: the function's
// captures (here the object itself) may be gone by then.
TEST_F(ReferenceResultTests, copy_is_taken_when_the_function_returns) {
  asyncio::run([] {
    auto task = asyncio::create_task([s = std::string("captured")]() -> const std::string& { return s; });
    asyncio::await(task);
    asyncio::sleep(0);
    EXPECT_EQ(task.result(), "captured");
  });
}

TEST_F(ReferenceResultTests, await_wait_for_gather_shield_ensure_future_take_reference_functions) {
  asyncio::run([] {
    std::string s = "text";
    big b;
    b.text = "big";
    auto ref = [&]() -> std::string& { return s; };
    auto cref = [&]() -> const big& { return b; };

    std::string awaited = asyncio::await(ref);
    EXPECT_EQ(awaited, "text");

    std::string waited = asyncio::wait_for(ref, 10.0);
    EXPECT_EQ(waited, "text");
    big waited_big = asyncio::wait_for(cref, std::nullopt);
    EXPECT_EQ(waited_big.text, "big");

    auto [g1, g2] = asyncio::gather(ref, cref);
    static_assert(std::is_same_v<decltype(g1), std::string>);
    static_assert(std::is_same_v<decltype(g2), big>);
    EXPECT_EQ(g1, "text");
    EXPECT_EQ(g2.text, "big");
    auto [o1] = asyncio::gather(asyncio::return_exceptions, ref);
    EXPECT_EQ(o1.value(), "text");

    auto shielded = asyncio::shield(ref);
    static_assert(std::is_same_v<decltype(shielded), asyncio::Future<std::string>>);
    EXPECT_EQ(asyncio::await(shielded), "text");

    auto ensured = asyncio::ensure_future(cref);
    static_assert(std::is_same_v<decltype(ensured), asyncio::Task<big>>);
    EXPECT_EQ(asyncio::await(ensured).text, "big");

    asyncio::TaskGroup group;
    auto child = group.create_task(ref);
    static_assert(std::is_same_v<decltype(child), asyncio::Task<std::string>>);
    group.join();
    EXPECT_EQ(child.result(), "text");

    auto ctx = asyncio::copy_context();
    std::string named = asyncio::await(asyncio::create_task(ref, "named", ctx));
    EXPECT_EQ(named, "text");
  });
}

TEST_F(ReferenceResultTests, run_and_run_until_complete_return_a_copy) {
  static std::string s = "main";
  std::string result = asyncio::run([]() -> std::string& { return s; });
  EXPECT_EQ(result, "main");
  static_assert(std::is_same_v<decltype(asyncio::run([]() -> std::string& { return s; })), std::string>);

  auto loop = asyncio::new_event_loop();
  big b;
  b.text = "loop";
  decltype(auto) got = loop->run_until_complete([&]() -> const big& { return b; });
  static_assert(std::is_same_v<decltype(got), big>);
  EXPECT_EQ(got.text, "loop");
  loop->close();
}

// task_group(body) runs body in the calling task, as timeout() does: what it returns comes back
// as it is, a reference as the same reference.
TEST_F(ReferenceResultTests, task_group_returns_the_bodys_reference_itself) {
  asyncio::run([] {
    std::string s = "scope";
    std::string& same = asyncio::task_group([&](asyncio::TaskGroup& tg) -> std::string& {
      tg.create_task([] { asyncio::sleep(0); });
      return s;
    });
    EXPECT_EQ(&same, &s);
    const std::string& same_const = asyncio::task_group([&](asyncio::TaskGroup&) -> const std::string& { return s; });
    EXPECT_EQ(&same_const, &s);
    auto owned = std::make_unique<int>(5);
    std::unique_ptr<int> moved =
        asyncio::task_group([&](asyncio::TaskGroup&) -> std::unique_ptr<int>&& { return std::move(owned); });
    EXPECT_EQ(*moved, 5);
    EXPECT_EQ(owned, nullptr);
    std::string value = asyncio::task_group([](asyncio::TaskGroup&) { return std::string("value"); });
    EXPECT_EQ(value, "value");
  });
}

}  // namespace
