// stack_host_test.cpp: stacks whose top bytes hold the objects of a layer
// above (include/greenlet/detail/stack_host.hpp), as the event loop's
// compact_tasks keeps a task there: the greenlet runs below those bytes, and
// the stack goes back to the pool only when the greenlet's object and the
// caller's have both gone, or never if they outlive the stack's thread.
#include <cstring>
#include <thread>

#include "greenlet/detail/sanitizers.hpp"
#include "greenlet/detail/stack_host.hpp"
#include "support/greenlet_test.hpp"

namespace stack_host_test {

namespace fiber = ::greenlet::detail;
// Aliases, not using-declarations: from the last one on, `greenlet::` names the class.
using stack_mode = ::greenlet::stack_mode;
using stack_options = ::greenlet::stack_options;
using greenlet = ::greenlet::greenlet;

constexpr stack_options unguarded_32k{.size = 32 * 1024, .guard_page = false, .mode = stack_mode::separate};
constexpr stack_options guarded_32k{.size = 32 * 1024, .guard_page = true, .mode = stack_mode::separate};

// host_or_skip(bytes, stack) is a host, or null where hosting is off by design
// (the sanitizers; the caller skips then).
fiber::stack_host* host_or_skip(std::size_t bytes, const stack_options& stack) {
  fiber::stack_host* h = fiber::acquire_stack_host(bytes, stack);
#if !defined(GREENLET_ASAN)
  EXPECT_NE(h, nullptr);
#endif
  return h;
}

int depth_sum(int n) {
  volatile char pad[256];
  std::memset(const_cast<char*>(pad), n, sizeof pad);
  return n == 0 ? 0 : pad[n % 256] + depth_sum(n - 1);
}

class StackHost : public ::testing::TestWithParam<stack_options> {};

TEST_P(StackHost, AGreenletRunsBelowTheHostedBytesAndLeavesThemIntact) {
  fiber::stack_host* h = host_or_skip(600, GetParam());
  if (h == nullptr) GTEST_SKIP() << "hosting is off under the sanitizers";
  auto* memory = static_cast<unsigned char*>(fiber::stack_host_memory(h));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(memory) % fiber::hosted_alignment, 0u);
  std::memset(memory, 0xA5, 600);
  // The greenlet's object in the first bytes, as a task's; the pattern after it.
  const std::size_t object_room = fiber::hosted_size(greenlet::hosted_object_size<std::function<int()>>());
  ASSERT_LT(object_room, 600u);
  std::memset(memory + object_room, 0x5A, 600 - object_room);
  void* seen_base = nullptr;
  std::function<int()> run = [&] {
    seen_base = greenlet::getcurrent().impl()->stack_base;
    return depth_sum(40);  // ~10 KiB of frames, written below the hosted bytes
  };
  greenlet g = greenlet::hosted_on_stack(run, h, memory, GetParam());
  EXPECT_EQ(g.impl(), reinterpret_cast<fiber::greenlet_impl*>(memory));
  EXPECT_EQ(g.switch_().get<int>(), depth_sum(40));
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(seen_base, memory) << "the greenlet's stack ends where the hosted bytes begin";
  for (std::size_t i = object_room; i < 600; ++i) ASSERT_EQ(memory[i], 0x5A) << i;
  g = greenlet();  // the greenlet object goes: its reference to the host with it
  for (std::size_t i = object_room; i < 600; ++i) ASSERT_EQ(memory[i], 0x5A) << i;
  fiber::release_stack_host(h);
}

TEST_P(StackHost, TheStackGoesBackToThePoolWhenBothReferencesHaveGone) {
  // Room for the greenlet object (its run function is a captureless lambda) and some more.
  const std::size_t bytes = fiber::hosted_size(greenlet::hosted_object_size<int (*)()>()) + 64;
  for (bool greenlet_last : {false, true}) {
    fiber::stack_host* h = host_or_skip(bytes, GetParam());
    if (h == nullptr) GTEST_SKIP() << "hosting is off under the sanitizers";
    void* memory = fiber::stack_host_memory(h);
    int (*seven)() = [] { return 7; };
    greenlet g = greenlet::hosted_on_stack(seven, h, memory, GetParam());
    EXPECT_EQ(g.switch_().get<int>(), 7);
    if (greenlet_last) {
      fiber::release_stack_host(h);
      // Still held by the greenlet object: a new host gets another stack.
      fiber::stack_host* other = fiber::acquire_stack_host(bytes, GetParam());
      EXPECT_NE(other, h);
      fiber::release_stack_host(other);
      g = greenlet();
    } else {
      g = greenlet();
      fiber::stack_host* other = fiber::acquire_stack_host(bytes, GetParam());
      EXPECT_NE(other, h);
      fiber::release_stack_host(other);
      fiber::release_stack_host(h);
    }
    // Both gone: the pool gives the stack out again, at the next request of its size (LIFO).
    fiber::stack_host* again = fiber::acquire_stack_host(bytes, GetParam());
    EXPECT_EQ(again, h) << "the freed stack was not reused; greenlet_last = " << greenlet_last;
    fiber::release_stack_host(again);
  }
}

