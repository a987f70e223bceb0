// exception_group_bound_test.cpp: an ExceptionGroup's what() and repr() list at most 15 members
// and about 2,000 characters of them, then "... and N more": a group of 10,000 (or 100,000)
// failed tasks made a message of megabytes, built in quadratic time.
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/asyncio/sync_errors.hpp>
#include <greenlet/asyncio/taskgroup.hpp>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using ExceptionGroupBound = greenlet_test::GreenletTest;

std::vector<std::exception_ptr> value_errors(std::size_t n, const std::string& prefix = "boom ") {
  std::vector<std::exception_ptr> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(std::make_exception_ptr(asyncio::ValueError(prefix + std::to_string(i))));
  return out;
}

// repr_of(e) is exception_repr() through a failed future's repr(), as a log line shows it.
std::string repr_of(asyncio::event_loop& loop, std::exception_ptr e) {
  auto f = loop.create_future<int>();
  f.set_exception(e);
  f.exception();  // retrieved: no report when it goes
  return f.repr();
}

TEST_F(ExceptionGroupBound, WhatListsFifteenThenCountsTheRest) {
  asyncio::ExceptionGroup group("unhandled errors in a TaskGroup", value_errors(10000));
  const std::string what = group.what();
  EXPECT_EQ(group.exceptions().size(), 10000u);  // all kept, only the text is bounded
  EXPECT_LT(what.size(), 2200u) << what.size();
  EXPECT_EQ(what.rfind("unhandled errors in a TaskGroup (10000 sub-exceptions): boom 0; boom 1; boom 2; ", 0), 0u)
      << what.substr(0, 200);
  EXPECT_NE(what.find("; boom 14; ... and 9985 more sub-exceptions"), std::string::npos) << what;
  EXPECT_EQ(what.find("boom 15"), std::string::npos) << what;
  EXPECT_TRUE(what.ends_with("... and 9985 more sub-exceptions")) << what;
}

TEST_F(ExceptionGroupBound, SmallGroupsAreListedWhole) {
  asyncio::ExceptionGroup one("g", value_errors(1));
  EXPECT_STREQ(one.what(), "g (1 sub-exception): boom 0");
  asyncio::ExceptionGroup fifteen("g", value_errors(15));
  const std::string what = fifteen.what();
  EXPECT_TRUE(what.ends_with("; boom 14")) << what;
  EXPECT_EQ(what.find("more"), std::string::npos) << what;
  asyncio::ExceptionGroup sixteen("g", value_errors(16));
  EXPECT_TRUE(std::string(sixteen.what()).ends_with("; boom 14; ... and 1 more sub-exception")) << sixteen.what();
}

// Long members: the character budget stops the list before 15; a huge first member is cut.
TEST_F(ExceptionGroupBound, WhatStaysNearTwoThousandCharacters) {
  asyncio::ExceptionGroup group("g", value_errors(10000, std::string(500, 'x')));
  const std::string what = group.what();
  EXPECT_LT(what.size(), 2200u) << what.size();
  // Each member's what() is 500 x's and its index: three fit in 2,000 characters, not four.
  const std::size_t first = what.find(": xxx");
  ASSERT_NE(first, std::string::npos) << what;
  EXPECT_EQ(what.find_first_not_of('x', first + 2), first + 502) << what;
  EXPECT_EQ(what.substr(first + 502, 3), "0; ");
  EXPECT_TRUE(what.ends_with("x2; ... and 9997 more sub-exceptions")) << what;

  std::vector<std::exception_ptr> huge{std::make_exception_ptr(std::runtime_error(std::string(1000000, 'y')))};
  huge.push_back(std::make_exception_ptr(std::runtime_error("second")));
  asyncio::ExceptionGroup cut("g", std::move(huge));
  const std::string cut_what = cut.what();
  EXPECT_LT(cut_what.size(), 2200u);
  EXPECT_NE(cut_what.find("yyy...; ... and 1 more sub-exception"), std::string::npos) << cut_what.substr(1900);
}

TEST_F(ExceptionGroupBound, ReprListsFifteenThenCountsTheRest) {
  asyncio::event_loop loop;
  const std::string repr =
      repr_of(loop, std::make_exception_ptr(asyncio::ExceptionGroup("unhandled errors", value_errors(10000))));
  EXPECT_LT(repr.size(), 2300u) << repr.size();
  EXPECT_EQ(repr.rfind("<Future finished exception=ExceptionGroup('unhandled errors', [ValueError('boom 0'), "
                       "ValueError('boom 1'), ",
                       0),
            0u)
      << repr.substr(0, 200);
  EXPECT_TRUE(repr.ends_with("ValueError('boom 14'), ... and 9985 more])>")) << repr;
  EXPECT_EQ(repr.find("boom 15"), std::string::npos);
}

// A group of groups: each level is bounded, so the whole is too.
TEST_F(ExceptionGroupBound, NestedGroupsStayBounded) {
  asyncio::event_loop loop;
  std::vector<std::exception_ptr> groups;
  for (int i = 0; i < 200; ++i) {
    groups.push_back(std::make_exception_ptr(asyncio::ExceptionGroup("inner", value_errors(200))));
  }
  asyncio::ExceptionGroup outer("outer", std::move(groups));
  EXPECT_LT(std::string(outer.what()).size(), 2200u);
  EXPECT_TRUE(std::string(outer.what()).ends_with("more sub-exceptions")) << outer.what();
  const std::string repr = repr_of(loop, std::make_exception_ptr(outer));
  EXPECT_LT(repr.size(), 2300u);
  EXPECT_TRUE(repr.ends_with(" more])>")) << repr;
}

// A hundred thousand members: built in well under a second (it was quadratic).
TEST_F(ExceptionGroupBound, HundredThousandMembers) {
  asyncio::ExceptionGroup group("g", value_errors(100000));
  EXPECT_TRUE(std::string(group.what()).ends_with("... and 99985 more sub-exceptions")) << group.what();
}

}  // namespace
