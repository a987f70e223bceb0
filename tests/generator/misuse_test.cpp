// misuse_test.cpp: what a generator says when used wrongly, and how its
// yield finds the generator from other greenlets and nested calls.
#include <cstddef>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using Misuse = greenlet_test::GreenletTest;
using greenlet::generator_errc;

template <class F>
void expect_generator_error(F&& f, generator_errc code, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no generator_error (" << text << ")";
  } catch (const greenlet::generator_error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// Python: ValueError("generator already executing").
TEST_F(Misuse, ResumingRunningGeneratorFromItsBody) {
  using gen_t = greenlet::generator<int>;
  gen_t* self = nullptr;
  int calls = 0;
  gen_t g([&](gen_t::context& co) {
    EXPECT_TRUE(self->running());
    expect_generator_error([&] { self->next(); }, generator_errc::already_executing, "generator already executing");
    expect_generator_error([&] { self->throw_(std::runtime_error("x")); }, generator_errc::already_executing,
                           "generator already executing");
    expect_generator_error([&] { self->close(); }, generator_errc::already_executing, "generator already executing");
    ++calls;
    co.yield(1);
  });
  self = &g;
  EXPECT_EQ(g.next(), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(g.running());
}

TEST_F(Misuse, ResumingRunningGeneratorFromNestedGenerator) {
  using gen_t = greenlet::generator<int>;
  gen_t* outer_ptr = nullptr;
  gen_t outer([&](gen_t::context& co) {
    gen_t inner([&] {
      expect_generator_error([&] { outer_ptr->next(); }, generator_errc::already_executing,
                             "generator already executing");
    });
    for (int x : inner) co.yield(x);
    co.yield(7);
  });
  outer_ptr = &outer;
  EXPECT_EQ(outer.next(), 7);
}

TEST_F(Misuse, EmptyGenerator) {
  greenlet::generator<int> g;
  EXPECT_FALSE(g);
  expect_generator_error([&] { g.next(); }, generator_errc::empty_generator, "empty generator");
  greenlet::generator<int> h([](auto& co) { co.yield(1); });
  EXPECT_TRUE(h);
  g = std::move(h);
  EXPECT_FALSE(h);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(g.next(), 1);
  expect_generator_error([&] { h.close(); }, generator_errc::empty_generator, "empty generator");
}

TEST_F(Misuse, MovedGeneratorKeepsRunning) {
  using gen_t = greenlet::generator<int>;
  gen_t a([](gen_t::context& co) {
    for (int i = 0; i < 3; ++i) co.yield(i);
  });
  EXPECT_EQ(a.next(), 0);
  gen_t b(std::move(a));
  EXPECT_EQ(b.next(), 1);
  std::vector<gen_t> v;
  v.push_back(std::move(b));
  EXPECT_EQ(v[0].next(), 2);
}

TEST_F(Misuse, StaticYieldOfWrongType) {
  greenlet::generator<int> g([] { greenlet::generator<std::string>::yield("text"); });
  expect_generator_error([&] { g.next(); }, generator_errc::yield_outside_generator, "yield of the wrong type");
  EXPECT_TRUE(g.finished());
}

TEST_F(Misuse, YieldOnContextOfSuspendedGenerator) {
  using gen_t = greenlet::generator<int>;
  gen_t::context* saved = nullptr;
  gen_t g([&saved](gen_t::context& co) {
    saved = &co;
    co.yield(1);
    co.yield(2);
  });
  EXPECT_EQ(g.next(), 1);
  expect_generator_error([&] { saved->yield(5); }, generator_errc::yield_outside_generator, "not running");
  EXPECT_EQ(g.next(), 2);
}

// The body's greenlet has greenlets of its own: the static yield finds the
// generator through their parents, and the next resume continues there.
TEST_F(Misuse, YieldFromGreenletInsideBody) {
  using gen_t = greenlet::generator<int>;
  std::vector<std::string> log;
  gen_t g([&log] {
    greenlet::greenlet helper([&log] {
      gen_t::yield(10);
      log.push_back("helper resumed");
      gen_t::yield(11);
      return 0;
    });
    helper.switch_();
    log.push_back("body after helper");
    gen_t::yield(12);
  });
  EXPECT_EQ(g.next(), 10);
  EXPECT_EQ(g.next(), 11);
  EXPECT_EQ(g.next(), 12);
  EXPECT_THROW(g.next(), greenlet::StopIteration);
  EXPECT_EQ(log, (std::vector<std::string>{"helper resumed", "body after helper"}));
}

// The static yield finds its generator in one step per greenlet from the
// caller up to the generator's body, however many other generators are
// alive. It used to search the thread's list of live generators for each
// ancestor, O(live generators) per yield; innermost()'s test hook counts
// what a lookup looks at.
TEST_F(Misuse, StaticYieldLookupIgnoresOtherLiveGenerators) {
  using gen_t = greenlet::generator<int>;
  using greenlet::detail::generator_state_base;
  const greenlet::stack_options small{.size = 16 << 10, .guard_page = false};
  std::vector<std::size_t> visits;
  gen_t outer(
      [&visits, small] {
        std::size_t n = 0;
        EXPECT_NE(generator_state_base::innermost(&n), nullptr);
        visits.push_back(n);  // outer's body
        gen_t inner(
            [&visits] {
              std::size_t m = 0;
              generator_state_base* found = generator_state_base::innermost(&m);
              visits.push_back(m);  // inner's body
              greenlet::greenlet helper([&visits, found] {
                std::size_t k = 0;
                EXPECT_EQ(generator_state_base::innermost(&k), found);
                visits.push_back(k);  // helper, then inner's body
                gen_t::yield(1);
              });
              helper.switch_();
              gen_t::yield(2);
            },
            small);
        for (int v : inner) gen_t::yield(v);
      },
      small);
  // Made after outer, so that a search of the live list from its newest
  // end would pass them all before reaching outer.
  std::vector<gen_t> idle;
  for (int i = 0; i < 2000; ++i) {
    idle.emplace_back(
        [] {
          for (;;) gen_t::yield(0);
        },
        small);
    EXPECT_EQ(idle.back().next(), 0);  // started: each has a body greenlet
  }
  std::vector<int> got;
  for (int v : outer) got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
  EXPECT_EQ(visits, (std::vector<std::size_t>{1, 1, 2}));
}

// A greenlet made in a generator's body and run after that generator has
// finished and gone: its parent chain passes through the dead body, which
// must no longer lead to the (freed) generator.
TEST_F(Misuse, StaticYieldBelowFinishedBodyFindsNoGenerator) {
  using gen_t = greenlet::generator<int>;
  greenlet::greenlet child;
  {
    gen_t g([&child] {
      child = greenlet::greenlet([] { gen_t::yield(1); });
      gen_t::yield(0);
    });
    EXPECT_EQ(g.next(), 0);
    EXPECT_THROW(g.next(), greenlet::StopIteration);
  }
  expect_generator_error([&] { child.switch_(); }, generator_errc::yield_outside_generator,
                         "no generator is running here");
  child = greenlet::greenlet();
}

// A body that leaves by a raw switch_() breaks the protocol: the resumer is
// told so instead of being handed nothing.
TEST_F(Misuse, ForeignSwitchOutOfBody) {
  using gen_t = greenlet::generator<int>;
  greenlet::greenlet caller = greenlet::getcurrent();
  greenlet::greenlet body;
  std::vector<std::string> log;
  {
    gen_t g([&] {
      body = greenlet::getcurrent();
      caller.switch_(42);  // not a yield
      log.push_back("back in body");
      gen_t::yield(1);
    });
    expect_generator_error([&] { g.next(); }, generator_errc::foreign_switch, "switched away without yielding");
    EXPECT_TRUE(g.running());  // its greenlet is suspended outside a yield
    expect_generator_error([&] { g.next(); }, generator_errc::already_executing, "generator already executing");
    // Switching back by hand lets it reach its yield, which lands here.
    body.switch_();
    EXPECT_TRUE(g.suspended());
    body = greenlet::greenlet();
  }
  caller = greenlet::greenlet();
  EXPECT_EQ(log, std::vector<std::string>{"back in body"});
}

}  // namespace
