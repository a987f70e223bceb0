// timeout_test.cpp: asyncio::timeout()/timeout_at() and shield(), ported from
// CPython's Lib/test/test_asyncio/test_timeouts.py and test_tasks.py (shield).
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;

namespace {

using TimeoutTests = greenlet_test::GreenletTest;

// test_timeout_basic
TEST_F(TimeoutTests, test_timeout_basic) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        const double start = loop.time();
        bool expired = false;
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&](asyncio::Timeout& cm) {
                                        try {
                                          asyncio::sleep(10);
                                        } catch (...) {
                                          expired = cm.expired();
                                          throw;
                                        }
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(expired);
        EXPECT_NEAR(loop.time() - start, 0.01, 1e-9);
      },
      virtual_time());
}

// test_timeout_not_called / returns the body's value
TEST_F(TimeoutTests, test_timeout_not_called) {
  asyncio::run(
      [] {
        int r = asyncio::timeout(10, [] {
          asyncio::sleep(0.01);
          return 7;
        });
        EXPECT_EQ(r, 7);
      },
      virtual_time());
}

// `async with asyncio.timeout(d): item = table[k]` binds the table's own
// object: the callable form returns what the body returns, a reference as
// that same reference (it was copied into a value), whichever form the body
// takes, through timeout() and timeout_at().
TEST_F(TimeoutTests, test_timeout_returns_body_reference_to_same_object) {
  asyncio::run(
      [] {
        std::map<int, std::string> table{{1, "one"}};
        decltype(auto) item = asyncio::timeout(1.0, [&]() -> std::string& {
          asyncio::sleep(0.01);
          return table.at(1);
        });
        EXPECT_TRUE((std::is_same_v<decltype(item), std::string&>));
        EXPECT_EQ(&item, &table.at(1));
        item += "!";
        EXPECT_EQ(table.at(1), "one!");

        auto& loop = asyncio::get_running_loop();
        decltype(auto) at = asyncio::timeout_at(loop.time() + 1.0, [&](asyncio::Timeout& cm) -> std::string& {
          cm.reschedule(loop.time() + 2.0);
          asyncio::sleep(0.01);
          return table.at(1);
        });
        EXPECT_TRUE((std::is_same_v<decltype(at), std::string&>));
        EXPECT_EQ(&at, &table.at(1));
      },
      virtual_time());
}

// A const reference and an rvalue reference come back as such, naming the
// body's object; a move-only value is moved out; a void body gives void.
TEST_F(TimeoutTests, test_timeout_forwards_const_rvalue_reference_value_and_void) {
  asyncio::run(
      [] {
        const std::string name = "name";
        decltype(auto) c = asyncio::timeout(1.0, [&]() -> const std::string& { return name; });
        EXPECT_TRUE((std::is_same_v<decltype(c), const std::string&>));
        EXPECT_EQ(&c, &name);

        std::string source = "moved";
        decltype(auto) r = asyncio::timeout(std::nullopt, [&]() -> std::string&& { return std::move(source); });
        EXPECT_TRUE((std::is_same_v<decltype(r), std::string&&>));
        EXPECT_EQ(&r, &source);

        std::unique_ptr<int> owned = asyncio::timeout(1.0, [] { return std::make_unique<int>(5); });
        ASSERT_NE(owned, nullptr);
        EXPECT_EQ(*owned, 5);

        EXPECT_TRUE((std::is_void_v<decltype(asyncio::timeout(1.0, [] {}))>));
      },
      virtual_time());
}

// A body returning a reference still times out at its deadline.
TEST_F(TimeoutTests, test_timeout_reference_body_times_out) {
  asyncio::run(
      [] {
        int value = 0;
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&]() -> int& {
                                        asyncio::sleep(10);
                                        return value;
                                      }),
                     asyncio::TimeoutError);
      },
      virtual_time());
}

// test_timeout_disabled: nullopt means no deadline.
TEST_F(TimeoutTests, test_timeout_disabled) {
  asyncio::run(
      [] {
        asyncio::timeout(std::nullopt, [](asyncio::Timeout& cm) {
          EXPECT_FALSE(cm.when().has_value());
          asyncio::sleep(0.01);
        });
      },
      virtual_time());
}

