// refused_close_lifetime_test.cpp: a generator dropped while its body is
// still alive (its close() refused: the body swallowed GeneratorExit) and
// held by something else: a generator made in the body has the body's
// greenlet as its body's parent. The state used to be deleted at the drop;
// the body, killed later (when the inner generator was re-parented), unwound
// into the freed state (a heap-use-after-free under AddressSanitizer). The
// state must live until the body's last use of it.
#include <memory>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using RefusedCloseLifetime = greenlet_test::GreenletTest;
using gen_t = greenlet::generator<int>;
using Strings = std::vector<std::string>;

TEST_F(RefusedCloseLifetime, BodyHeldElsewhereKeepsItsStateUntilItEnds) {
  Strings log;
  std::unique_ptr<gen_t> inner;
  auto outer = std::make_unique<gen_t>([&](gen_t::context& co) {
    struct unwound {
      Strings& log;
      ~unwound() { log.push_back("outer body unwound"); }
    } guard{log};
    inner = std::make_unique<gen_t>([](gen_t::context& ci) { ci.yield(1); });
    for (int i = 0;; ++i) {
      try {
        co.yield(i);  // uses the state: after the drop below too
      } catch (const greenlet::GeneratorExit&) {
        log.push_back("outer body swallowed GeneratorExit");
      }
    }
  });
  EXPECT_EQ(outer->next(), 0);
  outer.reset();  // close() is refused (reported); the body stays, held by inner's body
  log.push_back("outer dropped");
  EXPECT_EQ(inner->next(), 1);  // re-parents inner's body: the outer body is killed here
  inner.reset();
  EXPECT_EQ(log, (Strings{"outer body swallowed GeneratorExit", "outer dropped", "outer body unwound"}));
}

// The common cases keep their order: a dropped suspended generator's body
// unwinds during the drop; an unstarted one never runs.
TEST_F(RefusedCloseLifetime, DroppingSuspendedAndUnstartedGeneratorsStillEndsThemAtOnce) {
  Strings log;
  {
    gen_t g([&](gen_t::context& co) {
      struct unwound {
        Strings& log;
        ~unwound() { log.push_back("body unwound"); }
      } guard{log};
      co.yield(1);
      co.yield(2);
    });
    EXPECT_EQ(g.next(), 1);
    gen_t never([&] { log.push_back("never runs"); });
  }
  log.push_back("after scope");
  EXPECT_EQ(log, (Strings{"body unwound", "after scope"}));
}

}  // namespace
