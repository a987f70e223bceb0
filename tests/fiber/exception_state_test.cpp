// exception_state_test.cpp: the C++ runtime's exception bookkeeping is per
// greenlet. A greenlet that switches away inside a catch block gets its own
// std::current_exception() and `throw;` back, whatever others threw and
// caught meanwhile; std::uncaught_exceptions() counts its own unwinding only.
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using ExceptionState = greenlet_test::GreenletTest;

// what_of(e) is e's message, or a marker for no exception / a foreign type.
std::string what_of(const std::exception_ptr& e) {
  if (!e) return "<none>";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

TEST_F(ExceptionState, CatchBlockSurvivesSwitchesAndOthersExceptions) {
  std::vector<std::string> log;
  greenlet::greenlet main = greenlet::getcurrent();

  greenlet::greenlet g1([&] {
    try {
      throw std::runtime_error("g1");
    } catch (const std::runtime_error&) {
      main.switch_();
      log.push_back("g1 sees " + what_of(std::current_exception()));
      try {
        throw;
      } catch (const std::runtime_error& again) {
        log.push_back(std::string("g1 rethrew ") + again.what());
      }
    }
    log.push_back("g1 after catch sees " + what_of(std::current_exception()));
  });

  greenlet::greenlet g2([&] {
    try {
      throw std::logic_error("g2");
    } catch (const std::logic_error&) {
      main.switch_();
      log.push_back("g2 sees " + what_of(std::current_exception()));
    }
  });

  g1.switch_();  // g1 now suspended inside its catch block
  log.push_back("main sees " + what_of(std::current_exception()));
  try {
    throw std::invalid_argument("main");
  } catch (const std::invalid_argument&) {
    g2.switch_();  // g2 suspended inside its own catch block
    log.push_back("main in catch sees " + what_of(std::current_exception()));
    try {
      throw std::out_of_range("main inner");
    } catch (const std::out_of_range&) {
      g1.switch_();
    }
    log.push_back("main back in catch sees " + what_of(std::current_exception()));
    g2.switch_();
  }
  log.push_back("main after catch sees " + what_of(std::current_exception()));

  EXPECT_EQ(log, (std::vector<std::string>{
                     "main sees <none>",
                     "main in catch sees main",
                     "g1 sees g1",
                     "g1 rethrew g1",
                     "g1 after catch sees <none>",
                     "main back in catch sees main",
                     "g2 sees g2",
                     "main after catch sees <none>",
                 }));
  EXPECT_TRUE(g1.dead());
  EXPECT_TRUE(g2.dead());
}

// SwitchInDestructor switches to the parent from a destructor, which runs
// during stack unwinding; it records std::uncaught_exceptions() around it.
struct SwitchInDestructor {
  std::vector<std::string>& log;
  ~SwitchInDestructor() {
    log.push_back("unwinding: " + std::to_string(std::uncaught_exceptions()));
    greenlet::getcurrent().parent().switch_();
    log.push_back("unwinding resumed: " + std::to_string(std::uncaught_exceptions()));
  }
};

TEST_F(ExceptionState, UncaughtExceptionsIsPerGreenlet) {
  std::vector<std::string> log;
  greenlet::greenlet g([&]() -> std::string {
    try {
      SwitchInDestructor during_unwind{log};
      throw std::runtime_error("unwinding g");
    } catch (const std::runtime_error& e) {
      log.push_back("g caught: " + std::to_string(std::uncaught_exceptions()));
      return e.what();
    }
  });

  g.switch_();  // g is suspended in the middle of unwinding
  log.push_back("main: " + std::to_string(std::uncaught_exceptions()));
  try {
    throw std::logic_error("main's own");
  } catch (const std::logic_error& e) {
    log.push_back(std::string("main caught ") + e.what() + ": " + std::to_string(std::uncaught_exceptions()));
  }
  greenlet::value result = g.switch_();
  log.push_back("main again: " + std::to_string(std::uncaught_exceptions()));

  EXPECT_EQ(result.get<std::string>(), "unwinding g");
  EXPECT_EQ(log, (std::vector<std::string>{
                     "unwinding: 1",
                     "main: 0",
                     "main caught main's own: 0",
                     "unwinding resumed: 1",
                     "g caught: 0",
                     "main again: 0",
                 }));
}

// Two greenlets unwinding at the same time each count one exception, and
// main, which is not unwinding, counts none.
TEST_F(ExceptionState, TwoGreenletsUnwindingAtOnce) {
  std::vector<std::string> log;
  auto run = [&log](const std::string& name) {
    return [&log, name] {
      try {
        SwitchInDestructor during_unwind{log};
        throw std::runtime_error(name);
      } catch (const std::runtime_error& e) {
        log.push_back(std::string("caught ") + e.what());
      }
    };
  };
  greenlet::greenlet a(run("a"));
  greenlet::greenlet b(run("b"));
  a.switch_();
  b.switch_();
  log.push_back("main: " + std::to_string(std::uncaught_exceptions()));
  a.switch_();
  b.switch_();
  EXPECT_EQ(log, (std::vector<std::string>{
                     "unwinding: 1",
                     "unwinding: 1",
                     "main: 0",
                     "unwinding resumed: 1",
                     "caught a",
                     "unwinding resumed: 1",
                     "caught b",
                 }));
  EXPECT_TRUE(a.dead());
  EXPECT_TRUE(b.dead());
}

}  // namespace
