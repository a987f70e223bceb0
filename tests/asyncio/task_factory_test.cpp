// task_factory_test.cpp: custom task factories (event_loop::set_task_factory(fn), asyncio's
// loop.set_task_factory(factory)) beyond CPython's tests (cpython_base_events_port_test.cpp,
// cpython_tasks_port_b_test.cpp): every call that makes a task goes through the factory, and an
// async generator's body does not; what the factory may change (name, context, eager_start) and
// when the task then runs; the task it made is the one create_task() returns, with its result
// type; failures before and after create(); create_eager_task_factory().
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace task_factory_test {

using TaskFactory = greenlet_test::GreenletTest;
using strings = std::vector<std::string>;

// A factory that leaves create() to create_task() and only records each request's name.
TEST_F(TaskFactory, EveryCallThatMakesATaskGoesThroughTheFactory) {
  auto loop = asyncio::new_event_loop();
  strings requested;
  loop->set_task_factory([&](asyncio::event_loop& factory_loop, asyncio::task_request& request) {
    EXPECT_EQ(&factory_loop, loop.get());
    EXPECT_FALSE(request.created());
    requested.push_back(request.name.empty() ? "(unnamed)" : request.name);
  });
  const int total = loop->run_until_complete([&] {
    auto a = asyncio::create_task([] { return 1; }, "create_task");
    auto b = asyncio::get_running_loop().create_task([] { return 2; }, asyncio::task_options{.name = "options"});
    auto [c, d] = asyncio::gather([] { return 3; }, [] { return 4; });
    const int e = asyncio::await([] { return 5; });
    const int f = asyncio::wait_for([] { return 6; }, 10.0);
    asyncio::Task<int> g;
    asyncio::task_group([&](asyncio::TaskGroup& group) { g = group.create_task([] { return 7; }, "group"); });
    return asyncio::await(a) + asyncio::await(b) + c + d + e + f + g.result();
  });
  EXPECT_EQ(total, 28);
  // run_until_complete(fn)'s own task comes first; gather() makes one task per function; wait_for
  // makes one; the task group's child keeps its name.
  EXPECT_EQ(requested, (strings{"(unnamed)", "create_task", "options", "(unnamed)", "(unnamed)", "(unnamed)",
                                "(unnamed)", "group"}));
  loop->close();
}

// Python's async generator body runs in its consumer's task, not a task of its own: the factory
// never sees it here either.
TEST_F(TaskFactory, AnAsyncGeneratorBodyIsNotMadeThroughTheFactory) {
  auto loop = asyncio::new_event_loop();
  int calls = 0;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request&) { ++calls; });
  strings got;
  loop->run_until_complete([&] {
    asyncio::async_generator<int> numbers([](asyncio::async_generator<int>::context& co) {
      co.yield(1);
      co.yield(2);
    });
    while (std::optional<int> v = numbers.anext()) got.push_back(std::to_string(*v));
  });
  EXPECT_EQ(got, (strings{"1", "2"}));
  EXPECT_EQ(calls, 1);  // run_until_complete's task alone
  loop->close();
}

// docs/asyncio.md's example: a factory keeping the set of live tasks, as Python's keeping a set
// with add() and add_done_callback(discard).
TEST_F(TaskFactory, AFactoryKeepsTheSetOfLiveTasks) {
  auto loop = asyncio::new_event_loop();
  std::unordered_set<asyncio::AnyTask> live;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    asyncio::AnyTask task = request.create();
    live.insert(task);
    task.add_done_callback([&](asyncio::AnyTask& t) { live.erase(t); });
  });
  loop->run_until_complete([&] {
    EXPECT_EQ(live.size(), 1U);  // this task
    // b waits on an event, not a longer timer: on a loaded machine both timers could be due at once.
    asyncio::Event release_b;
    auto a = asyncio::create_task([] { asyncio::sleep(0.001); });
    auto b = asyncio::create_task([&] { release_b.wait(); });
    EXPECT_EQ(live.size(), 3U);
    EXPECT_EQ(live.count(a), 1U);
    asyncio::await(a);
    asyncio::sleep(0);  // a's done callback
    EXPECT_EQ(live.size(), 2U);
    EXPECT_EQ(live.count(a), 0U);
    EXPECT_EQ(live.count(b), 1U);
    release_b.set();
    asyncio::await(b);
  });
  asyncio_test::run_briefly(*loop);
  EXPECT_TRUE(live.empty());
  loop->close();
}

