// call_graph_test.cpp: capture_call_graph(), format_call_graph(), print_call_graph() and
// future_add_to_awaited_by() beyond CPython's test_graph.py (cpython_graph_port_test.cpp): the
// exact text, where no task runs, the records of future_add_to_awaited_by(), cycles, the cut of a
// deep chain, the waits whose record ends before the child does (gather() left early, wait() timed
// out, a shield given up), an async generator's awaits, and misuse.
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace call_graph_test {

using CallGraph = greenlet_test::GreenletTest;

// hex(p) is the id format_call_graph() prints: %p, as a Python id() in a repr.
std::string hex(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", p);
  return text;
}

// names(g) lists g and its awaiters depth first, a node as its task's name or "F" for a future,
// its awaiters in brackets: "leaf[middle[top[]]]".
std::string names(const asyncio::FutureCallGraph& g) {
  std::string out = g.is_task() ? g.task.get_name() : "F";
  if (g.cycle) return out + "(cycle)";
  if (g.cut) return out + "(cut)";
  out += "[";
  for (std::size_t i = 0; i < g.awaited_by.size(); ++i) out += (i > 0 ? ", " : "") + names(g.awaited_by[i]);
  return out + "]";
}

// without_function_names(text) is a graph's text with each call stack line's function name (after
// ", in "), which depends on the compiler and on what it inlined, left out.
std::string without_function_names(std::string text) {
  for (std::size_t at = text.find("|   File "); at != std::string::npos; at = text.find("|   File ", at + 1)) {
    const std::size_t in = text.find(", in ", at);
    const std::size_t end = text.find('\n', at);
    if (in != std::string::npos && in < end)
      text.erase(in + 5, (end == std::string::npos ? text.size() : end) - in - 5);
  }
  return text;
}

// A chain of three tasks, each awaiting the next: the leaf's graph, as text, line by line, with
// each task's call stack: the line it awaits on (the leaf: where it captures the graph).
TEST_F(CallGraph, TheTextOfAChainIsAsyncios) {
  std::string text;
  const void* ids[3] = {};
  int lines[3] = {};
  asyncio::run([&] {
    asyncio::current_task().set_name("top");
    auto leaf = asyncio::create_task(
        [&] {
          asyncio::sleep(0);
          asyncio::sleep(0);
          lines[0] = __LINE__ + 1;
          text = asyncio::format_call_graph();
        },
        "leaf");
    lines[1] = __LINE__ + 3;
    auto middle = asyncio::create_task(
        [&] {
          asyncio::await(leaf);
          asyncio::sleep(0);  // not a tail call: the lambda's frame stays while it awaits
        },
        "middle");
    ids[0] = leaf.state();
    ids[1] = middle.state();
    ids[2] = asyncio::current_task().state();
    lines[2] = __LINE__ + 1;
    asyncio::await(middle);
  });
  const std::string file = "|   File '" + std::string(__FILE__) + "', line ";
  EXPECT_EQ(without_function_names(text),
            "* Task(name='leaf', id=" + hex(ids[0]) + ")\n  + Call stack:\n  " + file + std::to_string(lines[0]) +
                ", in \n"
                "  + Awaited by:\n"
                "    * Task(name='middle', id=" +
                hex(ids[1]) + ")\n      + Call stack:\n      " + file + std::to_string(lines[1]) +
                ", in \n"
                "      + Awaited by:\n"
                "        * Task(name='top', id=" +
                hex(ids[2]) + ")\n          + Call stack:\n          " + file + std::to_string(lines[2]) + ", in ")
      << text;
}

// limit= cuts each task's call stack as Python's: 0 none, n the newest n, -n the oldest n.
[[gnu::noinline]] void call_graph_test_inner_wait(std::optional<asyncio::FutureCallGraph>& graph, long limit) {
  graph = asyncio::capture_call_graph({.limit = limit});
  asyncio::sleep(0);  // not a tail call: this frame stays
}
[[gnu::noinline]] void call_graph_test_outer_wait(std::optional<asyncio::FutureCallGraph>& graph, long limit) {
  call_graph_test_inner_wait(graph, limit);
  asyncio::sleep(0);
}

TEST_F(CallGraph, LimitCutsEachCallStack) {
  std::optional<asyncio::FutureCallGraph> all, none, newest, oldest;
  asyncio::run([&] {
    call_graph_test_outer_wait(all, 100);
    call_graph_test_outer_wait(none, 0);
    call_graph_test_outer_wait(newest, 1);
    call_graph_test_outer_wait(oldest, -1);
  });
  ASSERT_TRUE(all && none && newest && oldest);
  ASSERT_GE(all->call_stack.size(), 2u) << asyncio::format_call_graph(*all);
  // Newest first, as Python's: the function that captured, then its caller.
  EXPECT_NE(all->call_stack[0].function.find("call_graph_test_inner_wait"), std::string::npos);
  EXPECT_NE(all->call_stack[1].function.find("call_graph_test_outer_wait"), std::string::npos);
  EXPECT_EQ(all->call_stack[0].file, __FILE__);
  EXPECT_TRUE(none->call_stack.empty());
  ASSERT_EQ(newest->call_stack.size(), 1u);
  EXPECT_EQ(newest->call_stack[0].function, all->call_stack[0].function);
  ASSERT_EQ(oldest->call_stack.size(), 1u);
  EXPECT_EQ(oldest->call_stack[0].function, all->call_stack.back().function);
  EXPECT_EQ(asyncio::format_call_graph(*none).find("Call stack"), std::string::npos);
}

// docs/asyncio.md's example, its ids aside.
TEST_F(CallGraph, TheDocsExamplePrintsWhatTheDocsShow) {
  std::string text, main_name;
  std::vector<const void*> ids;
  asyncio::run([&] {
    main_name = asyncio::current_task().get_name();  // Task-N: N counts the process's tasks
    auto fetch = [&] {
      asyncio::sleep(0);
      text = asyncio::format_call_graph({.limit = 0});  // the docs' example shows no frames
    };
    asyncio::TaskGroup tg;
    auto page = tg.create_task(fetch, "fetch");
    auto render = tg.create_task([page] { asyncio::await(page); }, "render");
    ids = {page.state(), asyncio::current_task().state(), render.state()};
    tg.join();
  });
  EXPECT_EQ(text, "* Task(name='fetch', id=" + hex(ids[0]) +
                      ")\n"
                      "  + Awaited by:\n"
                      "    * Task(name='" +
                      main_name + "', id=" + hex(ids[1]) +
                      ")\n"
                      "    * Task(name='render', id=" +
                      hex(ids[2]) +
                      ")\n"
                      "      + Awaited by:\n"
                      "        * Task(name='" +
                      main_name + "', id=" + hex(ids[1]) + ")");
}

// A plain future's line, a task name with a quote (Python's repr chooses the other quotes), and
// print_call_graph()'s newline, to a stream and to stdout.
TEST_F(CallGraph, AFutureAQuotedNameAndPrinting) {
  asyncio::run([] {
    auto fut = asyncio::get_running_loop().create_future<int>();
    auto waiter = asyncio::create_task([fut]() mutable { asyncio::await(fut); }, "it's");
    asyncio::sleep(0);
    const std::string expected = "* Future(id=" + hex(fut.state()) +
                                 ")\n  + Awaited by:\n    * Task(name=\"it's\", id=" + hex(waiter.state()) + ")";
    // (The waiter's call stack left out: limit 0.)
    EXPECT_EQ(asyncio::format_call_graph(fut, {.limit = 0}), expected);
    std::ostringstream out;
    asyncio::print_call_graph(fut, out, {.limit = 0});
    EXPECT_EQ(out.str(), expected + "\n");
    testing::internal::CaptureStdout();
    asyncio::print_call_graph(fut, {.limit = 0});
    EXPECT_EQ(testing::internal::GetCapturedStdout(), expected + "\n");
    // A graph captured once prints the same.
    std::ostringstream again;
    asyncio::print_call_graph(asyncio::capture_call_graph(fut, {.limit = 0}), again);
    EXPECT_EQ(again.str(), expected + "\n");
    fut.set_result(1);
    asyncio::await(waiter);
    // Done, nothing awaits it any more.
    EXPECT_EQ(asyncio::format_call_graph(fut), "* Future(id=" + hex(fut.state()) + ")");
  });
}

// In a plain callback no task runs: no graph, an empty text and an empty line (as asyncio's); with
// no loop running, RuntimeError saying what to pass instead.
TEST_F(CallGraph, NoTaskNoGraphAndNoLoopIsAnError) {
  std::optional<asyncio::FutureCallGraph> in_callback = asyncio::FutureCallGraph{};
  std::string text = "unset", printed;
  asyncio::event_loop loop;
  loop.call_soon([&] {
    in_callback = asyncio::capture_call_graph();
    text = asyncio::format_call_graph();
    std::ostringstream out;
    asyncio::print_call_graph(out);
    printed = out.str();
  });
  asyncio_test::run_briefly(loop);
  EXPECT_FALSE(in_callback.has_value());
  EXPECT_EQ(text, "");
  EXPECT_EQ(printed, "\n");
  try {
    (void)asyncio::capture_call_graph();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.code(), asyncio::asyncio_errc::no_running_loop);
    EXPECT_NE(std::string(e.what()).find("pass the future or task"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)asyncio::format_call_graph(), asyncio::RuntimeError);
}

// A future the graph cannot see awaited (a task waits through a callback of its own) is linked by
// hand: listed once however often linked, gone once discarded; a link kept to the end is let go of
// by the loop's close (the fixture checks that nothing leaked).
TEST_F(CallGraph, FutureAddToAwaitedByLinksWhatTheGraphCannotSee) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto source = loop.create_future<int>();
    auto relay = loop.create_future<int>();
    source.add_done_callback([relay](asyncio::Future<int>& f) mutable { relay.set_result(f.result()); });
    auto consumer = asyncio::create_task([relay]() mutable { return asyncio::await(relay); }, "consumer");
    asyncio::sleep(0);
    EXPECT_EQ(names(asyncio::capture_call_graph(source)), "F[]");
    asyncio::future_add_to_awaited_by(source, consumer);
    asyncio::future_add_to_awaited_by(source, consumer);
    asyncio::future_add_to_awaited_by(source, relay);
    EXPECT_EQ(names(asyncio::capture_call_graph(source)), "F[consumer[], F[consumer[]]]");
    asyncio::future_discard_from_awaited_by(source, relay);
    asyncio::future_discard_from_awaited_by(source, relay);  // nothing left to discard: nothing
    EXPECT_EQ(names(asyncio::capture_call_graph(source)), "F[consumer[]]");
    asyncio::future_discard_from_awaited_by(source, consumer);
    EXPECT_EQ(names(asyncio::capture_call_graph(source)), "F[]");
    // Linked again and left: the loop's close lets go.
    asyncio::future_add_to_awaited_by(source, consumer);
    source.set_result(7);
    EXPECT_EQ(asyncio::await(consumer), 7);
  });
}

