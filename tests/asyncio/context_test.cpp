// context_test.cpp: context variables in tasks, after CPython's
// Lib/test/test_asyncio/test_context.py and test_tasks.py context cases.
#include <optional>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;

namespace {

using ContextTests = greenlet_test::GreenletTest;

// test_task_context_1: a task copies the context current when it is made;
// what the child sets does not leak into the parent.
TEST_F(ContextTests, test_task_context_1) {
  asyncio::context_var<int> cvar("cvar", 0);
  std::vector<int> seen;
  asyncio::run(
      [&] {
        cvar.set(1);
        auto child = asyncio::create_task([&] {
          seen.push_back(cvar.get());  // copied at creation: 1
          cvar.set(2);
          asyncio::sleep(0.01);
          seen.push_back(cvar.get());
        });
        cvar.set(3);  // after the copy: the child does not see it
        asyncio::await(child);
        seen.push_back(cvar.get());
      },
      virtual_time());
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
}

// test_context_3: many concurrent tasks each keep their own value across
// suspensions.
TEST_F(ContextTests, test_context_3_many_tasks) {
  asyncio::context_var<int> cvar("cvar", -1);
  asyncio::run(
      [&] {
        std::vector<asyncio::Task<bool>> tasks;
        for (int i = 0; i < 100; ++i) {
          tasks.push_back(asyncio::create_task([&cvar, i] {
            cvar.set(i);
            for (int k = 0; k < 5; ++k) asyncio::sleep(0.001 * (i % 7));
            return cvar.get() == i;
          }));
        }
        for (bool ok : asyncio::gather(tasks)) EXPECT_TRUE(ok);
        EXPECT_EQ(cvar.get(), -1);
      },
      virtual_time());
}

// Token reset inside a task, and a task made from a task sees its creator's value.
TEST_F(ContextTests, NestedTasksInheritTheirCreatorsContext) {
  asyncio::context_var<std::string> request_id("request_id");
  asyncio::run(
      [&] {
        auto outer = asyncio::create_task([&] {
          auto token = request_id.set("r-1");
          auto inner = asyncio::create_task([&] { return request_id.get(); });
          std::string got = asyncio::await(inner);
          request_id.reset(token);
          EXPECT_THROW(request_id.get(), greenlet::LookupError);
          return got;
        });
        EXPECT_EQ(asyncio::await(outer), "r-1");
      },
      virtual_time());
}

// A task is a context of its own: a token made in one task is refused by
// reset() in another (Python's ValueError), and accepted in its own task
// after an await.
TEST_F(ContextTests, ResetRefusesATokenOfAnotherTask) {
  asyncio::context_var<std::string> cvar("cvar", std::string("dflt"));
  asyncio::run(
      [&] {
        std::optional<asyncio::context_var<std::string>::token> token;
        auto maker = asyncio::create_task([&] {
          token = cvar.set("maker");
          asyncio::sleep(0.01);
          cvar.reset(*token);  // its own context, after an await: accepted
          return cvar.get();
        });
        asyncio::sleep(0.001);
        ASSERT_TRUE(token.has_value());
        auto other = asyncio::create_task([&] {
          try {
            cvar.reset(*token);
          } catch (const greenlet::error& e) {
            EXPECT_EQ(e.code(), greenlet::errc::token_other_context);
            return cvar.get();
          }
          return std::string("accepted");
        });
        EXPECT_EQ(asyncio::await(other), "dflt");
        EXPECT_EQ(asyncio::await(maker), "dflt");
      },
      virtual_time());
}

}  // namespace
