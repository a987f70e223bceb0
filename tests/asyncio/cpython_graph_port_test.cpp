// cpython_graph_port_test.cpp: CPython 3.14's Lib/test/test_asyncio/test_graph.py (CallStackTestBase),
// ported: who awaits a task or future through a TaskGroup, an async generator, gather(), shield(),
// a timeout, wait(), a plain await, and a future several tasks await.
//
// capture_test_stack() there walks the graph into [name, call_stack, sorted awaited_by], the name
// 'T<name>' for a task, 'T<anon>' for one named by default (Task-N), 'F' for a plain future. The
// call stacks are left out: CPython's name each coroutine ('a c4'), where the lambdas here have no
// names of their own and the compiler inlines them at will; the walk here is "name[awaited by,
// sorted]", each expectation CPython's with its call-stack lists dropped. call_graph_test.cpp checks
// the call stacks by file and line.
#include <algorithm>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace cpython_graph_port_test {

using CallStackTest = greenlet_test::GreenletTest;

// node_label(g) is capture_test_stack()'s first field: T<name>, T<anon> or F.
std::string node_label(const asyncio::FutureCallGraph& g) {
  if (!g.is_task()) return "F";
  const std::string& name = g.task.get_name();
  return name.find('-') == std::string::npos ? "T<" + name + ">" : "T<anon>";
}

// walk(g) is capture_test_stack()'s walk(): the label, then the awaiters' walks sorted by label
// (a stable sort, as Python's sorted() on entry[0]).
std::string walk(const asyncio::FutureCallGraph& g) {
  std::vector<asyncio::FutureCallGraph> awaiters = g.awaited_by;
  std::stable_sort(awaiters.begin(), awaiters.end(),
                   [](const auto& a, const auto& b) { return node_label(a) < node_label(b); });
  std::string out = node_label(g) + "[";
  for (std::size_t i = 0; i < awaiters.size(); ++i) out += (i > 0 ? ", " : "") + walk(awaiters[i]);
  return out + "]";
}

// capture_test_stack() captures the current task's graph (fut: that future's) as the walk and
// the printed text, as the Python helper does.
struct captured {
  std::string walked;
  std::string printed;
};
captured capture_test_stack() {
  std::optional<asyncio::FutureCallGraph> graph = asyncio::capture_call_graph();
  EXPECT_TRUE(graph.has_value());
  return {graph ? walk(*graph) : "", asyncio::format_call_graph() + "\n"};
}
template <class F>
captured capture_test_stack(const F& fut) {
  return {walk(asyncio::capture_call_graph(fut)), asyncio::format_call_graph(fut) + "\n"};
}

TEST_F(CallStackTest, test_stack_tgroup) {
  captured stack_for_c5;
  asyncio::run([&] {
    auto c5 = [&] { stack_for_c5 = capture_test_stack(); };
    auto c4 = [&] {
      asyncio::sleep(0);
      c5();
    };
    auto c3 = [&] { c4(); };
    auto c2 = [&] { c3(); };
    auto c1 = [](asyncio::AnyTask task) { asyncio::await(task); };
    auto main = [&] {
      asyncio::TaskGroup tg;
      auto task = tg.create_task(c2, "c2_root");
      tg.create_task([&, task] { c1(task); }, "sub_main_1");
      tg.create_task([&, task] { c1(task); }, "sub_main_2");
      tg.join();
    };
    main();
  });
  EXPECT_EQ(stack_for_c5.walked,
            "T<c2_root>["
            "T<anon>[], "
            "T<sub_main_1>[T<anon>[]], "
            "T<sub_main_2>[T<anon>[]]]");
  EXPECT_NE(stack_for_c5.printed.find("* Task(name='c2_root', id=0x"), std::string::npos) << stack_for_c5.printed;
}

TEST_F(CallStackTest, test_stack_async_gen) {
  captured stack_for_gen_nested_call;
  asyncio::run([&] {
    auto gen_nested_call = [&] { stack_for_gen_nested_call = capture_test_stack(); };
    asyncio::async_generator<int> gen([&](auto& co) {
      for (int num = 0; num < 2; ++num) {
        co.yield(num);
        if (num == 1) gen_nested_call();
      }
    });
    auto main = [&] {
      for (int el : asyncio::aiter(gen)) (void)el;
    };
    main();
  });
  // The body runs in the task stepping it (Python's runs in its coroutine): that task's graph.
  EXPECT_EQ(stack_for_gen_nested_call.walked, "T<anon>[]");
}

