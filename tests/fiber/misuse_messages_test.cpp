// misuse_messages_test.cpp: what a user sees for a greenlet with nothing to
// run, and the default report of the unraisable hook.
#include <functional>
#include <stdexcept>
#include <string>

#include "support/greenlet_test.hpp"

namespace {

using MisuseMessages = greenlet_test::GreenletTest;

// A null function pointer crashed at the first switch (Python:
// greenlet(None) fails when switched to): the constructor rejects it.
TEST_F(MisuseMessages, NullFunctionPointerIsRejectedWhenMade) {
  void (*run)() = nullptr;
  try {
    greenlet::greenlet g(run);
    FAIL() << "made a greenlet with a null run";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::bad_arguments);
    EXPECT_NE(std::string(e.what()).find("run is a null function pointer"), std::string::npos) << e.what();
  }
  EXPECT_EQ(greenlet::debug::live_count(), 0u);
}

// An empty std::function threw std::bad_function_call inside the new
// greenlet, at its first switch ("bad_function_call" and nothing more).
TEST_F(MisuseMessages, EmptyStdFunctionIsRejectedWhenMade) {
  std::function<int()> run;
  try {
    greenlet::greenlet g(run);
    FAIL() << "made a greenlet with an empty run";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::bad_arguments);
    EXPECT_NE(std::string(e.what()).find("run is an empty std::function"), std::string::npos) << e.what();
  }
  EXPECT_EQ(greenlet::debug::live_count(), 0u);
}

// Plain functions, by pointer or reference, and non-empty functions still run.
int five() { return 5; }

TEST_F(MisuseMessages, CallableRunsAreAccepted) {
  EXPECT_EQ(greenlet::greenlet(&five).switch_().get<int>(), 5);
  EXPECT_EQ(greenlet::greenlet(five).switch_().get<int>(), 5);
  EXPECT_EQ(greenlet::greenlet(std::function<int()>(five)).switch_().get<int>(), 5);
}

// A report with no exception (a leaked greenlet) printed
// "greenlet: exception ignored in <context>: no exception".
TEST_F(MisuseMessages, DefaultReportWithoutAnExceptionIsTheContextAlone) {
  greenlet::unraisable_hook previous = greenlet::set_unraisable_hook({});
  testing::internal::CaptureStderr();
  greenlet::report_unraisable(nullptr, "greenlet #7 is leaked");
  greenlet::report_unraisable(std::make_exception_ptr(std::runtime_error("boom")), "closing something");
  const std::string err = testing::internal::GetCapturedStderr();
  greenlet::set_unraisable_hook(std::move(previous));
  EXPECT_EQ(err,
            "greenlet: greenlet #7 is leaked\n"
            "greenlet: exception ignored in closing something: boom\n");
}

}  // namespace