// A link holds its waiter, and goes with the future it was made on.
TEST_F(CallGraph, ALinkHoldsItsWaiterAndGoesWithItsFuture) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto waiter = loop.create_future<>();
    std::weak_ptr<int> alive;
    {
      auto watched = std::make_shared<int>(1);
      alive = watched;
      auto f = loop.create_future<>();
      waiter.add_done_callback([watched](asyncio::Future<>&) {});
      asyncio::future_add_to_awaited_by(f, waiter);
      waiter = loop.create_future<>();  // the link's reference keeps the first waiter
      EXPECT_FALSE(alive.expired());
    }  // f goes, and its link with it: the first waiter and its callback go too
    EXPECT_TRUE(alive.expired());
  });
}

// Tasks that await each other (here through links, as a real cycle of awaits never ends): the node
// met again is marked, not followed.
TEST_F(CallGraph, ACycleIsMarkedNotFollowed) {
  asyncio::run([] {
    asyncio::Event go;
    auto a = asyncio::create_task([&] { go.wait(); }, "a");
    auto b = asyncio::create_task([&] { go.wait(); }, "b");
    asyncio::sleep(0);
    asyncio::future_add_to_awaited_by(a, b);
    asyncio::future_add_to_awaited_by(b, a);
    auto graph = asyncio::capture_call_graph(a);
    EXPECT_EQ(names(graph), "a[b[a(cycle)]]");
    const std::string text = asyncio::format_call_graph(graph);
    EXPECT_NE(text.find("        * Task(name='a', id=" + hex(a.state()) +
                        ")\n          + Awaited by: ... (a cycle: see above)"),
              std::string::npos)
        << text;
    asyncio::future_discard_from_awaited_by(a, b);
    asyncio::future_discard_from_awaited_by(b, a);
    go.set();
    asyncio::gather(a, b);
  });
}