TEST_P(StackHost, AnUnstartedGreenletDroppedReleasesItsHostReference) {
  const std::size_t bytes = fiber::hosted_size(greenlet::hosted_object_size<std::function<void()>>());
  fiber::stack_host* h = host_or_skip(bytes, GetParam());
  if (h == nullptr) GTEST_SKIP() << "hosting is off under the sanitizers";
  bool ran = false;
  {
    std::function<void()> run = [&ran] { ran = true; };
    greenlet g = greenlet::hosted_on_stack(run, h, fiber::stack_host_memory(h), GetParam());
  }
  EXPECT_FALSE(ran);
  fiber::release_stack_host(h);
  fiber::stack_host* again = host_or_skip(bytes, GetParam());
  EXPECT_EQ(again, h) << "the stack came back to the pool";
  fiber::release_stack_host(again);
}

TEST_P(StackHost, ASuspendedGreenletKilledOnItsLastReleaseUnwindsBelowTheHostedBytes) {
  const std::size_t object_room = fiber::hosted_size(greenlet::hosted_object_size<std::function<void()>>());
  const std::size_t bytes = object_room + 256;
  fiber::stack_host* h = host_or_skip(bytes, GetParam());
  if (h == nullptr) GTEST_SKIP() << "hosting is off under the sanitizers";
  auto* memory = static_cast<unsigned char*>(fiber::stack_host_memory(h));
  std::memset(memory + object_room, 0x3C, 256);
  int unwound = 0;
  {
    struct counts_unwinding {
      int* n;
      ~counts_unwinding() { ++*n; }
    };
    std::function<void()> run = [&unwound] {
      counts_unwinding guard{&unwound};
      greenlet::getcurrent().parent().switch_();
    };
    greenlet g = greenlet::hosted_on_stack(run, h, memory, GetParam());
    g.switch_();
    EXPECT_EQ(unwound, 0);
  }
  EXPECT_EQ(unwound, 1);
  for (std::size_t i = object_room; i < bytes; ++i) ASSERT_EQ(memory[i], 0x3C) << i;
  fiber::release_stack_host(h);
}

INSTANTIATE_TEST_SUITE_P(Stacks, StackHost, ::testing::Values(unguarded_32k, guarded_32k),
                         [](const auto& info) { return info.param.guard_page ? "guarded" : "unguarded"; });

TEST(StackHostRefusals, TooManyBytesOrStackCopyingGetNoHost) {
  EXPECT_EQ(fiber::acquire_stack_host(fiber::max_hosted_bytes + 1, unguarded_32k), nullptr);
  EXPECT_EQ(fiber::acquire_stack_host(64, stack_options{.mode = stack_mode::shared}), nullptr);
}

TEST(StackHostRefusals, AHostOutlivingItsThreadKeepsItsMemory) {
  fiber::stack_host* h = nullptr;
  std::thread([&h] {
    h = fiber::acquire_stack_host(128, unguarded_32k);
    if (h != nullptr) std::memset(fiber::stack_host_memory(h), 0x77, 128);
  }).join();
  if (h == nullptr) GTEST_SKIP() << "hosting is off under the sanitizers";
  // The thread and its pool are gone; the host's memory is still there, and a
  // release here, on another thread, keeps it rather than give it to this
  // thread's pool.
  auto* memory = static_cast<unsigned char*>(fiber::stack_host_memory(h));
  for (int i = 0; i < 128; ++i) ASSERT_EQ(memory[i], 0x77) << i;
  fiber::release_stack_host(h);
  fiber::stack_host* mine = fiber::acquire_stack_host(128, unguarded_32k);
  ASSERT_NE(mine, nullptr);
  EXPECT_NE(mine, h);
  fiber::release_stack_host(mine);
}

}  // namespace stack_host_test
