// throw_close_test.cpp: PEP 342's throw() and close(), and closing on
// destruction: an unfinished generator's stack unwinds when it goes away.
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using ThrowClose = greenlet_test::GreenletTest;
using greenlet::generator_errc;

// record appends to a log when destroyed: proof that a stack unwound.
struct record {
  std::vector<std::string>& log;
  std::string name;
  ~record() { log.push_back("~" + name); }
};

TEST_F(ThrowClose, ThrowRaisesAtTheYield) {
  greenlet::generator<std::string> g([](auto& co) {
    try {
      co.yield("first");
    } catch (const std::runtime_error& e) {
      co.yield(std::string("caught ") + e.what());
    }
    co.yield("after");
  });
  EXPECT_EQ(g.next(), "first");
  EXPECT_EQ(g.throw_(std::runtime_error("oops")), "caught oops");
  EXPECT_EQ(g.next(), "after");
}

TEST_F(ThrowClose, UncaughtThrowComesBackAndFinishesIt) {
  std::vector<std::string> log;
  greenlet::generator<int> g([&log](auto& co) {
    record r{log, "frame"};
    co.yield(1);
    co.yield(2);
  });
  g.next();
  EXPECT_THROW(g.throw_(std::out_of_range("x")), std::out_of_range);
  EXPECT_EQ(log, (std::vector<std::string>{"~frame"}));
  EXPECT_TRUE(g.finished());
}

TEST_F(ThrowClose, ThrowExceptionPtr) {
  greenlet::generator<int> g([](auto& co) {
    try {
      co.yield(1);
    } catch (const std::logic_error&) {
      co.yield(2);
    }
  });
  g.next();
  EXPECT_EQ(g.throw_(std::make_exception_ptr(std::logic_error("l"))), 2);
}

TEST_F(ThrowClose, ThrowThenReturnGivesStopIteration) {
  greenlet::generator<int, void, int> g([](auto& co) {
    try {
      co.yield(1);
    } catch (const std::exception&) {
      return 7;
    }
    return 0;
  });
  g.next();
  try {
    g.throw_(std::runtime_error("stop"));
    ADD_FAILURE() << "did not throw";
  } catch (const greenlet::StopIteration& e) {
    EXPECT_EQ(e.value().get<int>(), 7);
  }
}

// Python: throwing into a just-created generator raises at once and
// finishes it; its body never runs.
TEST_F(ThrowClose, ThrowIntoUnstartedGenerator) {
  bool ran = false;
  greenlet::generator<int> g([&ran](auto& co) {
    ran = true;
    co.yield(1);
  });
  EXPECT_THROW(g.throw_(std::runtime_error("early")), std::runtime_error);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(g.finished());
  EXPECT_THROW(g.next(), greenlet::StopIteration);
}

TEST_F(ThrowClose, CloseRaisesGeneratorExitAndUnwinds) {
  std::vector<std::string> log;
  greenlet::generator<int> g([&log](auto& co) {
    record r{log, "frame"};
    try {
      co.yield(1);
    } catch (const greenlet::GeneratorExit&) {
      log.push_back("GeneratorExit");
      throw;
    }
  });
  g.next();
  g.close();
  EXPECT_EQ(log, (std::vector<std::string>{"GeneratorExit", "~frame"}));
  EXPECT_TRUE(g.finished());
  EXPECT_FALSE(g.returned());
  g.close();  // again: nothing happens
  EXPECT_THROW(g.next(), greenlet::StopIteration);
}

TEST_F(ThrowClose, CloseWhenBodyReturnsOnGeneratorExit) {
  greenlet::generator<int, void, int> g([](auto& co) {
    try {
      co.yield(1);
    } catch (const greenlet::GeneratorExit&) {
      return 3;  // Python 3.13: close() returns it; here return_value()
    }
    return 0;
  });
  g.next();
  g.close();
  EXPECT_TRUE(g.returned());
  EXPECT_EQ(g.return_value(), 3);
}

TEST_F(ThrowClose, CloseUnstartedNeverRunsIt) {
  bool ran = false;
  greenlet::generator<int> g([&ran] { ran = true; });
  g.close();
  EXPECT_FALSE(ran);
  EXPECT_TRUE(g.finished());
  EXPECT_THROW(g.next(), greenlet::StopIteration);
}

TEST_F(ThrowClose, CloseRethrowsOtherExceptions) {
  greenlet::generator<int> g([](auto& co) {
    try {
      co.yield(1);
    } catch (const greenlet::GeneratorExit&) {
      throw std::runtime_error("cleanup failed");
    }
  });
  g.next();
  EXPECT_THROW(g.close(), std::runtime_error);
  EXPECT_TRUE(g.finished());
}

// Python: RuntimeError("generator ignored GeneratorExit").
TEST_F(ThrowClose, YieldingAfterGeneratorExitIsAnError) {
  std::vector<std::string> log;
  {
    greenlet::generator<int> g([&log](auto& co) {
      record r{log, "frame"};
      try {
        co.yield(1);
      } catch (const greenlet::GeneratorExit&) {
        co.yield(2);  // ignores the close once
      }
    });
    g.next();
    try {
      g.close();
      ADD_FAILURE() << "close() did not throw";
    } catch (const greenlet::generator_error& e) {
      EXPECT_EQ(e.code(), generator_errc::ignored_generator_exit);
      EXPECT_NE(std::string(e.what()).find("generator ignored GeneratorExit"), std::string::npos);
    }
    EXPECT_TRUE(g.suspended());
    // The second close (on destruction) finds it past its try block.
  }
  EXPECT_EQ(log, (std::vector<std::string>{"~frame"}));
}

