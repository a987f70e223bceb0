// stack_copy_test.cpp: stack_mode::shared (stack copying). The whole fiber
// suite also runs with it as the process default (ctest's shared_stack.*
// tests); these cases aim at what is particular to it: several shared
// greenlets whose frames overlap on the one shared stack keep their locals,
// the copier path (a shared greenlet switching to another), dying into a
// swapped-out parent, killing a swapped-out greenlet, and mixing modes.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using StackCopy = greenlet_test::GreenletTest;

constexpr greenlet::stack_options on_shared_stack{.mode = greenlet::stack_mode::shared};
constexpr greenlet::stack_options on_own_stack{.mode = greenlet::stack_mode::separate};

// fill_and_check(seed, rounds, partner) keeps a stack array tagged with seed
// and switches to partner `rounds` times; each time it is resumed the array
// must still hold seed's pattern, although partner's frames were on the same
// addresses meanwhile. Returns the sum of the array.
long fill_and_check(int seed, int rounds, greenlet::greenlet* partner) {
  std::array<int, 512> local;  // 2 KiB of frame worth saving
  for (std::size_t i = 0; i < local.size(); ++i) local[i] = seed * 1000 + static_cast<int>(i);
  for (int r = 0; r < rounds; ++r) {
    partner->switch_(seed);
    for (std::size_t i = 0; i < local.size(); ++i) {
      if (local[i] != seed * 1000 + static_cast<int>(i)) {
        throw std::runtime_error("greenlet " + std::to_string(seed) + " lost its stack bytes at " + std::to_string(i));
      }
    }
  }
  return std::accumulate(local.begin(), local.end(), 0L);
}

TEST_F(StackCopy, TwoSharedGreenletsPingPongKeepTheirLocals) {
  std::vector<int> seen;
  greenlet::greenlet a, b;
  a = greenlet::greenlet([&] { return fill_and_check(1, 50, &b); }, on_shared_stack);
  b = greenlet::greenlet(
      [&](int from) {
        seen.push_back(from);
        std::array<int, 256> mine;
        mine.fill(7);
        for (int r = 0; r < 49; ++r) seen.push_back(a.switch_().get<int>());
        a.switch_();  // a finishes and its result goes to its parent, main
        return std::accumulate(mine.begin(), mine.end(), 0);
      },
      on_shared_stack);
  long expected = 0;
  for (int i = 0; i < 512; ++i) expected += 1000 + i;
  EXPECT_EQ(a.switch_().get<long>(), expected);
  EXPECT_TRUE(a.dead());
  EXPECT_FALSE(b.dead());
  ASSERT_EQ(seen.size(), 50u);
  for (int v : seen) EXPECT_EQ(v, 1);
  EXPECT_EQ(b.switch_().get<int>(), 7 * 256);
  EXPECT_TRUE(b.dead());
}

TEST_F(StackCopy, ManySuspendedSharedGreenletsResumeInAnyOrder) {
  constexpr int count = 200;
  std::vector<greenlet::greenlet> greenlets;
  for (int i = 0; i < count; ++i) {
    greenlets.emplace_back(
        [](int n) {
          std::array<int, 64> local;
          local.fill(n);
          int rounds = 0;
          for (;;) {
            greenlet::value v = greenlet::getcurrent().parent().switch_(local[static_cast<std::size_t>(n % 64)]);
            if (v.get<int>() < 0) break;
            ++rounds;
          }
          return std::accumulate(local.begin(), local.end(), 0) + rounds;
        },
        on_shared_stack);
  }
  for (int i = 0; i < count; ++i) ASSERT_EQ(greenlets[static_cast<std::size_t>(i)].switch_(i).get<int>(), i);
  // Resume them backwards, then every third, so each restore lands on bytes
  // another greenlet left.
  for (int i = count - 1; i >= 0; --i) ASSERT_EQ(greenlets[static_cast<std::size_t>(i)].switch_(0).get<int>(), i);
  for (int i = 0; i < count; i += 3) ASSERT_EQ(greenlets[static_cast<std::size_t>(i)].switch_(0).get<int>(), i);
  for (int i = 0; i < count; ++i) {
    const int rounds = 1 + (i % 3 == 0 ? 1 : 0);
    EXPECT_EQ(greenlets[static_cast<std::size_t>(i)].switch_(-1).get<int>(), 64 * i + rounds);
  }
}

// deep_switch(depth, to) switches to `to` from `depth` KiB deeper in the stack.
void deep_switch(int depth, greenlet::greenlet& to) {
  std::array<char, 1024> frame;
  frame.fill(static_cast<char>(depth));
  if (depth > 0) {
    deep_switch(depth - 1, to);
  } else {
    to.switch_();
  }
  if (frame[0] != static_cast<char>(depth)) throw std::runtime_error("frame lost its bytes");
}

TEST_F(StackCopy, SavedBytesShrinkWhenAGreenletSuspendsShallowerThanBefore) {
  // a suspends through the copier first 16 KiB deep, then shallow: its heap
  // copy is resized down (realloc) and must stay intact. AddressSanitizer
  // checks the buffer handling here.
  int rounds = 0;
  greenlet::greenlet a, b;
  b = greenlet::greenlet(
      [&] {
        for (;;) {
          ++rounds;
          a.switch_();
        }
      },
      on_shared_stack);
  a = greenlet::greenlet(
      [&] {
        deep_switch(16, b);  // saved ~16 KiB
        b.switch_();         // saved a few hundred bytes: shrunk
        deep_switch(4, b);   // grows again
        b.switch_();
        return 7;
      },
      on_shared_stack);
  EXPECT_EQ(a.switch_().get<int>(), 7);
  EXPECT_EQ(rounds, 4);
}

