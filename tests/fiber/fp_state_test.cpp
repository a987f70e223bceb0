// fp_state_test.cpp: the floating-point state a switch keeps and the one it
// makes canonical (src/fiber/switch.cpp, "Keeping every switch on
// jump_fcontext's fast path"). The rounding mode is each greenlet's own, as
// it is each thread's; the status flags are not kept: every context runs
// with the precision flag set and the other flags clear, so that a jump
// never loads an MXCSR different from the running one (on some CPUs that
// costs ~70 ns a switch). Runs in both stack modes (the shared_stack. pass).
#include <cfenv>

#include "fiber/test_greenlet_support.hpp"

namespace {

using FloatingPointState = greenlet_test::GreenletTest;

#if defined(__x86_64__)
unsigned read_mxcsr() {
  unsigned mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  return mxcsr;
}

constexpr unsigned status_bits = 0x3f;
constexpr unsigned precision_flag = 0x20;

// inexact_division() sets the precision flag, as any real floating-point
// work does.
void inexact_division() {
  volatile double x = 1.0;
  x = x / 3.0;
}

// A side that never does floating-point work and one that does: after one
// round trip both run with the canonical status bits, which is what keeps
// every later jump on the fast path.
TEST_F(FloatingPointState, BothSidesRunWithTheCanonicalStatusBitsAfterARoundTrip) {
  greenlet::greenlet main = greenlet::getcurrent();
  unsigned child_seen = 0;
  greenlet::greenlet child([&] {
    for (;;) {
      inexact_division();
      main.switch_();
      child_seen = read_mxcsr();
    }
  });
  std::feclearexcept(FE_ALL_EXCEPT);
  EXPECT_EQ(read_mxcsr() & status_bits, 0u);
  child.switch_();
  EXPECT_EQ(read_mxcsr() & status_bits, precision_flag);
  std::feclearexcept(FE_ALL_EXCEPT);  // flags cleared again: the next jump in fixes them
  child.switch_();
  EXPECT_EQ(child_seen & status_bits, precision_flag);
  EXPECT_EQ(read_mxcsr() & status_bits, precision_flag);
}

// A flag other than the precision flag (here divide-by-zero) does not
// survive a switch out and back: fetestexcept() must be read before
// switching.
TEST_F(FloatingPointState, ExceptionFlagsOtherThanPrecisionAreClearedBySwitching) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet child([&] { main.switch_(); });
  volatile double zero = 0.0;
  volatile double quotient = 1.0 / zero;
  (void)quotient;
  ASSERT_NE(std::fetestexcept(FE_DIVBYZERO), 0);
  child.switch_();
  EXPECT_EQ(std::fetestexcept(FE_DIVBYZERO), 0);
  EXPECT_EQ(read_mxcsr() & status_bits, precision_flag);
  child.switch_();
}

void write_mxcsr(unsigned mxcsr) { __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr)); }

constexpr unsigned denormals_are_zero = 0x40;

// The switch compares the low byte of the word it loads with the usual one;
// denormals-are-zero is a control bit in that byte, so a greenlet that sets
// it (as -ffast-math code does) takes the general check at every jump into
// it: it keeps the bit, and its flags are made canonical all the same.
TEST_F(FloatingPointState, AControlBitInTheComparedByteIsKeptAndTheFlagsStillMadeCanonical) {
  greenlet::greenlet main = greenlet::getcurrent();
  unsigned child_resumed_with = 0;
  greenlet::greenlet child([&] {
    write_mxcsr(read_mxcsr() | denormals_are_zero);
    volatile double zero = 0.0;
    volatile double quotient = 1.0 / zero;  // the divide-by-zero flag, saved with the child's context
    (void)quotient;
    main.switch_();
    child_resumed_with = read_mxcsr();
    write_mxcsr(read_mxcsr() & ~denormals_are_zero);
  });
  child.switch_();
  EXPECT_EQ(read_mxcsr() & denormals_are_zero, 0u);  // the child's control bit stayed with it
  EXPECT_EQ(read_mxcsr() & status_bits, precision_flag);
  child.switch_();
  EXPECT_NE(child_resumed_with & denormals_are_zero, 0u);
  EXPECT_EQ(child_resumed_with & status_bits, precision_flag);
  EXPECT_TRUE(child.dead());
}
#endif

// The rounding mode is per greenlet: a child rounding upward does not change
// its parent's rounding, and finds its own again when resumed.
TEST_F(FloatingPointState, RoundingModeIsEachGreenletsOwn) {
  greenlet::greenlet main = greenlet::getcurrent();
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  int child_after_resume = -1;
  double upward_third = 0;
  greenlet::greenlet child([&] {
    std::fesetround(FE_UPWARD);
    main.switch_();
    child_after_resume = std::fegetround();
    volatile double one = 1.0;
    upward_third = one / 3.0;
  });
  child.switch_();
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  child.switch_();
  EXPECT_EQ(child_after_resume, FE_UPWARD);
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  volatile double one = 1.0;
  const double nearest_third = one / 3.0;
  EXPECT_GT(upward_third, nearest_third);  // the child's division did round upward
}

}  // namespace
