// forked_child.hpp: a test body run in a forked child (a death test), for the
// cases a failure could leave hanging or would break the parent's state (pool
// shutdowns, process-wide signal handlers, a greenlet killed in a parent
// cycle). The child cannot use gtest's assertions (the parent decides from its
// exit status and stderr) and must not run the parent's atexit handlers.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace greenlet_test::forked {

// fail(what) ends a forked child with a message for the parent test.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "CHILD FAILED: %s\n", what.c_str());
  std::_Exit(1);
}

// expect_child_succeeds(body) runs body in a forked child: it exits 0 and says so, or says why
// not and exits 1. The alarm turns a hang into a failure.
inline void expect_child_succeeds(void (*body)()) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        ::alarm(60);
        body();
        std::fprintf(stderr, "CHILD OK\n");
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "CHILD OK");
}

}  // namespace greenlet_test::forked
