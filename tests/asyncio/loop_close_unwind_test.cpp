// loop_close_unwind_test.cpp: when the loop lets go of an unfinished task
// (close(), asyncio::run()'s end, a task that stranded itself), the task's
// stack unwinds then and there, so its destructors run before the caller goes
// on (docs/asyncio.md: "close() kills (unwinds) what is still unfinished"),
// even when something refers back to the task's greenlet: a generator or a
// child greenlet made in the task has it as its parent, and dropping the
// loop's handle left such a task suspended. It was unwound at thread exit
// instead, into the task's state, freed by then if its Task handle had gone
// (heap-use-after-free). Each scenario runs on a thread of its own, so that
// the thread's exit, where the stale unwinding happened, is part of the test.
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <greenlet/generator.hpp>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using LoopCloseUnwind = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// Note adds its line to the log when destroyed: it says a stack unwound.
struct Note {
  Strings& log;
  std::string line;
  ~Note() { log.push_back(line); }
};

template <class F>
void on_own_thread(F&& scenario) {
  std::thread thread(std::forward<F>(scenario));
  thread.join();
}

// what_holds() is what a task keeps on its stack while it sleeps.
enum class what_holds { unstarted_generator, suspended_generator, suspended_child };

// hold_and_sleep(log, what) makes `what` on the calling task's stack and
// sleeps for longer than any test lasts.
void hold_and_sleep(Strings& log, what_holds what) {
  Note task{log, "task unwound"};
  switch (what) {
    case what_holds::unstarted_generator: {
      greenlet::generator<int> gen([] {});
      asyncio::sleep(100);
      break;
    }
    case what_holds::suspended_generator: {
      greenlet::generator<int> gen([&log](greenlet::generator<int>::context& co) {
        Note body{log, "generator unwound"};
        for (int i = 0;; ++i) co.yield(i);
      });
      gen.next();
      asyncio::sleep(100);
      break;
    }
    case what_holds::suspended_child: {
      greenlet::greenlet child([&log] {
        Note body{log, "child unwound"};
        greenlet::getcurrent().parent().switch_();
      });
      child.switch_();
      asyncio::sleep(100);
      break;
    }
  }
}

// close_with_pending(what, keep_task) runs another task to completion while
// a task holds `what` and sleeps, closes the loop, then drops the Task
// handle (kept through close() or dropped at once) and lets the thread end.
Strings close_with_pending(what_holds what, bool keep_task) {
  Strings log;
  on_own_thread([&] {
    asyncio_test::error_log errors;
    auto loop = asyncio::new_event_loop();
    errors.attach(*loop);
    asyncio::Task<> task = loop->create_task([&log, what] { hold_and_sleep(log, what); });
    if (!keep_task) task = asyncio::Task<>();
    loop->run_until_complete(loop->create_task([] { asyncio::sleep(0); }));
    loop->close();
    log.push_back("closed");
    if (keep_task) {
      EXPECT_TRUE(task.cancelled()) << "close() left the task pending";
    }
    EXPECT_EQ(errors.messages, (Strings{"Task was destroyed but it is pending!"}));
  });
  return log;
}

TEST_F(LoopCloseUnwind, UnstartedGeneratorOnTheTaskStack) {
  EXPECT_EQ(close_with_pending(what_holds::unstarted_generator, true), (Strings{"task unwound", "closed"}));
}

TEST_F(LoopCloseUnwind, UnstartedGeneratorOnTheTaskStackTaskHandleDroppedFirst) {
  EXPECT_EQ(close_with_pending(what_holds::unstarted_generator, false), (Strings{"task unwound", "closed"}));
}

TEST_F(LoopCloseUnwind, SuspendedGeneratorOnTheTaskStack) {
  EXPECT_EQ(close_with_pending(what_holds::suspended_generator, true),
            (Strings{"generator unwound", "task unwound", "closed"}));
}

TEST_F(LoopCloseUnwind, SuspendedGeneratorOnTheTaskStackTaskHandleDroppedFirst) {
  EXPECT_EQ(close_with_pending(what_holds::suspended_generator, false),
            (Strings{"generator unwound", "task unwound", "closed"}));
}

TEST_F(LoopCloseUnwind, SuspendedChildGreenletOnTheTaskStack) {
  EXPECT_EQ(close_with_pending(what_holds::suspended_child, true),
            (Strings{"child unwound", "task unwound", "closed"}));
}

TEST_F(LoopCloseUnwind, SuspendedChildGreenletOnTheTaskStackTaskHandleDroppedFirst) {
  EXPECT_EQ(close_with_pending(what_holds::suspended_child, false),
            (Strings{"child unwound", "task unwound", "closed"}));
}

