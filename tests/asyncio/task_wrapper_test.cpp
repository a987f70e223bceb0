// task_wrapper_test.cpp: a task factory wrapping each task's function (task_request::wrap()), as
// a Python factory wraps the coroutine it is given (opentelemetry's asyncio instrumentation does
// so to time every task): the wrapper runs in the task and may await; the task's outcome is the
// function's unless the wrapper throws; a wrapper that never runs its body, or runs it twice;
// wrappers nested; wrap() refused after create() and for an empty function; a task cancelled
// before its first step, killed by the loop's close, or made eager; one wrapper shared by many
// tasks, and what it captured let go of.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace task_wrapper_test {

using TaskWrapper = greenlet_test::GreenletTest;
using strings = std::vector<std::string>;
using asyncio_test::TestError;

// outcome_of(task) is "result <r>", "exception <what>" or "cancelled <message>" for a done task.
std::string outcome_of(asyncio::Task<std::string>& task) {
  if (task.cancelled()) return "cancelled " + asyncio_test::cancel_message_of([&] { task.result(); });
  if (std::exception_ptr e = task.exception()) return "exception " + asyncio_test::what_of(e);
  return "result " + task.result();
}

// docs/asyncio.md's example: the wrapper logs around the function, in the task (current_task() is
// the task), awaiting before and after it while another task takes its turns between.
TEST_F(TaskWrapper, TheWrapperRunsAroundTheFunctionInTheTaskAndMayAwait) {
  auto loop = asyncio::new_event_loop();
  strings out;
  std::vector<asyncio::AnyTask> made;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name != "traced") return;
    request.wrap([&](asyncio::task_body& body) {
      EXPECT_TRUE(asyncio::current_task() == made.back());
      out.push_back("span start " + asyncio::current_task().get_name());
      asyncio::sleep(0);
      out.push_back("body called: " + std::string(body.called() ? "yes" : "no"));
      body();
      out.push_back("body called: " + std::string(body.called() ? "yes" : "no"));
      asyncio::sleep(0);
      out.push_back("span end");
    });
    made.push_back(request.create());
  });
  const std::string result = loop->run_until_complete([&] {
    auto traced = asyncio::create_task(
        [&] {
          out.push_back("function");
          return std::string("value");
        },
        "traced");
    auto other = asyncio::create_task([&] {
      for (int i = 0; i < 3; ++i) {
        out.push_back("other " + std::to_string(i));
        asyncio::sleep(0);
      }
    });
    asyncio::await(other);
    return asyncio::await(traced);
  });
  EXPECT_EQ(result, "value");
  EXPECT_EQ(out, (strings{"span start traced", "other 0", "body called: no", "function", "body called: yes", "other 1",
                          "span end", "other 2"}));
  loop->close();
}

// What the function throws goes through the wrapper, which sees it; a wrapper that catches it and
// returns does not hide it: the task ends with the function's exception all the same.
TEST_F(TaskWrapper, TheFunctionsExceptionIsTheTasksEvenIfTheWrapperSwallowsIt) {
  auto loop = asyncio::new_event_loop();
  strings seen;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name == "passes") {
      request.wrap([&](asyncio::task_body& body) {
        try {
          body();
        } catch (const TestError& e) {
          seen.push_back(std::string("passes saw ") + e.what());
          throw;
        }
      });
    } else if (request.name == "swallows") {
      request.wrap([&](asyncio::task_body& body) {
        try {
          body();
        } catch (const TestError& e) {
          seen.push_back(std::string("swallows saw ") + e.what());
        }
      });
    }
  });
  loop->run_until_complete([&] {
    auto passes = asyncio::create_task([]() -> std::string { throw TestError("first"); }, "passes");
    auto swallows = asyncio::create_task([]() -> std::string { throw TestError("second"); }, "swallows");
    asyncio::wait(std::vector<asyncio::Task<std::string>>{passes, swallows});
    EXPECT_EQ(outcome_of(passes), "exception first");
    EXPECT_EQ(outcome_of(swallows), "exception second");
  });
  EXPECT_EQ(seen, (strings{"passes saw first", "swallows saw second"}));
  loop->close();
}

