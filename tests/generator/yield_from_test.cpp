// yield_from_test.cpp: PEP 380's `yield from`, context::yield_from(sub):
// sub's values pass out, sends and throws pass in, GeneratorExit closes sub,
// and the expression is sub's return value. Cases after CPython's
// Lib/test/test_pep380.py.
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using YieldFrom = greenlet_test::GreenletTest;
using log_t = std::vector<std::string>;

// test_delegation_of_initial_next_to_subgenerator and
// test_returning_value_from_delegated_generator.
TEST_F(YieldFrom, DelegatesAndReturnsSubResult) {
  using sub_t = greenlet::generator<int, void, std::string>;
  using gen_t = greenlet::generator<int, void, std::string>;
  gen_t g([](gen_t::context& co) {
    co.yield(0);
    std::string r = co.yield_from(sub_t([](sub_t::context& cs) {
      cs.yield(1);
      cs.yield(2);
      return std::string("sub done");
    }));
    co.yield(3);
    return "outer saw " + r;
  });
  std::vector<int> seen;
  for (int x : g) seen.push_back(x);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(g.return_value(), "outer saw sub done");
}

// test_delegation_of_send.
TEST_F(YieldFrom, PassesSendsThrough) {
  log_t log;
  using gen_t = greenlet::generator<std::string, int, int>;
  gen_t sub([&log](gen_t::context& cs) {
    int total = 0;
    for (int i = 0; i < 3; ++i) {
      std::optional<int> got = cs.yield("sub " + std::to_string(i));
      log.push_back(got ? "sub got " + std::to_string(*got) : "sub got None");
      if (got) total += *got;
    }
    return total;
  });
  gen_t outer([&log, &sub](gen_t::context& co) {
    int total = co.yield_from(sub);
    log.push_back("total " + std::to_string(total));
    return total;
  });
  EXPECT_EQ(outer.next(), "sub 0");
  EXPECT_EQ(outer.send(10), "sub 1");
  EXPECT_EQ(outer.next(), "sub 2");
  EXPECT_THROW(outer.send(5), greenlet::StopIteration);
  EXPECT_EQ(outer.return_value(), 15);
  EXPECT_EQ(log, (log_t{"sub got 10", "sub got None", "sub got 5", "total 15"}));
  EXPECT_TRUE(sub.finished());
}

// test_handling_exception_while_delegating_send / test_delegating_throw.
TEST_F(YieldFrom, PassesThrowsThrough) {
  log_t log;
  using gen_t = greenlet::generator<int>;
  gen_t outer([&log](gen_t::context& co) {
    try {
      co.yield_from(gen_t([&log](gen_t::context& cs) {
        try {
          cs.yield(1);
        } catch (const std::runtime_error& e) {
          log.push_back(std::string("sub caught ") + e.what());
          cs.yield(2);
        }
        cs.yield(3);
        throw std::logic_error("sub fails");
      }));
    } catch (const std::logic_error& e) {
      log.push_back(std::string("outer caught ") + e.what());
    }
  });
  EXPECT_EQ(outer.next(), 1);
  EXPECT_EQ(outer.throw_(std::runtime_error("thrown in")), 2);
  EXPECT_EQ(outer.next(), 3);
  EXPECT_THROW(outer.next(), greenlet::StopIteration);
  EXPECT_EQ(log, (log_t{"sub caught thrown in", "outer caught sub fails"}));
}

// A throw the sub does not catch comes out of yield_from in the delegator.
TEST_F(YieldFrom, UncaughtThrowFinishesSubAndReachesDelegator) {
  log_t log;
  using gen_t = greenlet::generator<int>;
  gen_t sub([&log](gen_t::context& cs) {
    try {
      cs.yield(1);
    } catch (...) {
      log.push_back("sub unwinds");
      throw;
    }
  });
  gen_t outer([&](gen_t::context& co) {
    try {
      co.yield_from(sub);
    } catch (const std::out_of_range&) {
      log.push_back("outer caught");
      co.yield(99);
    }
  });
  EXPECT_EQ(outer.next(), 1);
  EXPECT_EQ(outer.throw_(std::out_of_range("x")), 99);
  EXPECT_TRUE(sub.finished());
  EXPECT_EQ(log, (log_t{"sub unwinds", "outer caught"}));
}

// test_delegating_close / test_handing_exception_while_delegating_close.
TEST_F(YieldFrom, CloseClosesTheSubGeneratorFirst) {
  log_t log;
  using gen_t = greenlet::generator<int>;
  {
    gen_t outer([&log](gen_t::context& co) {
      try {
        co.yield_from(gen_t([&log](gen_t::context& cs) {
          try {
            cs.yield(1);
          } catch (const greenlet::GeneratorExit&) {
            log.push_back("sub GeneratorExit");
            throw;
          }
        }));
      } catch (const greenlet::GeneratorExit&) {
        log.push_back("outer GeneratorExit");
        throw;
      }
    });
    EXPECT_EQ(outer.next(), 1);
    outer.close();
    EXPECT_TRUE(outer.finished());
  }
  EXPECT_EQ(log, (log_t{"sub GeneratorExit", "outer GeneratorExit"}));
}

