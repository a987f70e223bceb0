#include "support/greenlet_test.hpp"

#include <sstream>

namespace greenlet_test {

void GreenletTest::SetUp() {
  // Make the thread's greenlet state before counting, so that it is not
  // mistaken for a leak of the first test.
  (void)greenlet::getcurrent();
  greenlets_before_ = greenlet::debug::live_count();
  allocations_before_ = live_allocations();
}

void GreenletTest::TearDown() {
  const std::size_t greenlets_after = greenlet::debug::live_count();
  if (greenlets_after != greenlets_before_) {
    ADD_FAILURE() << "the test left " << (greenlets_after - greenlets_before_)
                  << " greenlet(s) alive: " << describe(greenlet::debug::live_greenlets());
    return;
  }
  const long allocations_after = live_allocations();
  EXPECT_EQ(allocations_after, allocations_before_)
      << "the test left " << (allocations_after - allocations_before_) << " allocation(s) made with operator new";
}

std::string describe(const std::vector<greenlet::greenlet>& greenlets) {
  std::ostringstream out;
  for (const greenlet::greenlet& g : greenlets) {
    out << "#" << g.id();
    if (!g.name().empty()) out << " \"" << g.name() << "\"";
    out << (g.dead() ? " dead" : g.started() ? " suspended" : " unstarted") << "; ";
  }
  return out.str();
}

}  // namespace greenlet_test
