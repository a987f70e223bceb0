// callback_context_test.cpp: the context variables loop callbacks see, after
// CPython's test_context.py / test_events.py context cases: call_soon,
// call_later, call_at, call_soon_threadsafe, add_done_callback and
// add_reader run their callback in a copy of the context current when it was
// scheduled (or of the one given), and what a callback sets stays there.
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;

namespace {

using CallbackContext = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// test_context.py test_context_run_in_callback / asyncio's Handle: each
// callback sees the values current when it was scheduled, not those of
// later set()s or of the code that runs the loop, and what it sets is seen
// neither by the next callback nor after the loop (this leaked into the
// caller of asyncio::run).
TEST_F(CallbackContext, CallbacksRunInTheContextCapturedWhenScheduled) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  auto caller = var.set("caller");
  Strings seen;
  auto callback = [&](const char* tag) {
    return [&seen, &var, tag] {
      seen.push_back(std::string(tag) + " sees " + var.get());
      var.set(std::string(tag) + " set");
    };
  };
  asyncio::run(
      [&] {
        auto& loop = asyncio::get_running_loop();
        var.set("sched");
        loop.call_soon(callback("soon"));
        loop.call_soon(callback("soon2"));  // not the first one's set()
        loop.call_later(0.01, callback("later"));
        loop.call_at(loop.time() + 0.02, callback("at"));
        var.set("sched2");
        asyncio::sleep(0.05);
        seen.push_back("task sees " + var.get());
      },
      virtual_time());
  EXPECT_EQ(seen,
            (Strings{"soon sees sched", "soon2 sees sched", "later sees sched", "at sees sched", "task sees sched2"}));
  EXPECT_EQ(var.get(), "caller");
  var.reset(caller);
}

// A callback scheduled where no variable is set runs in an empty context,
// even if the code running the loop has values.
TEST_F(CallbackContext, CallbackScheduledWithoutValuesSeesNone) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  Strings seen;
  asyncio::event_loop loop(virtual_time());
  loop.call_soon([&] { seen.push_back(var.get()); });  // scheduled with nothing set
  auto token = var.set("runner");
  loop.call_soon([&] { seen.push_back(var.get()); });  // scheduled with "runner"
  asyncio_test::run_briefly(loop);
  EXPECT_EQ(seen, (Strings{"dflt", "runner"}));
  EXPECT_EQ(var.get(), "runner");
  var.reset(token);
  loop.close();
}

// call_soon(fn, ctx) and friends (asyncio's context=) run fn in a copy of
// ctx: its values, not the caller's. What fn sets stays in the copy (ctx is
// a value here; asyncio would write into ctx).
TEST_F(CallbackContext, ExplicitContextIsCopied) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  Strings seen;
  asyncio::run(
      [&] {
        auto& loop = asyncio::get_running_loop();
        greenlet::context ctx = greenlet::copy_context();
        ctx.run([&] { var.set("ctxval"); });
        var.set("task");
        auto record = [&](const char* tag) {
          return [&seen, &var, tag] {
            seen.push_back(std::string(tag) + " " + var.get());
            var.set("cbset");
          };
        };
        loop.call_soon(record("soon"), ctx);
        loop.call_later(0.01, record("later"), ctx);
        loop.call_at(loop.time() + 0.02, record("at"), ctx);
        auto f = loop.create_future<int>();
        f.add_done_callback([&](asyncio::Future<int>&) { seen.push_back("done " + var.get()); }, ctx);
        f.set_result(1);
        asyncio::sleep(0.05);
        seen.push_back("ctx " + ctx.run([&] { return var.get(); }));
        seen.push_back("task " + var.get());
      },
      virtual_time());
  EXPECT_EQ(seen, (Strings{"soon ctxval", "done ctxval", "later ctxval", "at ctxval", "ctx ctxval", "task task"}));
}