TEST_F(YieldFrom, DestroyingDelegatorClosesSub) {
  log_t log;
  using gen_t = greenlet::generator<int>;
  gen_t sub([&log](gen_t::context& cs) {
    try {
      for (int i = 0;; ++i) cs.yield(i);
    } catch (const greenlet::GeneratorExit&) {
      log.push_back("sub closed");
      throw;
    }
  });
  {
    gen_t outer([&sub](gen_t::context& co) { co.yield_from(sub); });
    EXPECT_EQ(outer.next(), 0);
    EXPECT_EQ(outer.next(), 1);
  }
  EXPECT_EQ(log, (log_t{"sub closed"}));
  EXPECT_TRUE(sub.finished());
}

// Yield types convert; a value sent to a delegator whose sub takes none is
// dropped, as Python's sub would ignore what its yield returns.
TEST_F(YieldFrom, ConvertsYieldAndDropsSendForVoidSub) {
  using sub_t = greenlet::generator<const char*>;
  using gen_t = greenlet::generator<std::string, int>;
  gen_t g([](gen_t::context& co) {
    co.yield_from(sub_t([](sub_t::context& cs) {
      cs.yield("a");
      cs.yield("b");
    }));
  });
  EXPECT_EQ(g.next(), "a");
  EXPECT_EQ(g.send(1), "b");
  EXPECT_THROW(g.send(2), greenlet::StopIteration);
}

// An exhausted sub: its return value went to whoever finished it; Python's
// `yield from` then gives None, which an int Return cannot hold.
TEST_F(YieldFrom, ExhaustedSub) {
  using gen_t = greenlet::generator<int, void, int>;
  gen_t sub([] { return 4; });
  EXPECT_THROW(sub.next(), greenlet::StopIteration);
  gen_t outer([&sub](gen_t::context& co) { return co.yield_from(sub) + 1; });
  EXPECT_THROW(outer.next(), greenlet::generator_error);
}

// Recursive delegation: a tree walk as nested yield_from.
greenlet::generator<int, void, int> walk(int depth, int label) {
  using gen_t = greenlet::generator<int, void, int>;
  return gen_t([depth, label](gen_t::context& co) {
    if (depth == 0) {
      co.yield(label);
      return 1;
    }
    return co.yield_from(walk(depth - 1, label * 2)) + co.yield_from(walk(depth - 1, label * 2 + 1));
  });
}

TEST_F(YieldFrom, RecursiveDelegation) {
  auto g = walk(3, 1);
  std::vector<int> seen;
  for (int x : g) seen.push_back(x);
  EXPECT_EQ(seen, (std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(g.return_value(), 8);
}

// test_delegation_of_next_call_to_subgenerator with a running sub: PEP 380's
// "generator already executing".
TEST_F(YieldFrom, DelegatingToItselfIsAlreadyExecuting) {
  using gen_t = greenlet::generator<int>;
  gen_t* self = nullptr;
  gen_t g([&self](gen_t::context& co) { co.yield_from(*self); });
  self = &g;
  try {
    g.next();
    ADD_FAILURE() << "did not throw";
  } catch (const greenlet::generator_error& e) {
    EXPECT_EQ(e.code(), greenlet::generator_errc::already_executing);
  }
}

}  // namespace

namespace {

// `yield from` a sub already finished, or finished by another caller while
// delegated to: Python's evaluates to None (the sub raises a bare
// StopIteration); it returned the sub's earlier return value.
TEST_F(YieldFrom, FinishedSubGivesNoValueNotAStaleOne) {
  using opt_t = greenlet::generator<int, void, std::optional<int>>;
  opt_t done([](opt_t::context&) { return std::optional<int>(42); });
  EXPECT_THROW(done.next(), greenlet::StopIteration);  // returned 42
  std::vector<std::string> log;
  opt_t outer([&](opt_t::context& co) {
    std::optional<int> r = co.yield_from(done);
    log.push_back(r ? "got " + std::to_string(*r) : "got nullopt");
    return r;
  });
  EXPECT_THROW(outer.next(), greenlet::StopIteration);
  EXPECT_EQ(log, (std::vector<std::string>{"got nullopt"}));

  // Finished by someone else meanwhile, a plain int Return: no value to give.
  using int_t = greenlet::generator<int, void, int>;
  int_t sub([](int_t::context& cs) {
    cs.yield(1);
    return 7;
  });
  int_t delegator([&](int_t::context& co) {
    try {
      log.push_back("yield_from gave " + std::to_string(co.yield_from(sub)));
    } catch (const greenlet::generator_error& e) {
      EXPECT_EQ(e.code(), greenlet::generator_errc::no_return_value);
      log.push_back("no return value");
    }
    return 0;
  });
  EXPECT_EQ(delegator.next(), 1);
  EXPECT_THROW(sub.next(), greenlet::StopIteration);  // sub returns 7 to this caller
  EXPECT_THROW(delegator.next(), greenlet::StopIteration);
  EXPECT_EQ(log.back(), "no return value");
}

}  // namespace
