// any_task_futures_test.cpp: an AnyTask goes wherever a Task<T> goes as a
// future: gather(a, b) (it was taken for a function and failed to compile),
// gather(return_exceptions, ...), wait_for() and ensure_future().
#include <stdexcept>
#include <string>
#include <variant>

#include "asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;
using AnyTaskFutures = greenlet_test::GreenletTest;

TEST_F(AnyTaskFutures, GatherWaitForAndEnsureFutureTakeAnyTasks) {
  asyncio::event_loop loop(virtual_time());
  int ran = 0;
  auto main = loop.create_task([&] {
    asyncio::AnyTask a = asyncio::create_task([&] { return ++ran; });
    asyncio::AnyTask b = asyncio::create_task([&] { ++ran; });
    auto [x, y] = asyncio::gather(a, b);
    static_assert(std::is_same_v<decltype(x), std::monostate>);
    EXPECT_EQ(ran, 2);

    asyncio::AnyTask failing = asyncio::create_task([] { throw std::runtime_error("boom"); });
    auto outcomes = asyncio::gather(asyncio::return_exceptions, a, failing);
    EXPECT_TRUE(std::get<0>(outcomes).has_value());
    EXPECT_EQ(asyncio_test::what_of(std::get<1>(outcomes).error()), "boom");

    asyncio::AnyTask slow = asyncio::create_task([] { asyncio::sleep(10.0); });
    EXPECT_THROW(asyncio::wait_for(slow, 1.0), asyncio::TimeoutError);
    EXPECT_TRUE(slow.cancelled());

    asyncio::AnyTask same = asyncio::ensure_future(a);
    EXPECT_EQ(same.state(), a.state());
  });
  loop.run_until_complete(main);
}

}  // namespace