TEST_F(StackCopy, ChildDiesIntoSwappedOutParentAndExceptionsCross) {
  // parent and child are both shared: the child's end jumps through the
  // copier into the parent's restored bytes; its exception comes along.
  std::string log;
  greenlet::greenlet parent(
      [&] {
        std::string here = "parent-local";
        greenlet::greenlet child([] { throw std::invalid_argument("from child"); }, on_shared_stack);
        try {
          child.switch_();
        } catch (const std::invalid_argument& e) {
          log += e.what();
        }
        greenlet::greenlet returner([](int x) { return x * 3; }, on_shared_stack);
        log += " " + std::to_string(returner.switch_(14).get<int>());
        log += " " + here;
      },
      on_shared_stack);
  parent.switch_();
  EXPECT_EQ(log, "from child 42 parent-local");
}

TEST_F(StackCopy, ReleasingASwappedOutGreenletUnwindsItsStack) {
  std::vector<std::string> log;
  struct Guard {
    std::vector<std::string>* log;
    std::string name;
    ~Guard() { log->push_back("unwound " + name); }
  };
  {
    greenlet::greenlet first(
        [&] {
          Guard g{&log, "first"};
          greenlet::getcurrent().parent().switch_();
          log.push_back("first resumed?");
        },
        on_shared_stack);
    greenlet::greenlet second(
        [&] {
          Guard g{&log, "second"};
          greenlet::getcurrent().parent().switch_();
        },
        on_shared_stack);
    first.switch_();
    second.switch_();  // first's bytes are copied out now
  }
  // Handles dropped in reverse order: second (on the stack) then first (swapped out).
  EXPECT_EQ(log, (std::vector<std::string>{"unwound second", "unwound first"}));
}

TEST_F(StackCopy, SharedAndSeparateGreenletsMix) {
  std::vector<int> order;
  greenlet::greenlet s1, s2, p1;
  s1 = greenlet::greenlet(
      [&] {
        order.push_back(1);
        p1.switch_();
        order.push_back(4);
        s2.switch_();
        order.push_back(6);
      },
      on_shared_stack);
  p1 = greenlet::greenlet(
      [&] {
        order.push_back(2);
        s2.switch_();
        order.push_back(5);  // never reached: s2 returns to its parent, main
      },
      on_own_stack);
  s2 = greenlet::greenlet(
      [&] {
        order.push_back(3);
        s1.switch_();
        order.push_back(7);
      },
      on_shared_stack);
  s1.switch_();
  // s1 -> p1 -> s2 -> s1 -> s2 -> (s2 dies) main; s1 and p1 stay suspended.
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 7}));
  EXPECT_TRUE(s2.dead());
  EXPECT_FALSE(s1.dead());
  EXPECT_NE(p1.stack_size(), s1.stack_size());  // its own stack, not the shared one
}

TEST_F(StackCopy, ThreadModeIsPerThreadAndOptionsWin) {
  const greenlet::stack_mode before = greenlet::thread_stack_mode();
  greenlet::set_thread_stack_mode(greenlet::stack_mode::shared);
  EXPECT_EQ(greenlet::thread_stack_mode(), greenlet::stack_mode::shared);
  greenlet::greenlet a([] { return greenlet::getcurrent().stack_size(); });
  greenlet::greenlet b([] { return greenlet::getcurrent().stack_size(); });
  greenlet::greenlet own([] { return greenlet::getcurrent().stack_size(); }, on_own_stack);
  const std::size_t a_size = a.switch_().get<std::size_t>();
  EXPECT_EQ(a_size, b.switch_().get<std::size_t>());  // one shared stack
  EXPECT_GE(a_size, std::size_t{8} << 20);
  EXPECT_EQ(own.switch_().get<std::size_t>(), greenlet::default_stack_size());
  std::thread other([] {
    // Another thread keeps the process default.
    const char* env = std::getenv("GREENLET_STACK_MODE");
    const bool env_shared = env != nullptr && std::string(env) == "shared";
    EXPECT_EQ(greenlet::thread_stack_mode(),
              env_shared ? greenlet::stack_mode::shared : greenlet::stack_mode::separate);
    greenlet::set_thread_stack_mode(greenlet::stack_mode::separate);
    EXPECT_EQ(greenlet::thread_stack_mode(), greenlet::stack_mode::separate);
  });
  other.join();
  EXPECT_EQ(greenlet::thread_stack_mode(), greenlet::stack_mode::shared);
  greenlet::set_thread_stack_mode(greenlet::stack_mode::inherit);
  EXPECT_EQ(greenlet::thread_stack_mode(), before);
}

TEST_F(StackCopy, AskingForMoreThanTheSharedStackGetsASeparateOne) {
  const std::size_t big = std::size_t{64} << 20;
  greenlet::greenlet g([] { return greenlet::getcurrent().stack_size(); },
                       greenlet::stack_options{.size = big, .mode = greenlet::stack_mode::shared});
  EXPECT_EQ(g.switch_().get<std::size_t>(), big);
}

}  // namespace