// The task create() made is the one create_task() returns, with the function's result type; a done
// callback the factory adds runs when it ends; the name and eager_start the factory sets hold.
TEST_F(TaskFactory, TheFactoryNamesTheTaskMakesItEagerAndWatchesItEnd) {
  auto loop = asyncio::new_event_loop();
  strings out;
  std::vector<asyncio::AnyTask> made;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    request.name = "worker-" + request.name;
    request.eager_start = true;
    out.push_back("factory before create");
    asyncio::AnyTask task = request.create();
    out.push_back("factory after create, task " + std::string(task.done() ? "done" : "pending"));
    task.add_done_callback([&](asyncio::AnyTask& t) { out.push_back("done callback: " + t.get_name()); });
    made.push_back(task);
  });
  loop->run_until_complete([&] {
    out.push_back("main");
    asyncio::Task<std::string> task = asyncio::create_task(
        [&] {
          out.push_back("child first step");
          asyncio::sleep(0);
          return std::string("child result");
        },
        "child");
    out.push_back("create_task returned");
    EXPECT_TRUE(asyncio::AnyTask(task) == made.back());
    EXPECT_EQ(task.get_name(), "worker-child");
    out.push_back(asyncio::await(task));
  });
  // The main task went through the factory too, before the loop ran: not eager then (asyncio's
  // eager_start steps at once only in a running loop), and named "worker-". The factory's done
  // callback was added before the main task awaited the child, so it runs first.
  EXPECT_EQ(out,
            (strings{"factory before create", "factory after create, task pending", "main", "factory before create",
                     "child first step", "factory after create, task pending", "create_task returned",
                     "done callback: worker-child", "child result", "done callback: worker-"}));
  loop->close();
}

// A context set by the factory is the one the task runs in (asyncio's context=).
TEST_F(TaskFactory, TheFactoryChoosesTheTasksContext) {
  greenlet::context_var<std::string> request_id("request_id", std::string("none"));
  greenlet::context per_task = greenlet::copy_context();
  per_task.run([&] { request_id.set("from the factory"); });
  auto loop = asyncio::new_event_loop();
  loop->run_until_complete([&] {
    asyncio::get_running_loop().set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
      EXPECT_EQ(request.context, nullptr);
      request.context = &per_task;
    });
    auto task = asyncio::create_task([&] { return request_id.get(); });
    EXPECT_EQ(asyncio::await(task), "from the factory");
    asyncio::get_running_loop().set_task_factory(nullptr);
    EXPECT_EQ(asyncio::await([&] { return request_id.get(); }), "none");
  });
  loop->close();
}

// What create_task() was given reaches the request: name, context, eager_start.
TEST_F(TaskFactory, TheRequestCarriesCreateTasksArguments) {
  auto loop = asyncio::new_event_loop();
  greenlet::context ctx = greenlet::copy_context();
  std::vector<std::optional<bool>> eager;
  std::vector<const greenlet::context*> contexts;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    eager.push_back(request.eager_start);
    contexts.push_back(request.context);
  });
  auto a = loop->create_task([] {}, asyncio::task_options{.name = "a", .context = &ctx, .eager_start = false});
  auto b = loop->create_task([] {}, asyncio::task_options{.eager_start = true});
  auto c = loop->create_task([] {});
  EXPECT_EQ(a.get_name(), "a");
  EXPECT_EQ(eager, (std::vector<std::optional<bool>>{false, true, std::nullopt}));
  EXPECT_EQ(contexts, (std::vector<const greenlet::context*>{&ctx, nullptr, nullptr}));
  loop->run_until_complete(c);
  loop->run_until_complete(a);
  loop->run_until_complete(b);
  loop->close();
}

// A factory that throws before create(): the exception leaves create_task(), the function never
// runs and is destroyed; the loop goes on.
TEST_F(TaskFactory, AFactoryThrowingBeforeCreateMakesNoTask) {
  auto loop = asyncio::new_event_loop();
  auto alive = std::make_shared<int>(0);
  bool ran = false;
  loop->run_until_complete([&] {
    asyncio::get_running_loop().set_task_factory(
        [](asyncio::event_loop&, asyncio::task_request&) { throw std::runtime_error("no tasks today"); });
    try {
      asyncio::create_task([&ran, keep = alive] { ran = true; });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "no tasks today");
    }
    asyncio::get_running_loop().set_task_factory(nullptr);
    asyncio::sleep(0);
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(alive.use_count(), 1);
  loop->close();
}

// A factory that throws after create(): the exception leaves create_task(), and the task, made and
// scheduled, runs anyway (as the Task a Python factory made before raising).
TEST_F(TaskFactory, AFactoryThrowingAfterCreateLeavesTheTaskRunning) {
  auto loop = asyncio::new_event_loop();
  bool ran = false;
  loop->run_until_complete([&] {
    asyncio::get_running_loop().set_task_factory([](asyncio::event_loop&, asyncio::task_request& request) {
      request.create();
      throw std::runtime_error("made it, then failed");
    });
    EXPECT_THROW(asyncio::create_task([&ran] { ran = true; }), std::runtime_error);
    asyncio::get_running_loop().set_task_factory(nullptr);
    EXPECT_FALSE(ran);
    asyncio::sleep(0);
    EXPECT_TRUE(ran);
  });
  loop->close();
}

// create() a second time is refused; the first task stands.
TEST_F(TaskFactory, CreateTwiceIsRefused) {
  auto loop = asyncio::new_event_loop();
  loop->set_task_factory([](asyncio::event_loop&, asyncio::task_request& request) {
    request.create();
    try {
      request.create();
      ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.code(), asyncio::asyncio_errc::invalid_state);
      EXPECT_NE(std::string(e.what()).find("made already"), std::string::npos) << e.what();
    }
  });
  int runs = 0;
  auto task = loop->create_task([&runs] { return ++runs; });
  EXPECT_EQ(loop->run_until_complete(task), 1);
  EXPECT_EQ(runs, 1);
  loop->close();
}