// test_timeout_at_disabled / test_timeout_zero: a past deadline fires on
// the next iteration.
TEST_F(TimeoutTests, test_timeout_zero) {
  asyncio::run([] { EXPECT_THROW(asyncio::timeout(0, [] { asyncio::sleep(10); }), asyncio::TimeoutError); },
               virtual_time());
}

// test_nested_timeouts: the inner deadline fires; only it converts.
TEST_F(TimeoutTests, test_nested_timeouts) {
  asyncio::run(
      [] {
        bool outer_expired = true;
        bool inner_raised = false;
        asyncio::timeout(10, [&](asyncio::Timeout& outer) {
          try {
            asyncio::timeout(0.01, [] { asyncio::sleep(10); });
          } catch (const asyncio::TimeoutError&) {
            inner_raised = true;
          }
          outer_expired = outer.expired();
        });
        EXPECT_TRUE(inner_raised);
        EXPECT_FALSE(outer_expired);
      },
      virtual_time());
}

// test_nested_timeouts_concurrent: the outer deadline fires while inside the
// inner scope: the outer one converts, the inner lets CancelledError through.
TEST_F(TimeoutTests, test_outer_deadline_inside_inner_scope) {
  asyncio::run(
      [] {
        std::vector<std::string> events;
        try {
          asyncio::timeout(0.01, [&] {
            try {
              asyncio::timeout(10, [] { asyncio::sleep(10); });
            } catch (const asyncio::CancelledError&) {
              events.push_back("inner saw CancelledError");
              throw;
            }
          });
        } catch (const asyncio::TimeoutError&) {
          events.push_back("outer TimeoutError");
        }
        EXPECT_EQ(events, (std::vector<std::string>{"inner saw CancelledError", "outer TimeoutError"}));
      },
      virtual_time());
}

// test_reschedule
TEST_F(TimeoutTests, test_reschedule) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        const double start = loop.time();
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&](asyncio::Timeout& cm) {
                                        cm.reschedule(loop.time() + 0.5);
                                        asyncio::sleep(10);
                                      }),
                     asyncio::TimeoutError);
        EXPECT_NEAR(loop.time() - start, 0.5, 1e-9);
      },
      virtual_time());
}

// test_timeout_in_cancelled_task: a real cancel() is not turned into TimeoutError.
TEST_F(TimeoutTests, test_real_cancel_is_not_a_timeout) {
  asyncio::run(
      [] {
        auto t = asyncio::create_task([] { asyncio::timeout(10, [] { asyncio::sleep(10); }); });
        asyncio::sleep(0.01);
        t.cancel();
        EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
      },
      virtual_time());
}

// test_shield_cancel_outer: cancelling the waiter leaves the inner task running.
TEST_F(TimeoutTests, test_shield_cancel_outer) {
  asyncio::run(
      [] {
        auto inner = asyncio::create_task([] {
          asyncio::sleep(0.1);
          return 3;
        });
        auto waiter = asyncio::create_task([&] { return asyncio::await(asyncio::shield(inner)); });
        asyncio::sleep(0.01);
        waiter.cancel();
        EXPECT_THROW(asyncio::await(waiter), asyncio::CancelledError);
        EXPECT_FALSE(inner.done());
        EXPECT_EQ(asyncio::await(inner), 3);
      },
      virtual_time());
}

// test_shield_result / shield around wait_for: the timeout cancels the
// shield, not the work.
TEST_F(TimeoutTests, test_shield_with_wait_for) {
  asyncio::run(
      [] {
        auto inner = asyncio::create_task([] {
          asyncio::sleep(0.5);
          return std::string("done");
        });
        EXPECT_THROW(asyncio::wait_for(asyncio::shield(inner), 0.1), asyncio::TimeoutError);
        EXPECT_FALSE(inner.cancelled());
        EXPECT_EQ(asyncio::await(inner), "done");
      },
      virtual_time());
}

}  // namespace
