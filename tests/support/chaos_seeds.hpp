// chaos_seeds.hpp: what the seeded chaos tests share (tests/README.md, "Chaos tests"): the seeds a
// run takes, a fixture for tests that use SCOPED_TRACE, and how a failure names an exception.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>
#include <vector>

#include "support/greenlet_test.hpp"

namespace greenlet_test {

// chaos_seeds(fixed) is the seeds a chaos test runs: 1..fixed in CI, 1..n with
// GREENLET_CHAOS_SEEDS=n, or s alone with GREENLET_CHAOS_SEED=s (to replay a failure).
inline std::vector<std::uint32_t> chaos_seeds(std::uint32_t fixed) {
  std::vector<std::uint32_t> list;
  if (const char* one = std::getenv("GREENLET_CHAOS_SEED")) {
    list.push_back(static_cast<std::uint32_t>(std::strtoul(one, nullptr, 10)));
    return list;
  }
  std::uint32_t n = fixed;
  if (const char* many = std::getenv("GREENLET_CHAOS_SEEDS")) {
    n = static_cast<std::uint32_t>(std::strtoul(many, nullptr, 10));
  }
  for (std::uint32_t s = 1; s <= n; ++s) list.push_back(s);
  return list;
}

// TracedGreenletTest is GreenletTest for tests that use SCOPED_TRACE: gtest keeps the per-thread
// stack of traces (a std::vector) once grown, which the fixture would count as a leak of the first
// such test; it is grown here before the count starts.
class TracedGreenletTest : public GreenletTest {
 protected:
  void SetUp() override {
    {
      SCOPED_TRACE("1");
      SCOPED_TRACE("2");
      SCOPED_TRACE("3");
      SCOPED_TRACE("4");
      SCOPED_TRACE("5");
      SCOPED_TRACE("6");
      SCOPED_TRACE("7");
      SCOPED_TRACE("8");
    }
    GreenletTest::SetUp();
  }
};

// describe_exception(e) is e's type (mangled) and what(), for a chaos failure's message.
inline std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return std::string(typeid(ex).name()) + ": " + ex.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

}  // namespace greenlet_test
