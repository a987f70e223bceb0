// reference_result_test.cpp: functions that return a reference, given to the calls that make a
// Future of their result on another thread or process (Executor::submit/map, ProcessPoolExecutor,
// run_in_executor, to_thread, run_coroutine_threadsafe). The Future holds a copy of the object,
// made when the function returns: a result is read later, when the object may be gone.
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

const std::string& greeting() {
  static const std::string text = "hello from a worker";
  return text;
}
// Registered at static-initialization time: before any pool forks.
const auto greeting_fn = concurrent::register_process_function("reference_result_greeting", &greeting);

class ReferenceResult : public greenlet_test::GreenletTest {};

TEST_F(ReferenceResult, ThreadPoolSubmitAndMapHoldCopies) {
  concurrent::ThreadPoolExecutor pool(2);
  std::string s = "shared";
  auto f = pool.submit([&]() -> std::string& { return s; });
  static_assert(std::is_same_v<decltype(f), concurrent::Future<std::string>>);
  EXPECT_EQ(f.result(), "shared");
  EXPECT_NE(&f.result(), &s);

  auto owned = std::make_unique<int>(3);
  auto moved = pool.submit([&]() -> std::unique_ptr<int>&& { return std::move(owned); });
  static_assert(std::is_same_v<decltype(moved), concurrent::Future<std::unique_ptr<int>>>);
  EXPECT_EQ(*moved.result(), 3);
  EXPECT_EQ(owned, nullptr);

  const std::vector<std::string> table = {"a", "b"};
  auto picked =
      pool.map([&](int i) -> const std::string& { return table[static_cast<std::size_t>(i)]; }, std::vector<int>{1, 0});
  static_assert(std::is_same_v<decltype(picked), std::vector<std::string>>);
  EXPECT_EQ(picked, (std::vector<std::string>{"b", "a"}));
}

TEST_F(ReferenceResult, RunInExecutorToThreadAndRunCoroutineThreadsafeHoldCopies) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    std::string s = "text";
    auto in_executor = loop.run_in_executor(nullptr, [&]() -> const std::string& { return s; });
    static_assert(std::is_same_v<decltype(in_executor), asyncio::Future<std::string>>);
    EXPECT_EQ(asyncio::await(in_executor), "text");
    EXPECT_NE(&in_executor.result(), &s);

    auto in_thread = asyncio::to_thread([&]() -> std::string& { return s; });
    static_assert(std::is_same_v<decltype(in_thread), asyncio::Future<std::string>>);
    EXPECT_EQ(asyncio::await(in_thread), "text");

    // From a pool thread back into this loop, whose task returns a reference.
    std::string from_loop = asyncio::await(asyncio::to_thread([&] {
      auto cf = asyncio::run_coroutine_threadsafe([&]() -> std::string& { return s; }, loop);
      static_assert(std::is_same_v<decltype(cf), concurrent::Future<std::string>>);
      return cf.result(30);
    }));
    EXPECT_EQ(from_loop, "text");
  });
}

// Process pools fork, so the test process's allocation counts are not a meaningful balance here:
// plain TEST.
TEST(ReferenceResultProcessPool, SubmitOfAFunctionReturningAReferenceGivesTheValue) {
  concurrent::ProcessPoolExecutor pool(1);
  auto f = pool.submit(greeting_fn);
  static_assert(std::is_same_v<decltype(f), concurrent::Future<std::string>>);
  EXPECT_EQ(f.result(30), "hello from a worker");
}

}  // namespace