// A future thousands of tasks await lists each once, in the order they began to await, the repeats
// (a link to a task that awaits it anyway) dropped past the first few too.
TEST_F(CallGraph, AFutureManyTasksAwaitListsEachOnce) {
  constexpr int waiters = 2000;
  asyncio::run([] {
    auto gate = asyncio::get_running_loop().create_future<>();
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < waiters; ++i) {
      tasks.push_back(asyncio::create_task([gate]() mutable { asyncio::await(gate); }, "w" + std::to_string(i)));
    }
    asyncio::sleep(0);
    asyncio::future_add_to_awaited_by(gate, tasks[3]);
    asyncio::future_add_to_awaited_by(gate, tasks[waiters - 1]);
    auto graph = asyncio::capture_call_graph(gate);
    ASSERT_EQ(graph.awaited_by.size(), static_cast<std::size_t>(waiters));
    for (int i = 0; i < waiters; ++i) {
      ASSERT_EQ(graph.awaited_by[static_cast<std::size_t>(i)].task.get_name(), "w" + std::to_string(i));
    }
    gate.set_result();
    asyncio::gather(tasks);
  });
}

// A chain deeper than call_graph_depth_limit is cut there, without overflowing the asking task's
// stack (the graph is built and printed without recursion).
TEST_F(CallGraph, ADeepChainIsCutAtTheLimit) {
  constexpr std::size_t chain = asyncio::call_graph_depth_limit + 40;
  asyncio::run([] {
    asyncio::Event go;
    std::vector<asyncio::Task<void>> tasks;
    tasks.push_back(asyncio::create_task([&] { go.wait(); }, "t0"));
    for (std::size_t i = 1; i < chain; ++i) {
      tasks.push_back(asyncio::create_task([prev = tasks.back()] { asyncio::await(prev); }, "t" + std::to_string(i)));
    }
    asyncio::sleep(0);
    auto graph = asyncio::capture_call_graph(tasks.front());
    std::size_t depth = 0;
    const asyncio::FutureCallGraph* node = &graph;
    while (!node->awaited_by.empty()) {
      ASSERT_EQ(node->awaited_by.size(), 1u);
      node = &node->awaited_by.front();
      ++depth;
    }
    EXPECT_EQ(depth, asyncio::call_graph_depth_limit);
    EXPECT_TRUE(node->cut);
    EXPECT_EQ(node->task.get_name(), "t" + std::to_string(asyncio::call_graph_depth_limit));
    const std::string text = asyncio::format_call_graph(graph);
    EXPECT_NE(text.find("+ Awaited by: ... (cut: deeper than 256 levels)"), std::string::npos);
    go.set();
    asyncio::await(tasks.back());
  });
}