// An exception the wrapper throws is the task's, in place of the function's result or exception
// (a wrapper translating errors).
TEST_F(TaskWrapper, AnExceptionOfTheWrappersOwnIsTheTasks) {
  auto loop = asyncio::new_event_loop();
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name != "fails" && request.name != "succeeds") return;
    request.wrap([](asyncio::task_body& body) {
      try {
        body();
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("translated: ") + e.what());
      }
      throw TestError("after a result");
    });
  });
  loop->run_until_complete([&] {
    auto fails = asyncio::create_task([]() -> std::string { throw TestError("boom"); }, "fails");
    auto succeeds = asyncio::create_task([] { return std::string("dropped"); }, "succeeds");
    asyncio::wait(std::vector<asyncio::Task<std::string>>{fails, succeeds});
    EXPECT_EQ(outcome_of(fails), "exception translated: boom");
    EXPECT_EQ(outcome_of(succeeds), "exception after a result");
  });
  loop->close();
}

// A wrapper that returns without running its body fails the task with RuntimeError, and the
// function, never run, is destroyed with what it captured.
TEST_F(TaskWrapper, AWrapperThatNeverRunsItsBodyFailsTheTask) {
  auto loop = asyncio::new_event_loop();
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name == "skipped") request.wrap([](asyncio::task_body&) {});
  });
  auto captured = std::make_shared<int>(7);
  bool ran = false;
  loop->run_until_complete([&] {
    auto task = asyncio::create_task(
        [&ran, captured] {
          ran = true;
          return std::to_string(*captured);
        },
        "skipped");
    asyncio::wait(std::vector<asyncio::Task<std::string>>{task});
    EXPECT_EQ(captured.use_count(), 1);  // the function is gone, though the task lives on
    EXPECT_TRUE(asyncio_test::what_of(task.exception()).find("returned without calling its task_body") !=
                std::string::npos)
        << asyncio_test::what_of(task.exception());
    try {
      std::rethrow_exception(task.exception());
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.code(), asyncio::asyncio_errc::invalid_state);
    }
  });
  EXPECT_FALSE(ran);
  loop->close();
}

// The body runs once: a second call throws RuntimeError, which the wrapper may catch; the task
// keeps the first call's result.
TEST_F(TaskWrapper, TheBodyRunsOnce) {
  auto loop = asyncio::new_event_loop();
  std::string second_call;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    request.wrap([&](asyncio::task_body& body) {
      body();
      try {
        body();
      } catch (const asyncio::RuntimeError& e) {
        EXPECT_EQ(e.code(), asyncio::asyncio_errc::invalid_state);
        second_call = e.what();
      }
    });
  });
  int calls = 0;
  const int result = loop->run_until_complete([&] { return ++calls; });
  EXPECT_EQ(result, 1);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(second_call.find("ran already") != std::string::npos) << second_call;
  loop->close();
}

// A second wrap() wraps the first: the later wrapper runs outermost, as decorators applied in
// turn; one wrapper swallowing what the inner one throws does not hide it.
TEST_F(TaskWrapper, WrappersNestTheLaterOutermost) {
  auto loop = asyncio::new_event_loop();
  strings out;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    request.wrap([&](asyncio::task_body& body) {
      out.push_back("inner before");
      body();
      out.push_back("inner after");
    });
    request.wrap([&](asyncio::task_body& body) {
      out.push_back("outer before");
      try {
        body();
        out.push_back("outer after");
      } catch (const TestError& e) {
        out.push_back(std::string("outer swallowed ") + e.what());
      }
    });
  });
  loop->run_until_complete([&] {
    auto fine = asyncio::create_task([&] {
      out.push_back("function");
      return std::string("ok");
    });
    EXPECT_EQ(asyncio::await(fine), "ok");
    auto failing = asyncio::create_task([&]() -> std::string {
      out.push_back("failing function");
      throw TestError("deep");
    });
    asyncio::wait(std::vector<asyncio::Task<std::string>>{failing});
    EXPECT_EQ(outcome_of(failing), "exception deep");
  });
  EXPECT_EQ(out, (strings{// the main task, through both wrappers
                          "outer before", "inner before",
                          // fine
                          "outer before", "inner before", "function", "inner after", "outer after",
                          // failing: the inner wrapper's "after" is skipped by the exception
                          "outer before", "inner before", "failing function", "outer swallowed deep",
                          // the main task's end
                          "inner after", "outer after"}));
  loop->close();
}

