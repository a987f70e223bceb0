// throw_test.cpp: greenlet::throw_(), ported from greenlet's
// src/greenlet/tests/test_throw.py (ThrowTests), case for case.
//
// Python's RuntimeError is std::runtime_error, IndexError is
// std::out_of_range. The TypeError cases (test_non_traceback_param,
// test_instance_of_wrong_type, test_not_throwable) check Python's argument
// validation of throw(type, value, tb); throw_(E) has no such arguments.
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

#include "fiber/test_greenlet_support.hpp"
#include "support/greenlet_test.hpp"

namespace {

using ThrowTests = greenlet_test::GreenletTest;
using greenlet_port::switch_up;

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

// MyExit is `class MyExit(GreenletExit)` with an attribute of its own.
struct MyExit : greenlet::GreenletExit {
  explicit MyExit(int c) : greenlet::GreenletExit("MyExit"), code(c) {}
  int code;
};

// expect_my_exit(v, code) checks that v holds the MyExit that ended a greenlet, whole.
void expect_my_exit(greenlet::value& v, int code, const char* how) {
  ASSERT_TRUE(v.holds<MyExit>()) << how << ": " << v.type().name();
  EXPECT_TRUE(v.holds<const MyExit&>());
  EXPECT_TRUE(v.holds<greenlet::GreenletExit>());
  EXPECT_FALSE(v.holds<std::string>());
  EXPECT_TRUE(v.type() == typeid(MyExit)) << v.type().name();
  EXPECT_EQ(v.get<const MyExit&>().code, code);
  EXPECT_EQ(v.get<MyExit>().code, code);
  EXPECT_EQ(&v.get<MyExit>(), &v.get<greenlet::GreenletExit>());
  EXPECT_STREQ(v.get<greenlet::GreenletExit>().what(), "MyExit");
  try {
    (void)v.get<std::string>();
    ADD_FAILURE() << "get<std::string>() on a MyExit returned";
  } catch (const greenlet::bad_value_access& e) {
    EXPECT_NE(std::string(e.what()).find("MyExit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(std::move(v).get<MyExit>().code, code);
}

// A GreenletExit subclass that ends a greenlet comes back to the parent as
// itself, as in Python (isinstance(r, MyExit), r.code): it was sliced to a
// plain GreenletExit, on each of the four ways it can come back.
TEST_F(ThrowTests, GreenletExitSubclassComesBackWhole) {
  greenlet::greenlet suspended([] { switch_up(); });
  suspended.switch_();
  greenlet::value r = suspended.throw_(MyExit(7));
  expect_my_exit(r, 7, "thrown into a suspended greenlet");

  r = suspended.throw_(MyExit(8));
  expect_my_exit(r, 8, "thrown into a dead greenlet");

  greenlet::greenlet raising([] { throw MyExit(9); });
  r = raising.switch_();
  expect_my_exit(r, 9, "thrown out of run");

  greenlet::greenlet unstarted([] {});
  r = unstarted.throw_(MyExit(10));
  expect_my_exit(r, 10, "thrown into an unstarted greenlet");

  // A plain GreenletExit comes back as before.
  greenlet::greenlet plain([] { switch_up(); });
  plain.switch_();
  r = plain.throw_();
  EXPECT_TRUE(r.holds<greenlet::GreenletExit>());
  EXPECT_FALSE(r.holds<MyExit>());
  EXPECT_TRUE(r.type() == typeid(greenlet::GreenletExit)) << r.type().name();
  EXPECT_THROW((void)r.get<MyExit>(), greenlet::bad_value_access);
}

// throw_(nullptr) is throw_() with a null exception_ptr: GreenletExit, as documented. The literal
// took the exception-object overload and raised a std::nullptr_t in the greenlet, which its
// catch (GreenletExit&) did not see.
TEST_F(ThrowTests, NullLiteralRaisesGreenletExit) {
  bool saw_exit = false;
  greenlet::greenlet g([&] {
    try {
      switch_up();
    } catch (const greenlet::GreenletExit&) {
      saw_exit = true;
      throw;
    }
  });
  g.switch_();
  greenlet::value r = g.throw_(nullptr);
  EXPECT_TRUE(saw_exit);
  EXPECT_TRUE(r.holds<greenlet::GreenletExit>());
  EXPECT_TRUE(g.dead());
}

}  // namespace
