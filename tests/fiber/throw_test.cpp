// throw_test.cpp: greenlet::throw_(), ported from greenlet's
// src/greenlet/tests/test_throw.py (ThrowTests), case for case.
//
// Python's RuntimeError is std::runtime_error, IndexError is
// std::out_of_range. The TypeError cases (test_non_traceback_param,
// test_instance_of_wrong_type, test_not_throwable) check Python's argument
// validation of throw(type, value, tb); throw_(E) has no such arguments.
#include <stdexcept>
#include <string>

#include "support/greenlet_test.hpp"

namespace {

using ThrowTests = greenlet_test::GreenletTest;

// switch_up(args...) is the Python module's `switch(*args)`: switch to the
// current greenlet's parent.
template <class... Args>
greenlet::value switch_up(Args&&... args) {
  return greenlet::getcurrent().parent().switch_(std::forward<Args>(args)...);
}

TEST_F(ThrowTests, test_class) {
  auto f = [] {
    try {
      switch_up("ok");
    } catch (const std::runtime_error&) {
      switch_up("ok");
      return;
    }
    switch_up("fail");
  };
  greenlet::greenlet g(f);
  greenlet::value res = g.switch_();
  EXPECT_EQ(res.get<std::string>(), "ok");
  res = g.throw_(std::runtime_error("RuntimeError"));
  EXPECT_EQ(res.get<std::string>(), "ok");
}

TEST_F(ThrowTests, test_val) {
  auto f = [] {
    try {
      switch_up("ok");
    } catch (const std::runtime_error& val) {
      if (std::string(val.what()) == "ciao") {
        switch_up("ok");
        return;
      }
    }
    switch_up("fail");
  };

  greenlet::greenlet g(f);
  greenlet::value res = g.switch_();
  EXPECT_EQ(res.get<std::string>(), "ok");
  res = g.throw_(std::runtime_error("ciao"));
  EXPECT_EQ(res.get<std::string>(), "ok");

  // Python's throw(RuntimeError, "ciao") form: the exception_ptr overload.
  g = greenlet::greenlet(f);
  res = g.switch_();
  EXPECT_EQ(res.get<std::string>(), "ok");
  res = g.throw_(std::make_exception_ptr(std::runtime_error("ciao")));
  EXPECT_EQ(res.get<std::string>(), "ok");
}

TEST_F(ThrowTests, test_kill) {
  auto f = [] {
    switch_up("ok");
    switch_up("fail");
  };
  greenlet::greenlet g(f);
  greenlet::value res = g.switch_();
  EXPECT_EQ(res.get<std::string>(), "ok");
  res = g.throw_();
  EXPECT_TRUE(res.holds<greenlet::GreenletExit>()) << res.type().name();
  EXPECT_TRUE(g.dead());
  res = g.throw_();  // immediately eaten by the already-dead greenlet
  EXPECT_TRUE(res.holds<greenlet::GreenletExit>()) << res.type().name();
}

TEST_F(ThrowTests, test_throw_goes_to_original_parent) {
  greenlet::greenlet main = greenlet::getcurrent();

  auto f1 = [main]() mutable -> std::string {
    try {
      main.switch_("f1 ready to catch");
    } catch (const std::out_of_range&) {
      return "caught";
    }
    return "normal exit";
  };
  auto f2 = [main]() mutable { main.switch_("from f2"); };

  // Both unstarted: each dies without running and the error reaches main.
  greenlet::greenlet g1(f1);
  greenlet::greenlet g2(f2, g1);
  EXPECT_THROW(g2.throw_(std::out_of_range("IndexError")), std::out_of_range);
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.dead());

  // g2 unstarted, g1 waiting in its try block: g1 catches it.
  g1 = greenlet::greenlet(f1);
  g2 = greenlet::greenlet(f2, g1);
  greenlet::value res = g1.switch_();
  EXPECT_EQ(res.get<std::string>(), "f1 ready to catch");
  res = g2.throw_(std::out_of_range("IndexError"));
  EXPECT_EQ(res.get<std::string>(), "caught");
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.dead());

  // g2 started (it switched to main, not to its parent): the exception
  // escaping g2 still goes to its parent g1.
  g1 = greenlet::greenlet(f1);
  g2 = greenlet::greenlet(f2, g1);
  res = g1.switch_();
  EXPECT_EQ(res.get<std::string>(), "f1 ready to catch");
  res = g2.switch_();
  EXPECT_EQ(res.get<std::string>(), "from f2");
  res = g2.throw_(std::out_of_range("IndexError"));
  EXPECT_EQ(res.get<std::string>(), "caught");
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.dead());
}

}  // namespace