// wrap() after create() is refused (the task is made, its function no longer wrappable), and so
// is an empty function; the request's task is unaffected by either.
TEST_F(TaskWrapper, WrapIsRefusedAfterCreateAndForAnEmptyFunction) {
  auto loop = asyncio::new_event_loop();
  std::vector<std::string> refusals;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    try {
      request.wrap(asyncio::task_wrapper());
    } catch (const greenlet::error& e) {
      EXPECT_EQ(e.code(), greenlet::errc::bad_arguments);
      refusals.push_back(e.what());
    }
    try {
      request.wrap(std::shared_ptr<const asyncio::task_wrapper>());
    } catch (const greenlet::error& e) {
      refusals.push_back(e.what());
    }
    request.create();
    try {
      request.wrap([](asyncio::task_body& body) { body(); });
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.code(), asyncio::asyncio_errc::invalid_state);
      refusals.push_back(e.what());
    }
  });
  EXPECT_EQ(loop->run_until_complete([] { return 5; }), 5);
  ASSERT_EQ(refusals.size(), 3U);
  EXPECT_TRUE(refusals[0].find("empty") != std::string::npos) << refusals[0];
  EXPECT_TRUE(refusals[1].find("empty") != std::string::npos) << refusals[1];
  EXPECT_TRUE(refusals[2].find("before create()") != std::string::npos) << refusals[2];
  loop->close();
}

// A task cancelled before its first step runs neither its wrapper nor its function (asyncio's
// wrapper coroutine never starts either), and what the wrapper captured is let go of then.
TEST_F(TaskWrapper, ATaskCancelledBeforeItsFirstStepRunsNeither) {
  auto loop = asyncio::new_event_loop();
  auto wrapper_state = std::make_shared<int>(0);
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name != "doomed") return;
    request.wrap([wrapper_state](asyncio::task_body& body) {
      ++*wrapper_state;
      body();
    });
  });
  bool ran = false;
  loop->run_until_complete([&] {
    auto task = asyncio::create_task(
        [&] {
          ran = true;
          return std::string("never");
        },
        "doomed");
    EXPECT_EQ(wrapper_state.use_count(), 2);
    task.cancel("early");
    asyncio::wait(std::vector<asyncio::Task<std::string>>{task});
    EXPECT_EQ(outcome_of(task), "cancelled early");
    EXPECT_EQ(wrapper_state.use_count(), 1);  // the task lives on; its wrapper is gone
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(*wrapper_state, 0);
  loop->close();
}

// A wrapped task the loop never ran: closing the loop lets go of its wrapper at once, while the
// task's handle lives on; neither the wrapper nor the function ran.
TEST_F(TaskWrapper, ClosingTheLoopLetsGoOfAnUnstartedTasksWrapper) {
  auto loop = asyncio::new_event_loop();
  auto wrapper_state = std::make_shared<int>(0);
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    request.wrap([wrapper_state](asyncio::task_body& body) {
      ++*wrapper_state;
      body();
    });
  });
  bool ran = false;
  asyncio::Task<void> task = loop->create_task([&] { ran = true; });
  EXPECT_EQ(wrapper_state.use_count(), 2);
  loop->close();
  EXPECT_EQ(wrapper_state.use_count(), 1);
  EXPECT_FALSE(task.done());
  EXPECT_FALSE(ran);
  EXPECT_EQ(*wrapper_state, 0);
}