TEST_F(CallStackTest, test_stack_gather) {
  captured stack_for_deep;
  asyncio::run([&] {
    auto deep = [&] {
      asyncio::sleep(0);
      stack_for_deep = capture_test_stack();
    };
    auto c1 = [&] {
      asyncio::sleep(0);
      deep();
    };
    auto c2 = [] { asyncio::sleep(0); };
    auto main = [&] { asyncio::gather(c1, c2); };
    main();
  });
  EXPECT_EQ(stack_for_deep.walked, "T<anon>[T<anon>[]]");
}

TEST_F(CallStackTest, test_stack_shield) {
  captured stack_for_shield;
  asyncio::run([&] {
    auto deep = [&] {
      asyncio::sleep(0);
      stack_for_shield = capture_test_stack();
    };
    auto c1 = [&] {
      asyncio::sleep(0);
      deep();
    };
    auto main = [&] { asyncio::await(asyncio::shield(c1)); };
    main();
  });
  EXPECT_EQ(stack_for_shield.walked, "T<anon>[T<anon>[]]");
}

TEST_F(CallStackTest, test_stack_timeout) {
  captured stack_for_inner;
  asyncio::run([&] {
    auto inner = [&] {
      asyncio::sleep(0);
      stack_for_inner = capture_test_stack();
    };
    auto c1 = [&] {
      asyncio::timeout(1, [&] {
        asyncio::sleep(0);
        inner();
      });
    };
    auto main = [&] { asyncio::await(asyncio::shield(c1)); };
    main();
  });
  EXPECT_EQ(stack_for_inner.walked, "T<anon>[T<anon>[]]");
}

TEST_F(CallStackTest, test_stack_wait) {
  captured stack_for_inner;
  asyncio::run([&] {
    auto inner = [&] {
      asyncio::sleep(0);
      stack_for_inner = capture_test_stack();
    };
    auto c1 = [&] {
      asyncio::timeout(1, [&] {
        asyncio::sleep(0);
        inner();
      });
    };
    auto c2 = [] {
      for (int i = 0; i < 3; ++i) asyncio::sleep(0);
    };
    auto main = [](asyncio::AnyTask t1, asyncio::AnyTask t2) {
      for (;;) {
        auto [done, pending] = asyncio::wait(std::vector{t1, t2});
        if (pending.empty()) break;
      }
    };
    auto t1 = asyncio::create_task(c1);
    auto t2 = asyncio::create_task(c2);
    main(t1, t2);
    asyncio::await(t1);
    asyncio::await(t2);
  });
  EXPECT_EQ(stack_for_inner.walked, "T<anon>[T<anon>[]]");
}

TEST_F(CallStackTest, test_stack_task) {
  captured stack_for_inner;
  asyncio::run([&] {
    auto inner = [&] {
      asyncio::sleep(0);
      stack_for_inner = capture_test_stack();
    };
    auto c1 = [&] { inner(); };
    auto c2 = [&] { asyncio::await(asyncio::create_task(c1, "there there")); };
    auto main = [&] { c2(); };
    main();
  });
  EXPECT_EQ(stack_for_inner.walked, "T<there there>[T<anon>[]]");
}

TEST_F(CallStackTest, test_stack_future) {
  captured stack_for_fut;
  asyncio::run([&] {
    auto a2 = [](asyncio::Future<> fut) { asyncio::await(fut); };
    auto a1 = [&](asyncio::Future<> fut) { a2(fut); };
    auto b1 = [](asyncio::Future<> fut) { asyncio::await(fut); };
    auto main = [&] {
      auto fut = asyncio::get_running_loop().create_future<>();
      asyncio::TaskGroup g;
      g.create_task([&, fut] { a1(fut); }, "task A");
      g.create_task([&, fut] { b1(fut); }, "task B");
      // A few iterations, so that both a1 and b1 await the future.
      for (int i = 0; i < 5; ++i) asyncio::sleep(0);
      stack_for_fut = capture_test_stack(fut);
      fut.set_result();
      g.join();
    };
    main();
  });
  EXPECT_EQ(stack_for_fut.walked, "F[T<task A>[T<anon>[]], T<task B>[T<anon>[]]]");
  EXPECT_EQ(stack_for_fut.printed.rfind("* Future(id=", 0), 0u) << stack_for_fut.printed;
}

}  // namespace cpython_graph_port_test
