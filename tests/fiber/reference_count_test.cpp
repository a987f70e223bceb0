// reference_count_test.cpp: a greenlet's references are counted in two parts
// (greenlet_impl::local_refs on its own thread, shared_refs on others, whose
// releases are mailed to the owner; see include/greenlet/detail/greenlet_impl.hpp).
// These cases move handles between threads in the orders that split count
// could get wrong: a copy made on another thread and dropped on the owner,
// handles outliving the owner thread, and copies made and dropped on several
// threads at once.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace reference_count_test {

using ReferenceCount = greenlet_test::GreenletTest;
using greenlet_port::Event;
using greenlet_port::fmain;

// on_destroy counts its destructions: captured in a run function, it says
// when the greenlet holding it was freed.
struct on_destroy {
  std::atomic<int>* destroyed;
  explicit on_destroy(std::atomic<int>* counter) : destroyed(counter) {}
  on_destroy(const on_destroy&) = delete;
  on_destroy(on_destroy&& other) noexcept : destroyed(std::exchange(other.destroyed, nullptr)) {}
  ~on_destroy() {
    if (destroyed != nullptr) destroyed->fetch_add(1);
  }
};

// A copy made on another thread counts in the shared part; dropped on the
// owner, it comes off the owner's part. The other thread's own handle must
// still keep the greenlet alive, until its release reaches the owner.
TEST_F(ReferenceCount, ACopyMadeElsewhereAndDroppedHereLeavesTheOtherThreadsHandleCounted) {
  std::vector<std::string> seen;
  greenlet::greenlet g(fmain);
  g.switch_(&seen);  // suspended in fmain

  greenlet::greenlet handed_back;
  Event copied;
  Event dropped_here;
  std::thread other([&, kept = g] {
    handed_back = kept;  // counted on this thread
    copied.set();
    dropped_here.wait();
    // `kept` goes when the thread's function ends: mailed to the owner.
  });
  copied.wait();
  g = greenlet::greenlet();
  handed_back = greenlet::greenlet();
  EXPECT_TRUE(seen.empty()) << "killed while another thread still held a handle";
  dropped_here.set();
  other.join();
  EXPECT_TRUE(seen.empty()) << "a release on another thread acted before its owner took its mail";
  (void)greenlet::getcurrent();  // takes the mail: that was the last handle
  EXPECT_EQ(seen, (std::vector<std::string>{"GreenletExit"}));
}

// Many copies made on another thread, half handed back and dropped here,
// half dropped there: the greenlet lives exactly as long as one of them does.
TEST_F(ReferenceCount, ManyCopiesSplitBetweenTwoThreadsKeepItUntilTheLastGoes) {
  std::vector<std::string> seen;
  greenlet::greenlet g(fmain);
  g.switch_(&seen);

  std::vector<greenlet::greenlet> handed_back;
  Event copied;
  Event may_drop;
  std::thread other([&, kept = g] {
    std::vector<greenlet::greenlet> mine(500, kept);
    handed_back.assign(500, kept);
    copied.set();
    may_drop.wait();
    mine.clear();  // mailed
  });
  copied.wait();
  g = greenlet::greenlet();
  handed_back.clear();
  (void)greenlet::getcurrent();
  EXPECT_TRUE(seen.empty());
  may_drop.set();
  other.join();
  (void)greenlet::getcurrent();
  EXPECT_EQ(seen, (std::vector<std::string>{"GreenletExit"}));
}

// Handles that outlive their greenlet's thread: the exiting owner hands its
// count over, and from then on any thread counts and frees.
TEST_F(ReferenceCount, HandlesOutlivingTheOwnerThreadFreeTheGreenletWithTheLastOne) {
  std::atomic<int> destroyed{0};
  greenlet::greenlet outlives;
  std::thread owner([&] {
    greenlet::greenlet unstarted([held = on_destroy(&destroyed)] {});
    outlives = unstarted;  // a second reference made on the owner
  });
  owner.join();
  EXPECT_EQ(destroyed.load(), 0);
  greenlet::greenlet second = outlives;  // counted after the owner left
  outlives = greenlet::greenlet();
  EXPECT_EQ(destroyed.load(), 0) << "freed while a handle was left";
  EXPECT_FALSE(second.started());
  second = greenlet::greenlet();
  EXPECT_EQ(destroyed.load(), 1);
}

// Copies made and dropped on four threads and the owner at once (a race
// here shows under ThreadSanitizer, or as a count that is off at the end).
TEST_F(ReferenceCount, CopiesOnSeveralThreadsAtOnceBalance) {
  std::atomic<int> destroyed{0};
  greenlet::greenlet g([held = on_destroy(&destroyed)] {});
  constexpr int threads = 4;
  constexpr int rounds = 2000;
  std::atomic<int> ready{0};
  std::vector<std::thread> others;
  for (int t = 0; t < threads; ++t) {
    others.emplace_back([&, kept = g] {
      ready.fetch_add(1);
      while (ready.load() < threads + 1) {
      }
      for (int i = 0; i < rounds; ++i) {
        greenlet::greenlet copy = kept;
        greenlet::greenlet another = copy;
      }
    });
  }
  ready.fetch_add(1);
  while (ready.load() < threads + 1) {
  }
  for (int i = 0; i < rounds; ++i) {
    greenlet::greenlet copy = g;
    (void)greenlet::getcurrent();  // takes the mail as it comes
  }
  for (std::thread& t : others) t.join();
  (void)greenlet::getcurrent();
  EXPECT_EQ(destroyed.load(), 0) << "freed while this thread still holds a handle";
  EXPECT_FALSE(g.started());
  g = greenlet::greenlet();
  EXPECT_EQ(destroyed.load(), 1);
}

// live_greenlets() makes handles on the owner thread from the count alone:
// one it lists stays alive while listed, and goes when the list does.
TEST_F(ReferenceCount, LiveGreenletsHoldWhatTheyList) {
  std::atomic<int> destroyed{0};
  greenlet::greenlet g([held = on_destroy(&destroyed)] {});
  const std::uint64_t id = g.id();
  std::vector<greenlet::greenlet> listed = greenlet::debug::live_greenlets();
  g = greenlet::greenlet();
  EXPECT_EQ(destroyed.load(), 0);
  bool found = false;
  for (const greenlet::greenlet& h : listed) found = found || h.id() == id;
  EXPECT_TRUE(found);
  listed.clear();
  EXPECT_EQ(destroyed.load(), 1);
}

}  // namespace reference_count_test