// A cancellation while the function awaits goes through the wrapper as CancelledError, which the
// wrapper sees; the task is cancelled even if the wrapper swallows it.
TEST_F(TaskWrapper, ACancellationInsideTheBodyGoesThroughTheWrapper) {
  auto loop = asyncio::new_event_loop();
  strings out;
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name != "worker") return;
    request.wrap([&](asyncio::task_body& body) {
      try {
        body();
      } catch (const asyncio::CancelledError& e) {
        out.push_back("wrapper saw the cancel: " + e.message());
      }
    });
  });
  loop->run_until_complete([&] {
    asyncio::Event never;
    auto task = asyncio::create_task(
        [&] {
          never.wait();
          return std::string("unreached");
        },
        "worker");
    asyncio::sleep(0);
    task.cancel("stop");
    asyncio::wait(std::vector<asyncio::Task<std::string>>{task});
    EXPECT_EQ(outcome_of(task), "cancelled stop");
  });
  EXPECT_EQ(out, (strings{"wrapper saw the cancel: stop"}));
  loop->close();
}

// Closing the loop with a wrapped task suspended inside its function unwinds the wrapper's frames
// too: its destructors run, and it sees the GreenletExit pass.
TEST_F(TaskWrapper, ClosingTheLoopUnwindsTheWrapper) {
  auto loop = asyncio::new_event_loop();
  strings out;
  struct on_unwind {
    strings& out;
    ~on_unwind() { out.push_back("wrapper's destructor"); }
  };
  loop->set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name != "stuck") return;
    request.wrap([&](asyncio::task_body& body) {
      on_unwind guard{out};
      try {
        body();
      } catch (const greenlet::GreenletExit&) {
        out.push_back("wrapper saw GreenletExit");
        throw;
      }
    });
  });
  asyncio::Event never;
  loop->run_until_complete([&] {
    asyncio::create_task([&] { never.wait(); }, "stuck");
    asyncio::sleep(0);
  });
  EXPECT_TRUE(out.empty());
  loop->close();
  EXPECT_EQ(out, (strings{"wrapper saw GreenletExit", "wrapper's destructor"}));
}

// With an eager factory the wrapper runs inside create_task(), as the function's first step does.
TEST_F(TaskWrapper, AnEagerTaskRunsItsWrapperInsideCreateTask) {
  auto loop = asyncio::new_event_loop();
  strings out;
  loop->set_task_factory(asyncio::create_eager_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
    request.wrap([&](asyncio::task_body& body) {
      out.push_back("wrapper");
      body();
    });
  }));
  loop->run_until_complete([&] {
    out.clear();  // the main task's own wrapper ran on the loop's first iteration
    auto task = asyncio::create_task([&] {
      out.push_back("function");
      return std::string("eager");
    });
    out.push_back("create_task returned, task " + std::string(task.done() ? "done" : "pending"));
    EXPECT_EQ(asyncio::await(task), "eager");
  });
  EXPECT_EQ(out, (strings{"wrapper", "function", "create_task returned, task done"}));
  loop->close();
}

// One wrapper shared by every task (the shared_ptr form) counts and times them all, tasks made by
// gather() and a task group included; once the loop is done with them nothing holds it but us.
TEST_F(TaskWrapper, OneSharedWrapperServesEveryTask) {
  auto loop = asyncio::new_event_loop();
  int started = 0;
  int finished = 0;
  auto counting = std::make_shared<const asyncio::task_wrapper>([&](asyncio::task_body& body) {
    ++started;
    body();
    ++finished;
  });
  loop->set_task_factory([counting](asyncio::event_loop&, asyncio::task_request& request) { request.wrap(counting); });
  const int total = loop->run_until_complete([&] {
    auto [a, b] = asyncio::gather([] { return 1; }, [] { return 2; });
    int c = 0;
    asyncio::task_group([&](asyncio::TaskGroup& group) {
      for (int i = 0; i < 3; ++i) group.create_task([&c] { ++c; });
    });
    EXPECT_EQ(started, 6);  // main, two gathered, three in the group
    EXPECT_EQ(finished, 5);
    return a + b + c;
  });
  EXPECT_EQ(total, 6);
  EXPECT_EQ(finished, 6);
  loop->close();
  EXPECT_EQ(counting.use_count(), 2);  // ours and the factory's capture
  loop->set_task_factory(nullptr);
  EXPECT_EQ(counting.use_count(), 1);
}

}  // namespace task_wrapper_test