// gather() left early by a failure: the child still running is no longer awaited by the task that
// was in gather() (its callbacks stay, to mark later failures seen, but the wait is over).
TEST_F(CallGraph, GatherLeftEarlyNoLongerAwaits) {
  asyncio::run([] {
    asyncio::current_task().set_name("main");
    asyncio::Event go;
    std::string inside;
    auto slow = asyncio::create_task(
        [&] {
          asyncio::sleep(0);
          inside = names(*asyncio::capture_call_graph());
          go.wait();
        },
        "slow");
    auto failing = asyncio::create_task(
        [] {
          asyncio::sleep(0);
          asyncio::sleep(0);
          throw std::runtime_error("boom");
        },
        "failing");
    EXPECT_THROW(asyncio::gather(failing, slow), std::runtime_error);
    EXPECT_EQ(inside, "slow[main[]]");
    EXPECT_EQ(names(asyncio::capture_call_graph(slow)), "slow[]");
    go.set();
    asyncio::await(slow);
  });
}

// wait() that timed out, and the same for wait_for(): the tasks left pending are awaited by nobody.
TEST_F(CallGraph, AWaitThatTimedOutNoLongerAwaits) {
  asyncio::run(
      [] {
        asyncio::current_task().set_name("main");
        asyncio::Event go;
        auto pending = asyncio::create_task([&] { go.wait(); }, "pending");
        auto probe = asyncio::create_task(
            [&] {
              asyncio::sleep(0.5);
              return names(asyncio::capture_call_graph(pending));
            },
            "probe");
        auto [done, still] = asyncio::wait(std::vector{pending}, 1.0);
        EXPECT_EQ(still.size(), 1u);
        EXPECT_EQ(asyncio::await(probe), "pending[main[]]");
        EXPECT_EQ(names(asyncio::capture_call_graph(pending)), "pending[]");
        go.set();
        asyncio::await(pending);
      },
      asyncio_test::virtual_time());
}

// shield(): the task that called it awaits the inner task while it follows it; once that task gave
// up the shield (cancelled), the inner task goes on alone, awaited by nobody (asyncio keeps the
// record until the inner task is done).
TEST_F(CallGraph, AShieldGivenUpNoLongerAwaits) {
  asyncio::run([] {
    asyncio::Event go;
    auto inner = asyncio::create_task([&] { go.wait(); }, "inner");
    auto outer = asyncio::create_task([&] { asyncio::await(asyncio::shield(inner)); }, "caller");
    asyncio::sleep(0);
    EXPECT_EQ(names(asyncio::capture_call_graph(inner)), "inner[caller[]]");
    outer.cancel();
    EXPECT_THROW(asyncio::await(outer), asyncio::CancelledError);
    EXPECT_EQ(names(asyncio::capture_call_graph(inner)), "inner[]");
    go.set();
    asyncio::await(inner);
  });
}

