// context_test.cpp: per-greenlet context variables, after greenlet's
// src/greenlet/tests/test_contextvars.py.
#include <string>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using ContextVarsTest = greenlet_test::GreenletTest;

// test_minimal_set / test_context_not_propagated: a new greenlet starts
// with an empty context, and its sets stay its own.
TEST_F(ContextVarsTest, test_context_not_propagated) {
  greenlet::context_var<int> id_var("id", -1);
  auto token = id_var.set(1);
  std::vector<int> seen;
  greenlet::greenlet g([&] {
    seen.push_back(id_var.get());  // default: the new greenlet's context is empty
    id_var.set(2);
    seen.push_back(id_var.get());
    greenlet::getcurrent().parent().switch_();
    seen.push_back(id_var.get());
  });
  g.switch_();
  seen.push_back(id_var.get());  // main still sees 1
  g.switch_();
  EXPECT_EQ(seen, (std::vector<int>{-1, 2, 1, 2}));
  id_var.reset(token);  // the main greenlet's context outlives the test
}

// test_context_shared: greenlets given the same context see the same values.
TEST_F(ContextVarsTest, test_set_gr_context) {
  greenlet::context_var<std::string> name("name");
  auto token = name.set("main");
  greenlet::greenlet g([&] { return name.get(); });
  g.set_gr_context(greenlet::getcurrent().gr_context());
  EXPECT_EQ(g.switch_().get<std::string>(), "main");
  name.reset(token);
  greenlet::getcurrent().set_gr_context(greenlet::context());  // leave main as it was
}

// contextvars: get() without value or default raises LookupError; tokens
// restore the previous value once.
TEST_F(ContextVarsTest, TokensAndLookupError) {
  greenlet::greenlet g([] {
    greenlet::context_var<int> v("v");
    EXPECT_THROW(v.get(), greenlet::LookupError);
    EXPECT_EQ(v.get(7), 7);
    auto t1 = v.set(1);
    auto t2 = v.set(2);
    EXPECT_EQ(v.get(), 2);
    v.reset(t2);
    EXPECT_EQ(v.get(), 1);
    EXPECT_THROW(v.reset(t2), greenlet::LookupError);
    v.reset(t1);
    EXPECT_THROW(v.get(), greenlet::LookupError);
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// ContextVar.get(default): the argument comes before the variable's own
// default; a value set in the context comes before both.
TEST_F(ContextVarsTest, GetFallbackComesBeforeTheDefault) {
  greenlet::greenlet g([] {
    greenlet::context_var<std::string> with_default("with_default", std::string("dflt"));
    greenlet::context_var<std::string> without_default("without_default");
    EXPECT_EQ(with_default.get("fb"), "fb");
    EXPECT_EQ(without_default.get("fb"), "fb");
    EXPECT_EQ(with_default.get(), "dflt");
    with_default.set("set");
    EXPECT_EQ(with_default.get("fb"), "set");
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// context::run: sets inside stay in that context object.
TEST_F(ContextVarsTest, ContextRunKeepsItsOwnChanges) {
  greenlet::greenlet g([] {
    greenlet::context_var<int> v("v", 0);
    v.set(1);
    greenlet::context snapshot = greenlet::copy_context();
    snapshot.run([&] {
      EXPECT_EQ(v.get(), 1);
      v.set(5);
    });
    EXPECT_EQ(v.get(), 1);
    EXPECT_EQ(snapshot.run([&] { return v.get(); }), 5);
  });
  g.switch_();
}

}  // namespace
