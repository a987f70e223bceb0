// stack_pool_test.cpp: white-box tests of the stack pool (slabs, reuse,
// giving pages back, exhaustion) and of the unguarded-stack canary. They
// include the library's private headers by path: both are self-contained.
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../../src/fiber/stack_pool.hpp"
#include "greenlet/detail/stack_canary.hpp"
#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace {

using greenlet::detail::fiber_stack;
using greenlet::detail::stack_pool;

constexpr std::size_t small = 16 * 1024;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

using greenlet_test::kernel_mappings;

using greenlet_test::max_map_count;

bool canary_ok(const fiber_stack& s) {
  return *static_cast<const std::uint64_t*>(s.limit) == greenlet::detail::stack_canary_value(s.limit);
}

bool resident(const void* address) {
  const std::size_t page = greenlet::detail::page_size();
  auto* start = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(address) / page * page);
  unsigned char in_core = 0;
  return ::mincore(start, page, &in_core) == 0 && (in_core & 1) != 0;
}

TEST(StackPool, UnguardedStacksAreCarvedFromFewMappings) {
  constexpr int count = 20000;
  const long mappings_before = kernel_mappings();
  std::vector<fiber_stack> stacks;
  {
    stack_pool pool;
    for (int i = 0; i < count; ++i) stacks.push_back(pool.acquire(small, false));
    const long mappings_during = kernel_mappings();
    // 20,000 stacks one mapping each would be 20,000 mappings; slabs double
    // up to 64 MiB (4096 stacks of 16 KiB), so a handful.
    EXPECT_LT(pool.slab_count(), 16u);
    // (AddressSanitizer adds mappings of its own: shadow, allocator.)
    EXPECT_LT(mappings_during - mappings_before, sanitized ? 200 : 16);
    EXPECT_EQ(pool.mapped(), static_cast<std::size_t>(count));
    for (const fiber_stack& s : stacks) {
      ASSERT_FALSE(s.guarded);
      ASSERT_EQ(s.size, small);
      ASSERT_EQ(static_cast<char*>(s.base) - static_cast<char*>(s.limit), static_cast<long>(small));
      ASSERT_EQ(s.mapping, s.limit);
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(s.base) % 16, 0u);
      ASSERT_TRUE(canary_ok(s));
    }
    std::vector<fiber_stack> sorted = stacks;
    std::sort(sorted.begin(), sorted.end(),
              [](const fiber_stack& a, const fiber_stack& b) { return a.limit < b.limit; });
    for (std::size_t i = 1; i < sorted.size(); ++i) ASSERT_LE(sorted[i - 1].base, sorted[i].limit);
    // Every byte above the canary is the fiber's: fill two stacks whole and
    // check their neighbours' canaries.
    std::memset(static_cast<char*>(sorted[10].limit) + 8, 0xa5, small - 8);
    std::memset(static_cast<char*>(sorted[11].limit) + 8, 0x5a, small - 8);
    EXPECT_TRUE(canary_ok(sorted[10]));
    EXPECT_TRUE(canary_ok(sorted[11]));
    EXPECT_TRUE(canary_ok(sorted[12]));
    for (const fiber_stack& s : stacks) pool.release(s);
    EXPECT_EQ(pool.pooled_warm() + pool.pooled_cold(), static_cast<std::size_t>(count));
  }
  // The pool's destructor unmapped its slabs.
  if (!sanitized) {
    EXPECT_LE(kernel_mappings(), mappings_before + 2);
  }
}

TEST(StackPool, ReleasedStacksAreReusedWarmFirst) {
  stack_pool pool;
  fiber_stack a = pool.acquire(small, false);
  fiber_stack b = pool.acquire(small, false);
  EXPECT_EQ(a.base, b.limit) << "consecutive stacks of a slab are adjacent";
  pool.release(a);
  fiber_stack again = pool.acquire(small, false);
  EXPECT_EQ(again.limit, a.limit);
  EXPECT_TRUE(canary_ok(again));
  pool.release(again);
  pool.release(b);
  // Sizes round up to pages and get their own slabs.
  fiber_stack odd = pool.acquire(small + 1, false);
  EXPECT_EQ(odd.size, small + greenlet::detail::page_size());
  EXPECT_TRUE(canary_ok(odd));
  pool.release(odd);
}

