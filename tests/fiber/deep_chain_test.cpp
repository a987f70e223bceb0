// deep_chain_test.cpp: dropping the only handle to the end of a long parent
// chain frees (or kills, then frees) the whole chain without recursing once
// per greenlet: each greenlet holds its parent, and freeing one released the
// next inside the same call, so a few thousand overflowed the stack of the
// greenlet that dropped the handle. Each chain here is dropped on a 64 KiB
// stack and is far deeper than that recursion allowed in a Debug build.
#include <cstddef>
#include <thread>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using DeepChain = greenlet_test::GreenletTest;

constexpr greenlet::stack_options small_guarded_stack{.size = 64 * 1024};

// on_small_stack(f) runs f in a greenlet with a 64 KiB guarded stack.
template <class F>
void on_small_stack(F f) {
  greenlet::greenlet runner(std::move(f), small_guarded_stack);
  runner.switch_();
  ASSERT_TRUE(runner.dead());
}

// Counts the run functions destroyed: one per greenlet freed unstarted.
struct DestroyCounter {
  std::vector<int>* order;
  int index;
  DestroyCounter(std::vector<int>* o, int i) : order(o), index(i) {}
  DestroyCounter(DestroyCounter&& other) noexcept : order(other.order), index(other.index) { other.order = nullptr; }
  DestroyCounter& operator=(DestroyCounter&&) = delete;
  ~DestroyCounter() {
    if (order != nullptr) order->push_back(index);
  }
};

TEST_F(DeepChain, UnstartedChainIsFreedWithoutRecursion) {
  constexpr int depth = 100000;
  std::vector<int> freed;
  freed.reserve(depth);
  on_small_stack([&freed] {
    greenlet::greenlet leaf = greenlet::getcurrent();
    for (int i = 0; i < depth; ++i) {
      leaf = greenlet::greenlet([counter = DestroyCounter(&freed, i)] {}, leaf);
    }
    EXPECT_EQ(greenlet::debug::live_count(), static_cast<std::size_t>(depth) + 1);
    leaf = greenlet::greenlet();
    EXPECT_EQ(greenlet::debug::live_count(), 1u);  // the runner itself
  });
  // Leaf first, then each parent in turn, as the recursion did.
  ASSERT_EQ(freed.size(), static_cast<std::size_t>(depth));
  for (int i = 0; i < depth; ++i) ASSERT_EQ(freed[i], depth - 1 - i) << "at " << i;
}

TEST_F(DeepChain, SuspendedChainIsKilledWithoutRecursion) {
  constexpr int depth = 2000;
  std::vector<int> killed;
  killed.reserve(depth);
  on_small_stack([&killed] {
    greenlet::greenlet runner = greenlet::getcurrent();
    greenlet::greenlet leaf = runner;
    for (int i = 0; i < depth; ++i) {
      leaf = greenlet::greenlet(
          // runner by value: with stack copying, runner's stack is not at
          // its addresses while a leaf runs.
          [&killed, runner, i]() mutable {
            try {
              runner.switch_();
            } catch (const greenlet::GreenletExit&) {
              killed.push_back(i);
              throw;
            }
          },
          leaf, greenlet::stack_options{.size = 16 * 1024, .guard_page = false});
      leaf.switch_();
    }
    leaf = greenlet::greenlet();
  });
  ASSERT_EQ(killed.size(), static_cast<std::size_t>(depth));
  for (int i = 0; i < depth; ++i) ASSERT_EQ(killed[i], depth - 1 - i) << "at " << i;
}

// Greenlets whose thread has exited are freed by whichever thread drops the
// last handle: that path went up the chain by recursion as well.
TEST_F(DeepChain, ChainOfAnExitedThreadIsFreedWithoutRecursion) {
  constexpr int depth = 100000;
  std::vector<int> freed;
  freed.reserve(depth);
  greenlet::greenlet leaf;
  std::thread([&] {
    greenlet::greenlet last = greenlet::getcurrent();
    for (int i = 0; i < depth; ++i) {
      last = greenlet::greenlet([counter = DestroyCounter(&freed, i)] {}, last);
    }
    leaf = std::move(last);
  }).join();
  EXPECT_TRUE(freed.empty()) << "unstarted greenlets stay until their last handle goes";
  on_small_stack([&leaf] { leaf = greenlet::greenlet(); });
  ASSERT_EQ(freed.size(), static_cast<std::size_t>(depth));
  EXPECT_EQ(freed.front(), depth - 1);
  EXPECT_EQ(freed.back(), 0);
}

}  // namespace
