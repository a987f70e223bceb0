// foreign_thread_access_test.cpp: a greenlet's parent and context belong to
// its thread, which changes them without synchronization: set_parent() frees
// the old parent, a context_var::set() replaces the context. Read from
// another thread, parent() could retain a parent being freed and
// gr_context() copy a shared_ptr being replaced (use-after-free under ASan).
// While the greenlet's thread runs they throw errc::wrong_thread, as
// switch_(), throw_() and set_parent() do; once it has exited they work.
#include <string>
#include <thread>

#include "fiber/test_greenlet_support.hpp"

namespace {

using ForeignThreadAccess = greenlet_test::GreenletTest;
using greenlet_port::Event;

// expect_wrong_thread(f) expects f() to throw greenlet::error(wrong_thread)
// with a message that says what to do.
template <class F>
void expect_wrong_thread(F&& f, const char* what) {
  try {
    f();
    ADD_FAILURE() << what << " did not throw";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::wrong_thread) << what;
    EXPECT_NE(std::string(e.what()).find("of another thread"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("on the greenlet's own thread"), std::string::npos) << e.what();
  }
}

TEST_F(ForeignThreadAccess, ParentAndContextOfARunningThreadsGreenletAreRefused) {
  greenlet::greenlet theirs;
  greenlet::greenlet their_main;
  Event made;
  Event checked;
  std::thread worker([&] {
    theirs = greenlet::greenlet([] {});
    their_main = greenlet::getcurrent();
    made.set();
    checked.wait();
  });
  made.wait();
  expect_wrong_thread([&] { (void)theirs.parent(); }, "parent()");
  expect_wrong_thread([&] { (void)theirs.gr_context(); }, "gr_context()");
  expect_wrong_thread([&] { theirs.set_gr_context(greenlet::context()); }, "set_gr_context()");
  expect_wrong_thread([&] { (void)their_main.gr_context(); }, "gr_context() of its main greenlet");
  // A main greenlet's parent never changes: always empty, on any thread.
  EXPECT_TRUE(their_main.parent().empty());
  checked.set();
  worker.join();

  // Nothing changes them once their thread has exited.
  EXPECT_TRUE(theirs.parent() == their_main);
  EXPECT_EQ(theirs.gr_context().size(), 0u);
  theirs.set_gr_context(greenlet::context());
}

TEST_F(ForeignThreadAccess, OwnThreadReadsAsBefore) {
  greenlet::greenlet g([] {});
  EXPECT_TRUE(g.parent() == greenlet::getcurrent());
  greenlet::context_var<int> var("v");
  var.set(1);
  g.set_gr_context(greenlet::copy_context());
  EXPECT_EQ(g.gr_context().size(), 1u);
  greenlet::getcurrent().set_gr_context(greenlet::context());  // leave main as it was
}

}  // namespace