TEST(StackPool, PagesPastTheWarmBudgetGoBackAndNeighboursKeepTheirCanary) {
  stack_pool pool;
  pool.set_warm_budget(0);
  const std::size_t page = greenlet::detail::page_size();
  std::vector<fiber_stack> s;
  for (int i = 0; i < 3; ++i) s.push_back(pool.acquire(small, false));
  for (const fiber_stack& x : s) std::memset(static_cast<char*>(x.limit) + 8, 0x77, small - 8);
  // s[0]'s top page also holds s[1]'s canary and lowest bytes.
  char* middle_of_0 = static_cast<char*>(s[0].limit) + small / 2;
  char* lowest_of_1 = static_cast<char*>(s[1].limit) + 8;
  pool.release(s[0]);
  pool.release(s[2]);
  EXPECT_EQ(pool.pooled_cold(), 2u);
  pool.trim();
  EXPECT_FALSE(resident(middle_of_0)) << "a released stack's whole pages are given back";
  EXPECT_TRUE(canary_ok(s[1])) << "the page shared with a stack in use stays";
  EXPECT_EQ(*lowest_of_1, 0x77);
  EXPECT_EQ(static_cast<unsigned char>(static_cast<char*>(s[1].base)[-1]), 0x77u);
  // Taken again, a cold stack reads as zeros and has its canary back.
  fiber_stack again = pool.acquire(small, false);
  EXPECT_TRUE(again.limit == s[0].limit || again.limit == s[2].limit);
  EXPECT_TRUE(canary_ok(again));
  EXPECT_EQ(static_cast<char*>(again.limit)[small / 2], 0);
  EXPECT_EQ(static_cast<char*>(again.limit)[page + 8], 0);
  pool.release(again);
  pool.release(s[1]);
  pool.trim();
  EXPECT_EQ(pool.pooled_warm(), 0u);
  EXPECT_EQ(pool.pooled_cold(), 3u);
}

// While released stacks are held (the event loop holds them through a
// burst), releases past the budget keep their pages and are reused first;
// trim_warm() gives back the excess, those released longest ago first, and
// keeps the most recent ones warm.
TEST(StackPool, HeldReleasesKeepTheirPagesUntilTrimmed) {
  stack_pool pool;
  pool.set_warm_budget(2);
  pool.hold_released(true);
  std::vector<fiber_stack> s;
  for (std::size_t i = 0; i < stack_pool::purge_batch + 10; ++i) {
    s.push_back(pool.acquire(small, false));
    static_cast<char*>(s.back().base)[-100] = 1;
  }
  for (const fiber_stack& x : s) pool.release(x);
  EXPECT_EQ(pool.pooled_warm(), s.size());
  EXPECT_EQ(pool.pooled_cold(), 0u);
  for (const fiber_stack& x : s) ASSERT_TRUE(resident(static_cast<char*>(x.base) - 100));
  // Reuse takes the last released, pages and all.
  fiber_stack again = pool.acquire(small, false);
  EXPECT_EQ(again.limit, s.back().limit);
  EXPECT_EQ(static_cast<char*>(again.base)[-100], 1);
  pool.release(again);

  pool.trim_warm();
  EXPECT_EQ(pool.pooled_warm(), 2u);
  EXPECT_EQ(pool.pooled_cold(), s.size() - 2);
  EXPECT_FALSE(resident(static_cast<char*>(s.front().base) - 100)) << "released first, given back";
  EXPECT_TRUE(resident(static_cast<char*>(s.back().base) - 100)) << "released last, kept within the budget";
  // Still held: the next releases past the budget stay warm again.
  auto take_three_and_give_back = [&pool] {
    std::vector<fiber_stack> three;
    for (int i = 0; i < 3; ++i) three.push_back(pool.acquire(small, false));
    for (const fiber_stack& x : three) pool.release(x);
  };
  take_three_and_give_back();
  EXPECT_EQ(pool.pooled_warm(), 3u);
  // Letting go trims too, and later releases follow the budget at once.
  pool.hold_released(false);
  EXPECT_EQ(pool.pooled_warm(), 2u);
  take_three_and_give_back();
  EXPECT_EQ(pool.pooled_warm(), 2u);
}

