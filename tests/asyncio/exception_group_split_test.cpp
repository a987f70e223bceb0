// exception_group_split_test.cpp: ExceptionGroup::split() and subgroup(), Python's eg.split() and
// eg.subgroup() (what `except*` does), after CPython's ExceptionGroupSplitTests and
// NestedExceptionGroupSplitTest (Lib/test/test_exception_group.py): parts keep the message and the
// nesting, members keep their identity, an empty part is none.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using ExceptionGroupSplit = greenlet_test::GreenletTest;
using asyncio::ExceptionGroup;

std::exception_ptr value_error(int n) {
  return std::make_exception_ptr(std::invalid_argument("V" + std::to_string(n)));
}
std::exception_ptr type_error(int n) { return std::make_exception_ptr(std::domain_error("T" + std::to_string(n))); }
std::exception_ptr group(std::string message, std::vector<std::exception_ptr> members) {
  return std::make_exception_ptr(ExceptionGroup(std::move(message), std::move(members)));
}

// shape(eg) draws a group as CPython's tests' templates: "msg[V1, inner[T2]]".
std::string shape(const ExceptionGroup& eg);
std::string shape(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const ExceptionGroup& nested) {
    return shape(nested);
  } catch (const std::exception& leaf) {
    return leaf.what();
  }
}
std::string shape(const ExceptionGroup& eg) {
  std::string out = eg.message() + "[";
  for (std::size_t i = 0; i < eg.exceptions().size(); ++i) out += (i ? ", " : "") + shape(eg.exceptions()[i]);
  return out + "]";
}
std::string shape(const std::optional<ExceptionGroup>& eg) { return eg ? shape(*eg) : "None"; }

const ExceptionGroup simple("simple", {value_error(1), type_error(2), value_error(3)});

// test_basics_subgroup_by_type__passthrough / test_basics_split_by_type__passthrough: a condition
// the group itself meets takes it whole.
TEST_F(ExceptionGroupSplit, ByTypePassthrough) {
  EXPECT_EQ(shape(simple.subgroup<std::exception>()), "simple[V1, T2, V3]");
  EXPECT_EQ(shape(simple.subgroup<ExceptionGroup>()), "simple[V1, T2, V3]");
  auto [matched, rest] = simple.split<std::logic_error>();  // both member types derive from it
  EXPECT_EQ(shape(matched), "simple[V1, T2, V3]");
  EXPECT_EQ(shape(rest), "None");
}

// test_basics_subgroup_by_type__no_match / test_basics_split_by_type__no_match
TEST_F(ExceptionGroupSplit, ByTypeNoMatch) {
  EXPECT_EQ(shape(simple.subgroup<std::overflow_error>()), "None");
  auto [matched, rest] = simple.split<std::overflow_error>();
  EXPECT_EQ(shape(matched), "None");
  EXPECT_EQ(shape(rest), "simple[V1, T2, V3]");
}

// test_basics_subgroup_by_type__match / test_basics_split_by_type__match: the members in their
// order, as the very exceptions of the group (the same exception_ptr), under its message.
TEST_F(ExceptionGroupSplit, ByTypeMatch) {
  auto [matched, rest] = simple.split<std::invalid_argument>();
  EXPECT_EQ(shape(matched), "simple[V1, V3]");
  EXPECT_EQ(shape(rest), "simple[T2]");
  ASSERT_TRUE(matched && rest);
  EXPECT_EQ(matched->exceptions()[0], simple.exceptions()[0]);
  EXPECT_EQ(matched->exceptions()[1], simple.exceptions()[2]);
  EXPECT_EQ(rest->exceptions()[0], simple.exceptions()[1]);
  // Several types, as split((E1, E2)).
  EXPECT_EQ(shape(simple.subgroup<std::overflow_error, std::domain_error>()), "simple[T2]");
}

// test_basics_subgroup_by_predicate__passthrough / __no_match / __match
TEST_F(ExceptionGroupSplit, ByPredicate) {
  EXPECT_EQ(shape(simple.subgroup([](const std::exception_ptr&) { return true; })), "simple[V1, T2, V3]");
  EXPECT_EQ(shape(simple.subgroup([](const std::exception_ptr&) { return false; })), "None");
  std::vector<std::string> asked;
  auto [matched, rest] = simple.split([&](const std::exception_ptr& e) {
    asked.push_back(shape(e));
    return shape(e) == "V3";
  });
  EXPECT_EQ(asked, (std::vector<std::string>{"simple[V1, T2, V3]", "V1", "T2", "V3"}));  // the group first
  EXPECT_EQ(shape(matched), "simple[V3]");
  EXPECT_EQ(shape(rest), "simple[V1, T2]");
}

// NestedExceptionGroupSplitTest.test_split_by_type: nested groups split alike and keep their
// place and message; a nested group wholly on one side stays the same exception.
TEST_F(ExceptionGroupSplit, NestedKeepsTheTree) {
  const std::exception_ptr only_types = group("types", {type_error(4)});
  const ExceptionGroup nested("outer", {value_error(1), group("inner", {type_error(2), value_error(3)}), only_types});
  auto [matched, rest] = nested.split<std::invalid_argument>();
  EXPECT_EQ(shape(matched), "outer[V1, inner[V3]]");
  EXPECT_EQ(shape(rest), "outer[inner[T2], types[T4]]");
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->exceptions()[1], only_types);
  // A nested group the condition takes whole.
  auto is_nested_group = [](const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const ExceptionGroup& g) {
      return g.message() != "outer";
    } catch (...) {
      return false;
    }
  };
  auto [groups, leaves] = nested.split(is_nested_group);
  EXPECT_EQ(shape(groups), "outer[inner[T2, V3], types[T4]]");
  EXPECT_EQ(shape(leaves), "outer[V1]");
}

// What `except*` does with a TaskGroup's failures: handle one kind, re-raise the rest.
TEST_F(ExceptionGroupSplit, ExceptStarOverATaskGroup) {
  std::vector<std::string> handled;
  try {
    asyncio::run([] {
      asyncio::task_group([](asyncio::TaskGroup& tg) {
        tg.create_task([] { throw std::invalid_argument("bad input"); });
        tg.create_task([] { throw std::domain_error("bad domain"); });
      });
    });
    FAIL() << "the group did not fail";
  } catch (const ExceptionGroup& eg) {
    try {
      auto [matched, rest] = eg.split<std::invalid_argument>();  // except* ValueError:
      if (matched) handled.push_back(shape(*matched));
      if (rest) throw *rest;
    } catch (const ExceptionGroup& unhandled) {
      handled.push_back("re-raised " + shape(unhandled));
    }
  }
  EXPECT_EQ(handled, (std::vector<std::string>{"unhandled errors in a TaskGroup[bad input]",
                                               "re-raised unhandled errors in a TaskGroup[bad domain]"}));
}

}  // namespace