// Future.add_done_callback captures the context at registration (asyncio's
// copy_context() in add_done_callback), whether the future is pending or
// already done, not the one current when the future completes.
TEST_F(CallbackContext, DoneCallbacksRunInTheRegistrantsContext) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  Strings seen;
  asyncio::run(
      [&] {
        auto& loop = asyncio::get_running_loop();
        auto f = loop.create_future<int>();
        var.set("cbctx");
        f.add_done_callback([&](asyncio::Future<int>&) {
          seen.push_back("pending " + var.get());
          var.set("cbset");
        });
        var.set("later");
        auto setter = asyncio::create_task([&] { f.set_result(1); });
        asyncio::await(setter);
        asyncio::sleep(0);
        var.set("on done");
        f.add_done_callback([&](asyncio::Future<int>&) { seen.push_back("done " + var.get()); });
        var.set("after");
        asyncio::sleep(0);
        auto t = asyncio::create_task([] { return 1; });
        var.set("task cb");
        t.add_done_callback([&](asyncio::Future<int>&) { seen.push_back("task " + var.get()); });
        asyncio::await(t);
        asyncio::sleep(0);
        seen.push_back("main " + var.get());
      },
      virtual_time());
  EXPECT_EQ(seen, (Strings{"pending cbctx", "done on done", "task task cb", "main task cb"}));
}

// call_soon_threadsafe() captures the calling thread's context: a thread
// that never used greenlets has none, and the loop thread's values do not
// show through.
TEST_F(CallbackContext, ThreadsafeCallbacksRunInTheCallersContext) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  Strings seen;
  asyncio::event_loop loop(virtual_time());
  auto token = var.set("loop thread");
  auto f = loop.create_future<void>();
  std::thread worker;
  {
    asyncio::event_loop::external_work_guard guard(loop);
    loop.call_soon_threadsafe([&] { seen.push_back("own thread " + var.get()); });
    worker = std::thread([&] {
      loop.call_soon_threadsafe([&] {
        seen.push_back("other thread " + var.get());
        f.set_result();
      });
    });
    loop.run_until_complete(f);
  }
  worker.join();
  EXPECT_EQ(seen, (Strings{"own thread loop thread", "other thread dflt"}));
  var.reset(token);
  loop.close();
}

// Each callback is a context of its own: a token made in one is refused by
// reset() in the next (asyncio's ValueError), and nothing is written.
TEST_F(CallbackContext, TokenOfAnotherCallbackIsRefused) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  std::optional<asyncio::context_var<std::string>::token> token;
  Strings seen;
  asyncio::event_loop loop(virtual_time());
  loop.call_soon([&] { token = var.set("first"); });
  loop.call_soon([&] {
    try {
      var.reset(*token);
      seen.push_back("accepted");
    } catch (const greenlet::error& e) {
      EXPECT_EQ(e.code(), greenlet::errc::token_other_context);
      seen.push_back("refused " + var.get());
    }
  });
  asyncio_test::run_briefly(loop);
  EXPECT_EQ(seen, (Strings{"refused dflt"}));
  loop.close();
}

// add_reader(): the callback runs each time in one copy of the context of
// its registration (asyncio's Handle): it sees the registrant's values and
// its own earlier sets, and the task does not see them.
TEST_F(CallbackContext, ReaderKeepsOneContextAcrossCalls) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  Strings seen;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  asyncio::run(
      [&] {
        auto& loop = asyncio::get_running_loop();
        auto twice = loop.create_future<void>();
        var.set("registrant");
        int calls = 0;
        loop.add_reader(fds[0], [&] {
          char c;
          EXPECT_EQ(::read(fds[0], &c, 1), 1);
          seen.push_back(var.get());
          var.set("reader " + std::to_string(++calls));
          if (calls == 2) twice.set_result();
        });
        var.set("task");
        EXPECT_EQ(::write(fds[1], "ab", 2), 2);
        asyncio::await(twice);
        loop.remove_reader(fds[0]);
        seen.push_back(var.get());
      },
      virtual_time());
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(seen, (Strings{"registrant", "reader 1", "task"}));
}

}  // namespace