TEST(StackPool, ReleasesPastTheBudgetAreBatched) {
  stack_pool pool;
  pool.set_warm_budget(4);
  std::vector<fiber_stack> s;
  for (std::size_t i = 0; i < stack_pool::purge_batch + 10; ++i) {
    s.push_back(pool.acquire(small, false));
    static_cast<char*>(s.back().base)[-100] = 1;
  }
  for (const fiber_stack& x : s) pool.release(x);
  EXPECT_EQ(pool.pooled_warm(), 4u);
  EXPECT_EQ(pool.pooled_cold(), s.size() - 4);
  // The first purge_batch cold ones went back in one batch; the rest wait.
  EXPECT_FALSE(resident(static_cast<char*>(s[4].base) - 100));
  EXPECT_TRUE(resident(static_cast<char*>(s.back().base) - 100));
  pool.trim();
  EXPECT_FALSE(resident(static_cast<char*>(s.back().base) - 100));
}

TEST(StackPool, GuardedStacksHaveAGuardPageBelow) {
  stack_pool pool;
  const std::size_t page = greenlet::detail::page_size();
  fiber_stack g = pool.acquire(small, true);
  EXPECT_TRUE(g.guarded);
  EXPECT_EQ(static_cast<char*>(g.mapping) + page, g.limit);
  EXPECT_EQ(g.mapping_size, small + page);
  unsigned char in_core = 0;
  EXPECT_EQ(::mincore(g.mapping, page, &in_core), 0);
  pool.release(g);
  fiber_stack again = pool.acquire(small, true);
  // Rebuilt from where its free-list node is: the same stack, field by field.
  EXPECT_EQ(again.limit, g.limit);
  EXPECT_EQ(again.mapping, g.mapping);
  EXPECT_EQ(again.mapping_size, g.mapping_size);
  EXPECT_EQ(again.base, g.base);
  EXPECT_EQ(again.size, g.size);
  EXPECT_TRUE(again.guarded);
  pool.release(again);
  EXPECT_EQ(pool.kernel_mappings(), 2u);
}

// Guarded stacks of the size used last take an inline path (a pop, a push);
// any other size, or a full pool, the general one. Alternating sizes, every
// stack comes back at its own size, and the pool keeps at most 1024 of a
// size: the rest are unmapped.
TEST(StackPool, GuardedStacksOfEachSizeComeBackAtTheirSize) {
  stack_pool pool;
  const std::size_t page = greenlet::detail::page_size();
  fiber_stack a = pool.acquire(small, true);
  fiber_stack b = pool.acquire(2 * small, true);
  fiber_stack odd = pool.acquire(small + 1, true);  // rounds up to a page more
  EXPECT_EQ(odd.size, small + page);
  pool.release(a);
  pool.release(b);
  pool.release(odd);
  for (int round = 0; round < 3; ++round) {
    fiber_stack again_b = pool.acquire(2 * small, true);
    fiber_stack again_a = pool.acquire(small, true);
    fiber_stack again_odd = pool.acquire(small + page, true);
    EXPECT_EQ(again_b.base, b.base);
    EXPECT_EQ(again_b.size, 2 * small);
    EXPECT_EQ(again_a.base, a.base);
    EXPECT_EQ(again_a.size, small);
    EXPECT_EQ(again_odd.base, odd.base);
    EXPECT_EQ(again_odd.mapping_size, small + 2 * page);
    pool.release(again_odd);
    pool.release(again_a);
    pool.release(again_b);
  }
  EXPECT_EQ(pool.kernel_mappings(), 6u);

  std::vector<fiber_stack> many;
  for (int i = 0; i < 1030; ++i) many.push_back(pool.acquire(small, true));
  for (const fiber_stack& each : many) pool.release(each);
  EXPECT_EQ(pool.kernel_mappings(), 2u * (1024 + 2));
}

// A released stack's slot is found by dividing its offset in the slab by
// the stack size (as a shift and a multiplication, stack_pool::index_in()):
// sizes whose page count is odd, even, or a power of two all come back to
// the very slot released, from anywhere in the slab.
TEST(StackPool, ReleasedStackOfAnySizeComesBackToItsOwnSlot) {
  const std::size_t page = greenlet::detail::page_size();
  for (std::size_t pages : {3, 5, 6, 7, 12, 16, 33}) {
    SCOPED_TRACE(pages);
    stack_pool pool;
    std::vector<fiber_stack> s;
    for (int i = 0; i < 20; ++i) s.push_back(pool.acquire(pages * page, false));
    for (int i : {13, 2, 19, 7}) {
      pool.release(s[static_cast<std::size_t>(i)]);
      fiber_stack again = pool.acquire(pages * page, false);
      EXPECT_EQ(again.limit, s[static_cast<std::size_t>(i)].limit) << "slot " << i;
      EXPECT_TRUE(canary_ok(again));
      s[static_cast<std::size_t>(i)] = again;
    }
    for (const fiber_stack& each : s) pool.release(each);
    EXPECT_EQ(pool.pooled_warm() + pool.pooled_cold(), s.size());
  }
}