// A generator made and started in the task but kept outside it: nothing on
// the task's stack, but the generator's body still has the task's greenlet
// as its parent. The task unwinds at close(); the generator outlives it and
// still works.
TEST_F(LoopCloseUnwind, GeneratorOutsideTheTaskParentedToIt) {
  Strings log;
  on_own_thread([&] {
    greenlet::generator<int> kept;
    {
      asyncio_test::error_log errors;
      auto loop = asyncio::new_event_loop();
      errors.attach(*loop);
      auto task = loop->create_task([&] {
        Note note{log, "task unwound"};
        kept = greenlet::generator<int>([&log](greenlet::generator<int>::context& co) {
          Note body{log, "generator unwound"};
          for (int i = 0;; ++i) co.yield(i);
        });
        kept.next();
        asyncio::sleep(100);
      });
      loop->run_until_complete(loop->create_task([] { asyncio::sleep(0); }));
      loop->close();
      log.push_back("closed");
      EXPECT_TRUE(task.cancelled());
    }
    EXPECT_EQ(kept.next(), 1);
    kept = greenlet::generator<int>();
    log.push_back("generator dropped");
  });
  EXPECT_EQ(log, (Strings{"task unwound", "closed", "generator unwound", "generator dropped"}));
}

// A task that strands itself (switches to the loop's greenlet by hand) fails
// and unwinds before run_until_complete() returns, a generator on its stack
// or not.
TEST_F(LoopCloseUnwind, StrandedTaskWithAGeneratorOnItsStack) {
  Strings log;
  on_own_thread([&] {
    auto loop = asyncio::new_event_loop();
    auto task = loop->create_task([&] {
      Note note{log, "task unwound"};
      greenlet::generator<int> gen([] {});
      greenlet::getcurrent().parent().switch_();  // by hand: stranded
      log.push_back("resumed?");
    });
    try {
      loop->run_until_complete(task);
      ADD_FAILURE() << "no RuntimeError";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::stranded_task) << e.what();
    }
    log.push_back("returned");
    task = asyncio::Task<>();
    loop->close();
  });
  EXPECT_EQ(log, (Strings{"task unwound", "returned"}));
}

// asyncio::run()'s end: a task that ignores its cancellation and then waits
// for ever is still unwound before run() returns, by the close() it ends with.
TEST_F(LoopCloseUnwind, RunEndUnwindsATaskThatIgnoresCancellation) {
  Strings log;
  Strings messages;
  on_own_thread([&] {
    asyncio::run([&] {
      asyncio::get_running_loop().set_exception_handler(
          [&](asyncio::event_loop*, const asyncio::exception_context& c) { messages.push_back(c.message); });
      asyncio::Future<> never = asyncio::get_running_loop().create_future();
      asyncio::create_task([&log, never]() mutable {
        Note note{log, "task unwound"};
        greenlet::generator<int> gen([] {});
        try {
          asyncio::sleep(100);
        } catch (const asyncio::CancelledError&) {
          log.push_back("cancel ignored");
          asyncio::await(never);
        }
      });
      asyncio::sleep(0);
    });
    log.push_back("run returned");
  });
  EXPECT_EQ(log, (Strings{"cancel ignored", "task unwound", "run returned"}));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], "error while cancelling the remaining tasks of asyncio::run()");  // the deadlock
  EXPECT_EQ(messages[1], "Task was destroyed but it is pending!");
}

// A task that catches GreenletExit and switches away cannot be unwound by
// close(): that is reported, and the task's state is kept, though its Task
// handle goes, until the stack finally unwinds (here at thread exit).
TEST_F(LoopCloseUnwind, TaskRefusingToDieKeepsItsStateUntilItUnwinds) {
  Strings log;
  on_own_thread([&] {
    asyncio_test::error_log errors;
    auto loop = asyncio::new_event_loop();
    errors.attach(*loop);
    auto task = loop->create_task([&log] {
      Note note{log, "task unwound"};
      try {
        asyncio::sleep(100);
      } catch (const greenlet::GreenletExit&) {
        log.push_back("refused");
        greenlet::getcurrent().parent().switch_();  // back to close(); killed again at thread exit
        throw;
      }
    });
    loop->run_until_complete(loop->create_task([] { asyncio::sleep(0); }));
    loop->close();
    log.push_back("closed");
    EXPECT_FALSE(task.done());
    ASSERT_EQ(errors.messages.size(), 2u);
    EXPECT_EQ(errors.messages[0], "Task was destroyed but it is pending!");
    EXPECT_EQ(errors.messages[1].rfind("Task's stack could not be unwound", 0), 0u) << errors.messages[1];
    EXPECT_NE(errors.sources[1].find(task.get_name()), std::string::npos) << errors.sources[1];
    loop->set_exception_handler(nullptr);  // the loop outlives `errors`: the task's state refers to it
  });
  EXPECT_EQ(log, (Strings{"refused", "closed", "task unwound"}));
}

}  // namespace
