// foreign_thread_test.cpp: a generator dropped on a thread other than the one
// that made it. Its body must be closed (killed) and its state freed on the
// owner thread, never on the dropping one, and the owner's generators must
// keep working afterwards.
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"
#include "support/unraisable_reports.hpp"

namespace {

using ForeignThread = greenlet_test::GreenletTest;
using gen_t = greenlet::generator<int>;

// guard records where and how often its destructor ran.
struct guard {
  std::vector<std::thread::id>* destroyed_on;
  ~guard() { destroyed_on->push_back(std::this_thread::get_id()); }
};

using reports = greenlet_test::unraisable_reports;

// expect_fresh_generators_work() runs new generators on this thread, checking what
// they yield: the owner's generator list and its freed memory are what a
// wrong drop on another thread corrupts.
void expect_fresh_generators_work() {
  for (int round = 0; round < 3; ++round) {
    gen_t fresh([] {
      for (int i = 0; i < 3; ++i) gen_t::yield(i);
    });
    std::vector<int> got;
    for (int x : fresh) got.push_back(x);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2})) << "round " << round;
  }
}

TEST_F(ForeignThread, SuspendedGeneratorDroppedOnAnotherThreadIsKilledOnItsOwn) {
  reports hook;
  std::vector<std::thread::id> destroyed_on;
  bool unwound = false;
  gen_t g([&](gen_t::context& co) {
    guard keep{&destroyed_on};
    try {
      for (int i = 0;; ++i) co.yield(i);
    } catch (...) {
      unwound = true;
      throw;
    }
  });
  EXPECT_EQ(g.next(), 0);
  EXPECT_EQ(g.next(), 1);
  std::thread([h = std::move(g)]() mutable { h = gen_t(); }).join();
  // The body's thread does the killing, on its next use of greenlets.
  expect_fresh_generators_work();
  EXPECT_TRUE(unwound);
  ASSERT_EQ(destroyed_on.size(), 1u);
  EXPECT_EQ(destroyed_on[0], std::this_thread::get_id());
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
  expect_fresh_generators_work();
}

TEST_F(ForeignThread, UnstartedAndFinishedGeneratorsDroppedOnAnotherThread) {
  reports hook;
  int ran = 0;
  gen_t unstarted([&] {
    ++ran;
    gen_t::yield(1);
  });
  gen_t finished([] { gen_t::yield(7); });
  for (int x : finished) EXPECT_EQ(x, 7);
  std::thread([a = std::move(unstarted), b = std::move(finished)]() mutable {
    a = gen_t();
    b = gen_t();
  }).join();
  expect_fresh_generators_work();
  EXPECT_EQ(ran, 0);
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
}

// A suspended outer generator whose body holds a suspended inner one, dropped
// on another thread. The inner body's parent link keeps the outer body
// reachable, so the fiber layer kills it only when its thread exits; both
// bodies must then unwind there, once each, and both states be freed.
TEST_F(ForeignThread, NestedGeneratorDroppedOnAnotherThreadUnwindsAtOwnerExit) {
  reports hook;
  std::vector<std::thread::id> destroyed_on;
  std::thread::id owner_id;
  std::thread owner([&] {
    owner_id = std::this_thread::get_id();
    gen_t outer([&](gen_t::context& co) {
      guard keep{&destroyed_on};
      gen_t inner([&](gen_t::context& ci) {
        guard keep_inner{&destroyed_on};
        for (int i = 10;; ++i) ci.yield(i);
      });
      for (int x : inner) co.yield(x);
    });
    EXPECT_EQ(outer.next(), 10);
    EXPECT_EQ(outer.next(), 11);
    std::thread([h = std::move(outer)]() mutable { h = gen_t(); }).join();
    expect_fresh_generators_work();
  });
  owner.join();
  ASSERT_EQ(destroyed_on.size(), 2u);
  EXPECT_EQ(destroyed_on[0], owner_id);
  EXPECT_EQ(destroyed_on[1], owner_id);
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
}

// expect_wrong_thread(f) checks that f throws greenlet::error(wrong_thread)
// naming the generator and what to do; it said "parent cannot be on a
// different thread", from the fiber layer, naming neither.
template <class F>
void expect_wrong_thread(F&& f, const char* what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::wrong_thread) << what << ": " << e.what();
    const std::string message = e.what();
    EXPECT_NE(message.find("generator used on a thread other than the one that made it"), std::string::npos)
        << what << ": " << message;
    EXPECT_NE(message.find("on its own thread"), std::string::npos) << what << ": " << message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << e.what();
  }
}

// Resuming or closing a generator on another thread is refused, before
// anything changes: it stays usable on its own thread.
TEST_F(ForeignThread, ResumingOrClosingOnAnotherThreadNamesTheGenerator) {
  reports hook;
  using send_gen_t = greenlet::generator<int, int>;
  send_gen_t unstarted([](send_gen_t::context& co) {
    co.yield(1);
    co.yield(2);
  });
  send_gen_t suspended([](send_gen_t::context& co) {
    co.yield(1);
    co.yield(2);
  });
  EXPECT_EQ(suspended.next(), 1);
  std::thread([&] {
    expect_wrong_thread([&] { unstarted.next(); }, "unstarted next");
    expect_wrong_thread([&] { unstarted.throw_(std::runtime_error("x")); }, "unstarted throw_");
    expect_wrong_thread([&] { unstarted.close(); }, "unstarted close");
    expect_wrong_thread([&] { suspended.next(); }, "suspended next");
    expect_wrong_thread([&] { suspended.send(5); }, "suspended send");
    expect_wrong_thread([&] { suspended.throw_(std::runtime_error("x")); }, "suspended throw_");
    expect_wrong_thread([&] { suspended.close(); }, "suspended close");
    expect_wrong_thread([&] { (void)suspended.begin(); }, "suspended begin");
  }).join();
  EXPECT_FALSE(unstarted.started());
  EXPECT_TRUE(suspended.suspended());
  EXPECT_EQ(unstarted.next(), 1);
  EXPECT_EQ(suspended.next(), 2);
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
}

}  // namespace