// exhaust_stacks() is the child's work in ExhaustionNamesTheLimitAndTheFixes.
[[noreturn, maybe_unused]] void exhaust_stacks() {
  auto fail = [](const char* why) {
    std::fprintf(stderr, "%s\n", why);
    std::_Exit(1);
  };
  auto* pool = new stack_pool;
  std::vector<fiber_stack> held;
  held.reserve(100000);
  std::string guarded_message, slab_message;
  try {
    for (int i = 0; i < 100000; ++i) held.push_back(pool->acquire(small, true));
  } catch (const greenlet::error& e) {
    if (e.code() != greenlet::errc::stack_exhausted) fail("guarded: wrong code");
    guarded_message = e.what();
  }
  if (guarded_message.empty()) fail("guarded stacks never ran out");
  if (pool->mapped() > 40000) fail("more guarded stacks than vm.max_map_count allows");
  for (const fiber_stack& s : held) pool->release(s);
  delete pool;  // gives the mappings back
  // Unguarded stacks come many to a mapping; cap the address space so
  // that the next slabs cannot be mapped.
  auto* slabs = new stack_pool;  // leaked: the child exits
  for (int i = 0; i < 1000; ++i) slabs->acquire(small, false);
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  statm >> pages;
  rlimit cap{};
  cap.rlim_cur = cap.rlim_max = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + (256L << 20);
  if (::setrlimit(RLIMIT_AS, &cap) != 0) fail("setrlimit");
  try {
    for (int i = 0; i < 1000000; ++i) slabs->acquire(small, false);
  } catch (const greenlet::error& e) {
    if (e.code() != greenlet::errc::stack_exhausted) fail("slab: wrong code");
    slab_message = e.what();
  }
  if (slab_message.empty()) fail("slabs never ran out");
  std::fprintf(stderr, "GUARDED: %s\nSLAB: %s\n", guarded_message.c_str(), slab_message.c_str());
  std::_Exit(0);
}

// Exhaustion, in a child process: guarded stacks until vm.max_map_count
// refuses, then unguarded ones until an address-space limit does.
TEST(StackPoolDeathTest, ExhaustionNamesTheLimitAndTheFixes) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer needs the mappings and address space this test uses up";
#else
  if (max_map_count() > 200000) GTEST_SKIP() << "vm.max_map_count is raised on this machine";
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(exhaust_stacks(), ::testing::ExitedWithCode(0),
              "GUARDED: greenlet: cannot map a [0-9]+-byte guarded fiber stack .*vm.max_map_count is [0-9]+.*"
              "two mappings.*unguarded.*sysctl -w vm.max_map_count.*\n"
              "SLAB: greenlet: cannot map a [0-9]+-byte slab of unguarded fiber stacks .*[0-9]+ stacks mapped.*"
              "vm.max_map_count");
#endif
}

// The canary, seen through greenlets.
using StackCanary = greenlet_test::GreenletTest;

TEST_F(StackCanary, SuspendedGreenletOnAnUnguardedStackHasOne) {
  greenlet::greenlet g(
      [] { greenlet::getcurrent().parent().switch_(); },
      greenlet::stack_options{.size = small, .guard_page = false, .mode = greenlet::stack_mode::separate});
  g.set_name("canaried");
  g.switch_();  // now suspended
  const greenlet::detail::greenlet_impl* impl = g.impl();
  EXPECT_TRUE(greenlet::detail::has_stack_canary(impl));
  EXPECT_TRUE(greenlet::detail::stack_canary_intact(impl));

  // Corrupt it as an overflow would, check, and put it back.
  auto* word = static_cast<std::uint64_t*>(impl->stack_limit);
  const std::uint64_t saved = *word;
  *word = 0x4141414141414141ULL;
  EXPECT_FALSE(greenlet::detail::stack_canary_intact(impl));
  const std::string report = greenlet::detail::stack_canary_report(impl);
  EXPECT_NE(report.find("stack overflow in greenlet #" + std::to_string(g.id()) + " \"canaried\""), std::string::npos)
      << report;
  EXPECT_NE(report.find("unguarded 16384-byte stack"), std::string::npos) << report;
  EXPECT_NE(report.find("stack_options{.size = 65536"), std::string::npos) << report;
  EXPECT_NE(report.find("vm.max_map_count"), std::string::npos) << report;
  *word = saved;
  EXPECT_TRUE(greenlet::detail::stack_canary_intact(impl));
  g.switch_();
  EXPECT_TRUE(g.dead());
  EXPECT_FALSE(greenlet::detail::has_stack_canary(g.impl()));
  EXPECT_TRUE(greenlet::detail::stack_canary_intact(g.impl()));
}