TEST_F(ThrowClose, GeneratorExitIsNotAGreenletErrorNorGeneratorError) {
  static_assert(!std::is_base_of_v<greenlet::error, greenlet::GeneratorExit>);
  static_assert(!std::is_base_of_v<greenlet::generator_error, greenlet::GeneratorExit>);
  static_assert(!std::is_base_of_v<greenlet::GreenletExit, greenlet::GeneratorExit>);
  std::vector<std::string> log;
  greenlet::generator<int> g([&log](auto& co) {
    try {
      co.yield(1);
    } catch (const greenlet::error&) {
      log.push_back("swallowed by catch (greenlet::error&)");
      co.yield(2);
    }
  });
  g.next();
  g.close();
  EXPECT_TRUE(log.empty());
  greenlet::GeneratorExit e;
  EXPECT_EQ(e.code(), generator_errc::generator_exit);
}

TEST_F(ThrowClose, DestroyingUnfinishedGeneratorClosesIt) {
  std::vector<std::string> log;
  {
    greenlet::generator<int> g([&log](auto& co) {
      record outer{log, "outer"};
      try {
        record inner{log, "inner"};
        co.yield(1);
        log.push_back("not reached");
      } catch (const greenlet::GeneratorExit&) {
        log.push_back("GeneratorExit");
        throw;
      }
    });
    EXPECT_EQ(g.next(), 1);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"~inner", "GeneratorExit", "~outer"}));
}

TEST_F(ThrowClose, DestroyingUnstartedGeneratorDestroysItsBody) {
  std::vector<std::string> log;
  {
    auto captured = std::shared_ptr<record>(new record{log, "captured"});
    greenlet::generator<int> g([captured](auto& co) { co.yield(1); });
    captured.reset();
    EXPECT_TRUE(log.empty());
  }
  EXPECT_EQ(log.back(), "~captured");
}

TEST_F(ThrowClose, DestroyingNestedGeneratorsUnwindsAll) {
  std::vector<std::string> log;
  using gen_t = greenlet::generator<int>;
  {
    gen_t outer([&log](gen_t::context& co) {
      record r{log, "outer"};
      gen_t inner([&log](gen_t::context& ci) {
        record r2{log, "inner"};
        for (int i = 0;; ++i) ci.yield(i);
      });
      for (int x : inner) co.yield(x);
    });
    EXPECT_EQ(outer.next(), 0);
    EXPECT_EQ(outer.next(), 1);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"~inner", "~outer"}));
}

// An exception from closing a generator in its destructor has nowhere to go:
// it is handed to the unraisable hook, and the stack still unwinds.
TEST_F(ThrowClose, DestructorReportsIgnoredGeneratorExit) {
  std::vector<std::string> log;
  std::vector<std::string> reports;
  greenlet::unraisable_hook old =
      greenlet::set_unraisable_hook([&reports](std::exception_ptr e, std::string_view context) {
        std::string what;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        }
        reports.push_back(std::string(context) + ": " + what);
      });
  {
    greenlet::generator<int> g([&log](auto& co) {
      record r{log, "frame"};
      for (int i = 0;; ++i) {
        try {
          co.yield(i);
        } catch (const greenlet::GeneratorExit&) {
          log.push_back("ignored");
        } catch (const greenlet::GreenletExit&) {
          // the fiber layer's kill, when the state lets go of the greenlet
          log.push_back("killed");
        } catch (const greenlet::generator_error&) {
          // yield after the generator is past closing: it may not suspend
          log.push_back("no yield while dying");
          throw;
        }
      }
    });
    g.next();
  }
  greenlet::set_unraisable_hook(std::move(old));
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_NE(reports[0].find("generator ignored GeneratorExit"), std::string::npos) << reports[0];
  EXPECT_EQ(log, (std::vector<std::string>{"ignored", "killed", "no yield while dying", "~frame"}));
}

// throw_(nullptr) is a null exception_ptr: refused with generator_error (null_exception), as
// Python's gen.throw(None) is a TypeError, and the generator stays where it was. The literal took
// the exception-object overload and raised a std::nullptr_t at the yield; an exception_ptr that
// was null resumed the generator as next() did.
TEST_F(ThrowClose, NullThrowIsRefusedAndLeavesTheGeneratorAsItWas) {
  greenlet::generator<int> g([](auto& co) {
    try {
      co.yield(1);
    } catch (...) {
      co.yield(-1);
    }
    co.yield(2);
  });
  EXPECT_EQ(g.next(), 1);
  try {
    g.throw_(nullptr);
    ADD_FAILURE() << "throw_(nullptr) was taken";
  } catch (const greenlet::generator_error& e) {
    EXPECT_EQ(e.code(), generator_errc::null_exception);
  }
  EXPECT_THROW(g.throw_(std::exception_ptr()), greenlet::generator_error);
  EXPECT_EQ(g.next(), 2);  // not -1: nothing reached the yield
}

}  // namespace
