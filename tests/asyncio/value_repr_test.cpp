// value_repr_test.cpp: how a result prints in Future::repr() (reprlib.repr(), as asyncio's
// _future_repr_info) and an item in a queue's repr() (builtins repr(), as asyncio's
// {self._queue!r}). Every expected text is what Python 3.12 prints for the value the C++ type
// stands for, e.g. python3 -c "import reprlib; print(reprlib.repr(list(range(1, 11))))".
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "asyncio_test_support.hpp"
#include "greenlet/detail/value_repr.hpp"

namespace asyncio = greenlet::asyncio;

namespace value_repr_test {

using ValueRepr = greenlet_test::GreenletTest;

// result_text(value) is what Future::repr() shows after "result=".
template <class T>
std::string result_text(T value) {
  asyncio::event_loop loop;
  auto future = loop.create_future<T>();
  future.set_result(std::move(value));
  const std::string repr = future.repr();
  const std::string head = "<Future finished result=";
  EXPECT_EQ(repr.rfind(head, 0), 0u) << repr;
  EXPECT_EQ(repr.back(), '>') << repr;
  return repr.substr(head.size(), repr.size() - head.size() - 1);
}

// queue_text(items) is what a Queue's str() shows between "_queue=" and " tasks=".
template <class T>
std::string queue_text(std::vector<T> items) {
  std::string shown;
  asyncio::run([&] {
    asyncio::Queue<T> queue;
    for (std::size_t i = 0; i < items.size(); ++i) queue.put_nowait(items[i]);
    const std::string str = queue.str();
    const std::size_t from = str.find("_queue=") + 7;
    shown = str.substr(from, str.find(" tasks=") - from);
  });
  return shown;
}

struct point {
  int x, y;
};
std::ostream& operator<<(std::ostream& os, const point& p) { return os << "point(" << p.x << ", " << p.y << ")"; }

struct opaque {};

// Python: True, False, None.
TEST_F(ValueRepr, BoolsAndNones) {
  EXPECT_EQ(result_text(true), "True");
  EXPECT_EQ(result_text(false), "False");
  EXPECT_EQ(result_text(std::optional<int>()), "None");
  EXPECT_EQ(result_text(std::optional<int>(5)), "5");
  EXPECT_EQ(result_text(std::monostate()), "None");
  EXPECT_EQ(result_text(nullptr), "None");
  EXPECT_EQ(queue_text<bool>({true, false}), "[True, False]");
}

// Python's repr() of a float: the shortest digits that read back, fixed from 1e-4 to 1e16.
TEST_F(ValueRepr, FloatsAsPythonPrintsThem) {
  EXPECT_EQ(result_text(0.1), "0.1");
  EXPECT_EQ(result_text(2.0), "2.0");
  EXPECT_EQ(result_text(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(result_text(1e16), "1e+16");
  EXPECT_EQ(result_text(1e15), "1000000000000000.0");
  EXPECT_EQ(result_text(1e-5), "1e-05");
  EXPECT_EQ(result_text(0.0001), "0.0001");
  EXPECT_EQ(result_text(1.5e-7), "1.5e-07");
  EXPECT_EQ(result_text(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(result_text(1e22), "1e+22");
  EXPECT_EQ(result_text(5e-324), "5e-324");
  EXPECT_EQ(result_text(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(result_text(-0.0), "-0.0");
  EXPECT_EQ(result_text(-2.5), "-2.5");
  EXPECT_EQ(result_text(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(result_text(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(result_text(std::numeric_limits<double>::quiet_NaN()), "nan");
  // A float's own shortest digits, not those of the double it widens to (0.10000000149011612).
  EXPECT_EQ(result_text(0.1f), "0.1");
  EXPECT_EQ(queue_text<double>({0.5, 3.0}), "[0.5, 3.0]");
}

// Integers as Python's int; a char is a one-character str, the other character types numbers.
TEST_F(ValueRepr, IntegersAndCharacters) {
  EXPECT_EQ(result_text(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(result_text(std::uint64_t{18446744073709551615u}), "18446744073709551615");
  EXPECT_EQ(result_text('a'), "'a'");
  EXPECT_EQ(result_text(std::uint8_t{65}), "65");
  EXPECT_EQ(result_text(std::int8_t{-3}), "-3");
  EXPECT_EQ(result_text(U'x'), "120");
}

// Pairs and tuples are Python tuples: (1, 'a'), (1,), ().
TEST_F(ValueRepr, PairsAndTuplesAreTuples) {
  EXPECT_EQ(result_text(std::pair<int, std::string>(1, "a")), "(1, 'a')");
  EXPECT_EQ(result_text(std::tuple<int>(1)), "(1,)");
  EXPECT_EQ(result_text(std::tuple<>()), "()");
  EXPECT_EQ(result_text(std::tuple<std::vector<int>>()), "([],)");
  using seven = std::tuple<int, int, int, int, int, int, int>;
  EXPECT_EQ(result_text(seven(1, 2, 3, 4, 5, 6, 7)), "(1, 2, 3, 4, 5, 6, ...)");
  // The queue of (priority, data) pairs asyncio's docs use.
  using job = std::pair<int, std::string>;
  EXPECT_EQ(queue_text<job>({{1, "a"}, {2, "b"}}), "[(1, 'a'), (2, 'b')]");
}

// Containers: a sequence is a list, a map a dict, a set a set; reprlib shows 6 items of a list,
// 4 of a dict, and six levels.
TEST_F(ValueRepr, ContainersAsListsDictsAndSets) {
  EXPECT_EQ(result_text(std::vector<int>()), "[]");
  EXPECT_EQ(result_text(std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), "[1, 2, 3, 4, 5, 6, ...]");
  EXPECT_EQ(result_text(std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}, {"e", 5}}),
            "{'a': 1, 'b': 2, 'c': 3, 'd': 4, ...}");
  EXPECT_EQ(result_text(std::map<std::string, std::vector<int>>{{"k", {1, 2}}}), "{'k': [1, 2]}");
  EXPECT_EQ(result_text(std::vector<std::map<int, int>>{{}}), "[{}]");
  EXPECT_EQ(result_text(std::set<int>()), "set()");
  EXPECT_EQ(result_text(std::set<int>{3, 1, 2}), "{1, 2, 3}");
  using nest7 = std::vector<std::vector<std::vector<std::vector<std::vector<std::vector<std::vector<int>>>>>>>;
  EXPECT_EQ(result_text(nest7{{{{{{{1}}}}}}}), "[[[[[[[...]]]]]]]");
  // A queue's repr() is repr(), not reprlib.repr(): nothing is cut inside an item.
  EXPECT_EQ(queue_text<std::vector<int>>({{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}), "[[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]");
}

// reprlib cuts a str's repr to 30 code points (not bytes), escapes counted.
TEST_F(ValueRepr, LongStringsAreCutAsReprlibCutsThem) {
  EXPECT_EQ(result_text(std::string(100, 'x')), "'xxxxxxxxxxxx...xxxxxxxxxxxxx'");
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "\xc3\xa9";  // é
  std::string twelve, thirteen;
  for (int i = 0; i < 12; ++i) twelve += "\xc3\xa9";
  for (int i = 0; i < 13; ++i) thirteen += "\xc3\xa9";
  EXPECT_EQ(result_text(accents), "'" + twelve + "..." + thirteen + "'");
  EXPECT_EQ(result_text(std::string(8, '\x01')), "'\\x01\\x01\\x01...1\\x01\\x01\\x01'");
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += "ab\ncd";
  EXPECT_EQ(result_text(lines), "'ab\\ncdab\\ncd...dab\\ncdab\\ncd'");
  EXPECT_EQ(result_text(std::string("it's")), "\"it's\"");
  // A 30-code-point repr is kept whole.
  EXPECT_EQ(result_text(std::string(28, 'y')), "'" + std::string(28, 'y') + "'");
  EXPECT_EQ(queue_text<std::string>({std::string(40, 'z')}), "['" + std::string(40, 'z') + "']");
}

// A type with operator<< prints through it (reprlib cuts it to 30 code points, as another object's
// repr); a variant as what it holds; a type with neither as <value>.
TEST_F(ValueRepr, StreamedVariantAndOpaqueValues) {
  EXPECT_EQ(result_text(point{1, 2}), "point(1, 2)");
  EXPECT_EQ(result_text(std::vector<point>{{1, 2}, {3, 4}}), "[point(1, 2), point(3, 4)]");
  EXPECT_EQ(result_text(point{-1234567890, -1234567890}), "point(-123456..., -1234567890)");
  EXPECT_EQ(result_text(std::variant<int, std::string>("v")), "'v'");
  EXPECT_EQ(result_text(std::variant<int, std::string>(7)), "7");
  EXPECT_EQ(result_text(opaque{}), "<value>");
  EXPECT_EQ(queue_text<opaque>({{}, {}}), "[<value>, <value>]");
}

// A result that has a repr() (a Future of this library) prints as that.
TEST_F(ValueRepr, ResultsWithARepr) {
  asyncio::event_loop loop;
  auto inner = loop.create_future<int>();
  inner.set_result(4);
  auto outer = loop.create_future<asyncio::Future<int>>();
  outer.set_result(inner);
  EXPECT_EQ(outer.repr(), "<Future finished result=<Future finished result=4>>");
}

// A result that holds its own task (asyncio's test_recursive_repr_for_pending_tasks, for a finished
// one) prints "..." where the task meets itself again, instead of recursing for ever.
TEST_F(ValueRepr, AResultHoldingItsOwnTaskPrintsDots) {
  std::string shown;
  asyncio::run([&] {
    auto task = asyncio::create_task([] { return asyncio::all_tasks(); }, "self");
    asyncio::await(task);
    shown = task.repr();
    // The cycle (the result holds the task) is broken by hand, as C++ has no collector.
    task.result().clear();
  });
  // all_tasks() lists the run()'s main task, then this one; each item is cut to 30 code points.
  EXPECT_EQ(shown,
            "<Task finished name='self' result=[<Task pending...omplete_cb()]>, <Task finishe...f' result=...>]>");
}

// The shared cut reprlib applies: first (max - 3) / 2 code points, "...", the last ones.
TEST_F(ValueRepr, ShortenReprKeepsBothEnds) {
  namespace detail = greenlet::asyncio::detail;
  EXPECT_EQ(detail::shorten_repr("abcdefghij", 10), "abcdefghij");
  EXPECT_EQ(detail::shorten_repr("abcdefghijk", 10), "abc...hijk");
  EXPECT_EQ(detail::shorten_repr(std::string(41, '9'), 40), std::string(18, '9') + "..." + std::string(19, '9'));
}

}  // namespace value_repr_test