TEST_F(StackCanary, GuardedMainAndUnstartedGreenletsHaveNone) {
  greenlet::greenlet guarded([] { greenlet::getcurrent().parent().switch_(); },
                             greenlet::stack_options{.size = small, .mode = greenlet::stack_mode::separate});
  guarded.switch_();
  EXPECT_FALSE(greenlet::detail::has_stack_canary(guarded.impl()));
  EXPECT_TRUE(greenlet::detail::stack_canary_intact(guarded.impl()));
  EXPECT_FALSE(greenlet::detail::has_stack_canary(greenlet::getcurrent().impl()));
  EXPECT_TRUE(greenlet::detail::stack_canary_intact(greenlet::getcurrent().impl()));
  greenlet::greenlet unstarted(
      [] {}, greenlet::stack_options{.size = small, .guard_page = false, .mode = greenlet::stack_mode::separate});
  EXPECT_TRUE(greenlet::detail::stack_canary_intact(unstarted.impl()));
  guarded.switch_();
}

void smash_canary() {
  greenlet::greenlet g(
      [] { greenlet::getcurrent().parent().switch_(); },
      greenlet::stack_options{.size = small, .guard_page = false, .mode = greenlet::stack_mode::separate});
  g.set_name("smasher");
  g.switch_();
  *static_cast<std::uint64_t*>(g.impl()->stack_limit) = 0;
  greenlet::detail::check_stack_canary(g.impl());
}

TEST(StackCanaryDeathTest, BrokenCanaryEndsWithReadableReport) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(smash_canary(),
               "stack overflow in greenlet #[0-9]+ \"smasher\": the canary at the bottom of its unguarded "
               "16384-byte stack was overwritten");
}

// fill(depth) uses ~1 KiB of stack per frame and writes all of it.
[[maybe_unused]] __attribute__((noinline)) long fill(int depth) {
  char frame[1024];
  std::memset(frame, 0x33 + depth, sizeof frame);
  __asm__ volatile("" : : "r"(frame) : "memory");
  const long below = depth == 0 ? 0 : fill(depth - 1);
  __asm__ volatile("" : : "r"(frame) : "memory");
  return below + frame[depth % sizeof frame];
}

[[maybe_unused]] void overflow_unguarded() {
  const greenlet::stack_options unguarded{.size = small, .guard_page = false, .mode = greenlet::stack_mode::separate};
  greenlet::greenlet below([] { greenlet::getcurrent().parent().switch_(); }, unguarded);
  below.switch_();
  greenlet::greenlet deep([] { greenlet::getcurrent().parent().switch_(fill(20)); }, unguarded);
  deep.set_name("deep");
  deep.switch_();
  greenlet::detail::check_stack_canary(deep.impl());
}

// A real overflow: a greenlet on a 16 KiB unguarded stack recurses 20 KiB
// deep (into the stack below its own, a suspended greenlet's), switches
// back, and the check the switch path makes catches it.
TEST(StackCanaryDeathTest, RealOverflowIsCaught) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the overflow writes over another greenlet's stack, which AddressSanitizer reports itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(overflow_unguarded(), "stack overflow in greenlet #[0-9]+ \"deep\"");
#endif
}

[[maybe_unused]] void overflow_then_finish() {
  const greenlet::stack_options unguarded{.size = small, .guard_page = false, .mode = greenlet::stack_mode::separate};
  greenlet::greenlet below([] { greenlet::getcurrent().parent().switch_(); }, unguarded);
  below.switch_();
  greenlet::greenlet deep([] { return fill(20); }, unguarded);
  deep.switch_();  // it overflowed and died; its stack went back to the pool
}

// The same overflow in a greenlet that finishes at once: caught when its
// stack goes back to the pool (by the switch path's check when it makes one,
// else by the pool's own).
TEST(StackCanaryDeathTest, OverflowInAFinishedGreenletIsCaught) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the overflow writes over another greenlet's stack, which AddressSanitizer reports itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(overflow_then_finish(), "stack overflow.*canary");
#endif
}

}  // namespace
