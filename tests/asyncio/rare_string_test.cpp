// rare_string_test.cpp: the one-pointer string behind a task's cancel message
// and a failed task's report name (include/greenlet/detail/rare_string.hpp):
// it reads as a std::string, holds nothing while empty, and copies deeply.
#include <string>
#include <utility>

#include <greenlet/detail/rare_string.hpp>

#include "asyncio/asyncio_test_support.hpp"

namespace {

using greenlet::asyncio::detail::rare_string;
using RareString = greenlet_test::GreenletTest;

TEST_F(RareString, ReadsAsAStringAndHoldsNothingWhileEmpty) {
  static_assert(sizeof(rare_string) == sizeof(void*));
  rare_string s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.str(), "");
  s = "stop now";
  EXPECT_FALSE(s.empty());
  const std::string& read = s;
  EXPECT_EQ(read, "stop now");
  s = std::string("again");
  EXPECT_EQ(s.str(), "again");
  s = "";
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.str(), "");
}

TEST_F(RareString, CopiesAreIndependentAndMovesEmptyTheSource) {
  rare_string a;
  a = "first";
  rare_string b = a;
  b = "second";
  EXPECT_EQ(a.str(), "first");
  EXPECT_EQ(b.str(), "second");
  a = b;
  EXPECT_EQ(a.str(), "second");
  rare_string& same = a;
  a = same;  // self-assignment keeps the text
  EXPECT_EQ(a.str(), "second");
  rare_string c = std::move(a);
  EXPECT_EQ(c.str(), "second");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): a moved-from rare_string is empty
  const rare_string none;
  c = none;
  EXPECT_TRUE(c.empty());
}

// A task's cancel message round-trips through it: set by cancel(), read by
// the CancelledError the task's awaiter gets.
TEST_F(RareString, ATasksCancelMessageReachesItsAwaiter) {
  namespace asyncio = greenlet::asyncio;
  asyncio::event_loop loop;
  auto never = loop.create_future<>();
  auto task = loop.create_task([&] { asyncio::await(never); });
  asyncio_test::run_briefly(loop);
  task.cancel("shutting down");
  EXPECT_EQ(asyncio_test::cancel_message_of([&] { loop.run_until_complete(task); }), "shutting down");
}

}  // namespace
