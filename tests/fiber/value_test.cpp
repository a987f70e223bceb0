// value_test.cpp: what switch_() carries between greenlets: nothing, one
// object, several as a std::tuple, move-only objects, and exceptions, in
// both directions; and a readable bad_value_access on a type mismatch.
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using Value = greenlet_test::GreenletTest;

greenlet::greenlet parent() { return greenlet::getcurrent().parent(); }

TEST_F(Value, MoveOnlyBothDirections) {
  greenlet::greenlet g([](std::unique_ptr<int> first) {
    // parent -> child as run's argument; child -> parent through switch_().
    greenlet::value back = parent().switch_(std::make_unique<int>(*first + 1));
    std::unique_ptr<int> second = std::move(back).get<std::unique_ptr<int>>();
    return std::make_unique<int>(*second * 10);  // child -> parent as the result
  });
  greenlet::value v = g.switch_(std::make_unique<int>(41));
  ASSERT_TRUE(v.holds<std::unique_ptr<int>>());
  std::unique_ptr<int> from_child = std::move(v).get<std::unique_ptr<int>>();
  ASSERT_NE(from_child, nullptr);
  EXPECT_EQ(*from_child, 42);

  greenlet::value result = g.switch_(std::make_unique<int>(7));
  EXPECT_TRUE(g.dead());
  std::unique_ptr<int> last = std::move(result).get<std::unique_ptr<int>>();
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(*last, 70);
}

TEST_F(Value, EmptySingleAndSeveral) {
  std::vector<std::string> seen;
  greenlet::greenlet g([&seen] {
    greenlet::value v = parent().switch_();  // nothing up
    seen.push_back(v.empty() ? "empty" : "not empty");
    v = parent().switch_(5);  // one
    seen.push_back("got " + v.get<std::string>());
    v = parent().switch_(1, "two", 3.5);  // several
    auto [a, b] = v.get<int, std::string>();
    seen.push_back("got " + std::to_string(a) + " " + b);
  });

  greenlet::value v = g.switch_();
  EXPECT_TRUE(v.empty());
  EXPECT_FALSE(v.has_value());
  EXPECT_EQ(v.type(), typeid(void));

  v = g.switch_();  // nothing down
  ASSERT_TRUE(v.holds<int>());
  EXPECT_EQ(v.get<int>(), 5);

  v = g.switch_("five");  // a string literal arrives as std::string
  ASSERT_TRUE((v.holds<std::tuple<int, std::string, double>>()));
  EXPECT_EQ((v.get<int, std::string, double>()), std::make_tuple(1, std::string("two"), 3.5));

  v = g.switch_(6, "six");  // run returns void: the parent gets nothing
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(seen, (std::vector<std::string>{"empty", "got five", "got 6 six"}));
}

// get<const T>() is read-only access to a held T, whichever way T is
// stored: inline (int, a small struct) or on the heap (types whose moves may
// throw, such as std::vector and std::unique_ptr as const). It used to pick
// the layout for const T and read the wrong one (garbage, or a crash).
TEST_F(Value, GetConstReadsTheHeldObject) {
  greenlet::greenlet producer([] { greenlet::getcurrent().parent().switch_(std::vector<int>{1, 2, 3}); });
  greenlet::value v = producer.switch_();
  EXPECT_TRUE(v.holds<const std::vector<int>>());
  const std::vector<int>& numbers = v.get<const std::vector<int>>();
  EXPECT_EQ(numbers, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(&numbers, &v.get<std::vector<int>>());
  EXPECT_TRUE(v.holds<const std::vector<int>&>());
  EXPECT_EQ(&numbers, &v.get<const std::vector<int>&>());

  greenlet::value owner(std::make_unique<int>(42));
  EXPECT_EQ(*owner.get<const std::unique_ptr<int>>(), 42);
  greenlet::value small(7);
  EXPECT_EQ(small.get<const int>(), 7);
  EXPECT_EQ(std::move(small).get<const int>(), 7);
  EXPECT_THROW(owner.get<const std::vector<int>>(), greenlet::bad_value_access);
  producer.switch_();
}

TEST_F(Value, TypedRunParameters) {
  greenlet::greenlet g([](int n, std::string s, double d) { return s + std::to_string(n + static_cast<int>(d)); });
  greenlet::value v = g.switch_(40, "answer ", 2.0);
  EXPECT_EQ(v.get<std::string>(), "answer 42");
}

TEST_F(Value, MismatchThrowsBadValueAccessNamingBothTypes) {
  greenlet::value v(42);
  try {
    (void)v.get<double>();
    ADD_FAILURE() << "get<double>() on an int returned";
  } catch (const greenlet::bad_value_access& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), greenlet::errc::bad_value_access);
    EXPECT_NE(what.find("int"), std::string::npos) << what;
    EXPECT_NE(what.find("double"), std::string::npos) << what;
  }
  EXPECT_EQ(v.get<int>(), 42) << "a failed get<T>() must leave the value alone";

  greenlet::value nothing;
  try {
    (void)nothing.get<std::string>();
    ADD_FAILURE() << "get<std::string>() on an empty value returned";
  } catch (const greenlet::bad_value_access& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("nothing"), std::string::npos) << what;
    EXPECT_NE(what.find("std::string"), std::string::npos) << what;
  }

  // It is a greenlet::error, catchable as such.
  EXPECT_THROW((void)greenlet::value(1.5).get<int>(), greenlet::error);
}

// Arguments that do not fit run's parameters raise bad_value_access inside
// the new greenlet, so it reaches the parent (Python raises TypeError there).
TEST_F(Value, RunParameterMismatchReachesParent) {
  bool ran = false;
  greenlet::greenlet g([&ran](int) { ran = true; });
  try {
    g.switch_(std::string("not an int"));
    ADD_FAILURE() << "switch_() with the wrong argument type returned";
  } catch (const greenlet::bad_value_access& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("std::string"), std::string::npos) << what;
    EXPECT_NE(what.find("int"), std::string::npos) << what;
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(g.dead());
}

TEST_F(Value, ExceptionChildToParent) {
  greenlet::greenlet g([] {
    parent().switch_(1);
    throw std::runtime_error("from child");
  });
  EXPECT_EQ(g.switch_().get<int>(), 1);
  try {
    g.switch_();
    ADD_FAILURE() << "the child's exception was not raised in the parent";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "from child");
  }
  EXPECT_TRUE(g.dead());
}

TEST_F(Value, ExceptionParentToChild) {
  greenlet::greenlet g([]() -> std::string {
    try {
      parent().switch_("waiting");
    } catch (const std::invalid_argument& e) {
      return std::string("child caught ") + e.what();
    }
    return "nothing caught";
  });
  EXPECT_EQ(g.switch_().get<std::string>(), "waiting");
  greenlet::value v = g.throw_(std::invalid_argument("from parent"));
  EXPECT_EQ(v.get<std::string>(), "child caught from parent");
  EXPECT_TRUE(g.dead());
}

}  // namespace