// A move-only function goes through the factory and runs once, moved exactly as without it.
TEST_F(TaskFactory, AMoveOnlyFunctionIsMovedIntoTheTask) {
  auto loop = asyncio::new_event_loop();
  loop->set_task_factory([](asyncio::event_loop&, asyncio::task_request& request) { request.create(); });
  auto value = std::make_unique<int>(41);
  auto task = loop->create_task([value = std::move(value)]() mutable { return ++*value; });
  EXPECT_EQ(value, nullptr);
  EXPECT_EQ(loop->run_until_complete(task), 42);
  loop->close();
}

int forty_two_through_a_factory() { return 42; }

// A plain function (not an object: its address is no object pointer) goes through the factory too,
// and so does a const function object, copied.
TEST_F(TaskFactory, PlainFunctionsAndConstFunctionObjectsGoThroughTheFactory) {
  auto loop = asyncio::new_event_loop();
  int calls = 0;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request&) { ++calls; });
  auto from_function = loop->create_task(forty_two_through_a_factory);
  const auto kept = [text = std::string("kept")] { return text; };
  auto from_const = loop->create_task(kept);
  EXPECT_EQ(loop->run_until_complete(from_function), 42);
  EXPECT_EQ(loop->run_until_complete(from_const), "kept");
  EXPECT_EQ(kept(), "kept");  // copied, not moved from
  EXPECT_EQ(calls, 2);
  loop->close();
}

// On a closed loop create_task() refuses before the factory is called.
TEST_F(TaskFactory, AClosedLoopRefusesBeforeTheFactory) {
  auto loop = asyncio::new_event_loop();
  int calls = 0;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request&) { ++calls; });
  loop->close();
  EXPECT_THROW(loop->create_task([] {}), asyncio::RuntimeError);
  EXPECT_EQ(calls, 0);
}

// A factory may replace itself while it runs: the call under way finishes with the old one.
TEST_F(TaskFactory, AFactoryMayReplaceItself) {
  auto loop = asyncio::new_event_loop();
  strings out;
  loop->set_task_factory([&](asyncio::event_loop& l, asyncio::task_request& request) {
    l.set_task_factory(nullptr);
    request.name = "last through the factory";
    out.push_back("factory");
  });
  auto first = loop->create_task([] {});
  auto second = loop->create_task([] {});
  EXPECT_EQ(out, (strings{"factory"}));
  EXPECT_EQ(first.get_name(), "last through the factory");
  EXPECT_NE(second.get_name(), "last through the factory");
  EXPECT_TRUE(loop->get_task_factory() == nullptr);
  loop->run_until_complete(second);
  loop->close();
}

// get_task_factory() equals what was set, copies included, and nothing else.
TEST_F(TaskFactory, FactoriesCompareByIdentity) {
  auto loop = asyncio::new_event_loop();
  const asyncio::task_factory one = [](asyncio::event_loop&, asyncio::task_request&) {};
  const asyncio::task_factory other = [](asyncio::event_loop&, asyncio::task_request&) {};
  const asyncio::task_factory copy = one;
  EXPECT_TRUE(copy == one);
  EXPECT_FALSE(one == other);
  EXPECT_FALSE(one == asyncio::eager_task_factory);
  EXPECT_FALSE(one == nullptr);
  EXPECT_TRUE(static_cast<bool>(one));
  EXPECT_NE(one.custom(), nullptr);
  EXPECT_FALSE(one.eager());
  loop->set_task_factory(one);
  EXPECT_TRUE(loop->get_task_factory() == copy);
  EXPECT_FALSE(loop->get_task_factory() == other);
  loop->set_task_factory(asyncio::eager_task_factory);
  EXPECT_TRUE(loop->get_task_factory() == asyncio::eager_task_factory);
  EXPECT_EQ(loop->get_task_factory().custom(), nullptr);
  loop->close();
}

// create_eager_task_factory(fn): eager unless create_task() said otherwise, then fn as a factory.
TEST_F(TaskFactory, CreateEagerTaskFactoryMakesEagerTasksUnlessToldOtherwise) {
  auto loop = asyncio::new_event_loop();
  strings out;
  loop->run_until_complete([&] {
    asyncio::get_running_loop().set_task_factory(asyncio::create_eager_task_factory(
        [&](asyncio::event_loop&, asyncio::task_request& request) { out.push_back("factory " + request.name); }));
    auto eager = asyncio::create_task([&] { out.push_back("eager runs"); }, "eager");
    out.push_back("after eager");
    auto lazy = asyncio::create_task([&] { out.push_back("lazy runs"); },
                                     asyncio::task_options{.name = "lazy", .eager_start = false});
    out.push_back("after lazy");
    asyncio::await(eager);
    asyncio::await(lazy);
  });
  EXPECT_EQ(out, (strings{"factory eager", "eager runs", "after eager", "factory lazy", "after lazy", "lazy runs"}));
  loop->close();
}

}  // namespace task_factory_test