// A shield's record outlives nothing: its task killed by the loop's close, the inner future
// finished after it (its callbacks dropped unrun), everything is let go of (the fixture checks
// that no allocation is left).
TEST_F(CallGraph, AShieldAcrossTheLoopsCloseLeavesNothing) {
  asyncio::event_loop loop;
  auto inner = loop.create_future<int>();
  asyncio::Future<int> shielded;
  auto task = loop.create_task(
      [&] {
        shielded = asyncio::shield(inner);
        asyncio::await(shielded);
      },
      "guarded");
  asyncio_test::run_briefly(loop);
  EXPECT_EQ(names(asyncio::capture_call_graph(inner)), "F[guarded[]]");
  EXPECT_EQ(names(asyncio::capture_call_graph(shielded)), "F[guarded[]]");
  loop.close();
  inner.set_result(1);
  EXPECT_FALSE(shielded.done());
}

// A TaskGroup's task awaits each of its tasks while that one runs, beside what awaits it directly,
// and is listed once when it does both.
TEST_F(CallGraph, ATaskGroupsTaskAwaitsEachChildOnce) {
  asyncio::run([] {
    asyncio::current_task().set_name("main");
    asyncio::Event go;
    std::string seen_before, seen_while_awaited;
    asyncio::TaskGroup tg;
    auto child = tg.create_task([&] { go.wait(); }, "child");
    seen_before = names(asyncio::capture_call_graph(child));
    tg.create_task(
        [&, child] {
          asyncio::sleep(0);
          seen_while_awaited = names(asyncio::capture_call_graph(child));
          go.set();
        },
        "sibling");
    asyncio::await(child);  // main awaits it directly now, and as the group's task
    EXPECT_EQ(seen_before, "child[main[]]");
    EXPECT_EQ(seen_while_awaited, "child[main[]]");
    tg.join();
    EXPECT_EQ(names(asyncio::capture_call_graph(child)), "child[]");
  });
}

// What an async generator's body awaits is awaited by the task stepping the generator (its body
// runs in a task of its own here, in its consumer's coroutine in Python).
TEST_F(CallGraph, AnAsyncGeneratorsAwaitsAreItsConsumers) {
  asyncio::run([] {
    auto fut = asyncio::get_running_loop().create_future<int>();
    asyncio::async_generator<int> gen([fut](auto& co) mutable { co.yield(asyncio::await(fut)); });
    auto consumer = asyncio::create_task(
        [&] {
          int sum = 0;
          for (int i : asyncio::aiter(gen)) sum += i;
          return sum;
        },
        "consumer");
    asyncio::sleep(0);
    asyncio::sleep(0);
    EXPECT_EQ(names(asyncio::capture_call_graph(fut)), "F[consumer[]]");
    fut.set_result(5);
    EXPECT_EQ(asyncio::await(consumer), 5);
  });
}

// Misuse: an empty handle, a waiter of another loop, another thread; a closed loop records nothing.
TEST_F(CallGraph, MisuseIsRefused) {
  asyncio::event_loop other;
  auto foreign = other.create_future<>();
  asyncio::run([&] {
    auto fut = asyncio::get_running_loop().create_future<>();
    asyncio::Future<> empty;
    asyncio::AnyTask no_task;
    EXPECT_THROW((void)asyncio::capture_call_graph(empty), asyncio::RuntimeError);
    EXPECT_THROW((void)asyncio::capture_call_graph(no_task), asyncio::RuntimeError);
    EXPECT_THROW(asyncio::future_add_to_awaited_by(empty, fut), asyncio::RuntimeError);
    EXPECT_THROW(asyncio::future_add_to_awaited_by(fut, no_task), asyncio::RuntimeError);
    asyncio::future_discard_from_awaited_by(fut, empty);  // nothing to discard: nothing
    try {
      asyncio::future_add_to_awaited_by(fut, foreign);
      ADD_FAILURE() << "no RuntimeError";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.code(), asyncio::asyncio_errc::wrong_loop);
    }
    std::thread([&] {
      try {
        (void)asyncio::capture_call_graph(fut);
        ADD_FAILURE() << "no RuntimeError";
      } catch (const asyncio::RuntimeError& e) {
        EXPECT_EQ(e.code(), asyncio::asyncio_errc::wrong_loop);
      }
    }).join();
  });
  other.close();
  auto done = other.create_future<>();
  asyncio::future_add_to_awaited_by(foreign, done);
  EXPECT_EQ(names(asyncio::capture_call_graph(foreign)), "F[]");
}

}  // namespace call_graph_test
