// child_fail.hpp: how a death test's child process reports a failed check.
// It cannot use gtest's assertions (the parent decides from the exit status
// and stderr), and must not run the parent's atexit handlers.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace io_test {

[[noreturn]] inline void fail(const char* why) {
  std::fprintf(stderr, "%s\n", why);
  std::_Exit(1);
}

}  // namespace io_test
