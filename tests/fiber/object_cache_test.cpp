// object_cache_test.cpp: the per-thread cache of freed greenlet objects
// (src/fiber/object_cache.hpp), white-box, and greenlets whose objects come
// from it: sizes of every class, over-aligned run functions, bursts past the
// cache's budget.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../../src/fiber/environment.hpp"
#include "../../src/fiber/object_cache.hpp"
#include "greenlet/detail/sanitizers.hpp"
#include "support/greenlet_test.hpp"

namespace object_cache_test {

using greenlet::detail::object_cache;

void* block(std::size_t bytes) { return std::malloc(object_cache::class_bytes(object_cache::class_of(bytes))); }

TEST(ObjectCache, GivesBackTheLastObjectOfTheSameSizeClass) {
  object_cache cache;
  EXPECT_EQ(cache.take(300), nullptr);
  void* a = block(300);
  void* b = block(300);
  ASSERT_TRUE(cache.give(a, 300));
  ASSERT_TRUE(cache.give(b, 290));  // 289..320 bytes: one class
  EXPECT_EQ(cache.held_bytes(), 2 * object_cache::class_bytes(object_cache::class_of(300)));
  EXPECT_EQ(cache.take(321), nullptr);  // the next class up is empty
  EXPECT_EQ(cache.take(289), b);
  EXPECT_EQ(cache.take(320), a);
  EXPECT_EQ(cache.take(300), nullptr);
  EXPECT_EQ(cache.held_bytes(), 0u);
  std::free(a);
  std::free(b);
}

TEST(ObjectCache, SizeClassesCoverEveryRequestOfTheClass) {
  for (std::size_t bytes = 1; bytes <= object_cache::max_bytes; ++bytes) {
    const std::size_t cls = object_cache::class_of(bytes);
    ASSERT_GE(object_cache::class_bytes(cls), bytes) << bytes;
    ASSERT_LT(object_cache::class_bytes(cls) - bytes, object_cache::granule) << bytes;
  }
  EXPECT_EQ(object_cache::class_of(object_cache::granule), 0u);
  EXPECT_EQ(object_cache::class_of(object_cache::granule + 1), 1u);
}

TEST(ObjectCache, HoldsNoMoreThanItsBudgetAndDrainsToNothing) {
  object_cache cache;
  std::vector<void*> refused;
  const std::size_t each = object_cache::class_bytes(object_cache::class_of(1000));
  std::size_t given = 0;
  for (std::size_t i = 0; i < object_cache::default_budget_bytes / each + 10; ++i) {
    void* p = block(1000);
    if (cache.give(p, 1000)) {
      ++given;
    } else {
      refused.push_back(p);
    }
  }
  EXPECT_EQ(given, object_cache::default_budget_bytes / each);
  EXPECT_EQ(refused.size(), 10u);
  EXPECT_LE(cache.held_bytes(), object_cache::default_budget_bytes);
  cache.drain();  // AddressSanitizer's leak check sees whether it freed them
  EXPECT_EQ(cache.held_bytes(), 0u);
  EXPECT_EQ(cache.take(1000), nullptr);
  for (void* p : refused) std::free(p);
}

TEST(ObjectCache, ASmallerBudgetFreesWhatItHeldAndZeroKeepsNothing) {
  object_cache cache;
  ASSERT_TRUE(cache.give(block(100), 100));
  ASSERT_TRUE(cache.give(block(100), 100));
  cache.set_budget(object_cache::class_bytes(object_cache::class_of(100)));
  EXPECT_EQ(cache.held_bytes(), 0u) << "held past the new budget: freed";
  EXPECT_EQ(cache.budget(), object_cache::class_bytes(object_cache::class_of(100)));
  void* one = block(100);
  void* two = block(100);
  EXPECT_TRUE(cache.give(one, 100));
  EXPECT_FALSE(cache.give(two, 100)) << "one object of the class is the whole budget";
  std::free(two);
  cache.set_budget(0);
  EXPECT_EQ(cache.held_bytes(), 0u);
  void* three = block(100);
  EXPECT_FALSE(cache.give(three, 100));
  std::free(three);
}

TEST(ObjectCache, SizesFromTheEnvironmentAreDecimalCountsOrTheFallback) {
  const char* name = "GREENLET_TEST_SIZE_FROM_ENVIRONMENT";
  ::unsetenv(name);
  EXPECT_EQ(greenlet::detail::size_from_environment(name, 7), 7u);
  for (const auto& [text, expected] :
       std::vector<std::pair<const char*, std::size_t>>{{"", 7}, {"0", 0}, {"65536", 65536}, {"12k", 7}, {"-", 7}}) {
    ::setenv(name, text, 1);
    EXPECT_EQ(greenlet::detail::size_from_environment(name, 7), expected) << '"' << text << '"';
  }
  ::unsetenv(name);
}

// A thread's cache takes its budget from GREENLET_OBJECT_CACHE_BYTES when the
// thread starts using greenlets; with 0 it keeps no object.
TEST(ObjectCache, AThreadTakesItsBudgetFromTheEnvironment) {
  const char* name = "GREENLET_OBJECT_CACHE_BYTES";
  const char* before = std::getenv(name);
  const std::string saved = before != nullptr ? before : "";
  for (const auto& [text, budget] : std::vector<std::pair<const char*, std::size_t>>{
           {"0", 0}, {"4096", 4096}, {"", object_cache::default_budget_bytes}}) {
    ::setenv(name, text, 1);
    greenlet::debug::cached_object_bytes seen;
    std::thread([&seen] {
      for (int i = 0; i < 10; ++i) greenlet::greenlet([] {}).switch_();
      seen = greenlet::debug::cached_objects();
    }).join();
    EXPECT_EQ(seen.budget, budget) << '"' << text << '"';
#if !defined(GREENLET_ASAN)  // the cache is off under AddressSanitizer
    EXPECT_EQ(seen.held > 0, budget > 0) << '"' << text << '"';
#endif
  }
  if (before != nullptr) {
    ::setenv(name, saved.c_str(), 1);
  } else {
    ::unsetenv(name);
  }
}

using GreenletObjects = greenlet_test::GreenletTest;

// A run function of n bytes of captures, which it sums.
template <std::size_t N>
long sum_in_greenlet(long seed) {
  std::array<unsigned char, N> bytes{};
  for (std::size_t i = 0; i < N; ++i) bytes[i] = static_cast<unsigned char>(seed + static_cast<long>(i));
  greenlet::greenlet g([bytes]() {
    long sum = 0;
    for (unsigned char b : bytes) sum += b;
    return sum;
  });
  return g.switch_().get<long>();
}

template <std::size_t N>
long expected_sum(long seed) {
  long sum = 0;
  for (std::size_t i = 0; i < N; ++i) sum += static_cast<unsigned char>(seed + static_cast<long>(i));
  return sum;
}

// Objects of one size class are reused for another greenlet of that class;
// a reused object must start as a new one does (its captures, its state).
TEST_F(GreenletObjects, EverySizeClassIsMadeAfreshFromReusedMemory) {
  for (long seed = 0; seed < 50; ++seed) {
    EXPECT_EQ(sum_in_greenlet<1>(seed), expected_sum<1>(seed));
    EXPECT_EQ(sum_in_greenlet<40>(seed), expected_sum<40>(seed));
    EXPECT_EQ(sum_in_greenlet<200>(seed), expected_sum<200>(seed));
    EXPECT_EQ(sum_in_greenlet<700>(seed), expected_sum<700>(seed));
    EXPECT_EQ(sum_in_greenlet<2000>(seed), expected_sum<2000>(seed));  // past the cached sizes
  }
}

struct alignas(128) over_aligned {
  long value = 0;
};

// A run function aligned past what malloc gives gets memory aligned for it
// (the global aligned operator new, not the cache).
TEST_F(GreenletObjects, OverAlignedRunFunctionsGetAlignedObjects) {
  for (long i = 0; i < 20; ++i) {
    over_aligned captured;
    captured.value = i;
    greenlet::greenlet g([captured]() { return captured.value * 2; });
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(g.impl()) % alignof(over_aligned), 0u);
    EXPECT_EQ(g.switch_().get<long>(), i * 2);
  }
}

// More greenlets alive at once than the cache holds: each finishes with
// its own captures, whether its object is fresh or reused, and none is lost
// (live_count(); AddressSanitizer checks the memory).
TEST_F(GreenletObjects, BurstsPastTheCacheBudgetFinishEveryGreenlet) {
  for (int round = 0; round < 3; ++round) {
    std::vector<greenlet::greenlet> many;
    std::set<const void*> objects;
    for (long i = 0; i < 3000; ++i) {
      many.emplace_back([i]() { return i + 1; });
      objects.insert(many.back().impl());
    }
    EXPECT_EQ(objects.size(), many.size());  // no object handed out twice
    EXPECT_EQ(greenlet::debug::live_count(), 3000u);
    long sum = 0;
    for (greenlet::greenlet& g : many) sum += g.switch_().get<long>();
    EXPECT_EQ(sum, 3000L * 3001 / 2);
  }
  EXPECT_EQ(greenlet::debug::live_count(), 0u);
}

}  // namespace object_cache_test
