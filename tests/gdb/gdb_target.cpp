// gdb_target.cpp: a program for the gdb extension's test (tests/gdb). It
// makes named greenlets in each state the extension reports, suspends two of
// them in park_here() (nested under a known call chain), and then calls
// gdb_marker(), where the test's gdb script breaks.
#include <cstdio>
#include <utility>

#include <greenlet/greenlet.hpp>

namespace {

greenlet::greenlet main_greenlet;

// Kept out of line (and the target is built with -O0) so each appears as a
// frame in `greenlet bt`.
[[gnu::noinline]] void park_here(int depth) {
  if (depth > 0) {
    park_here(depth - 1);
    return;
  }
  main_greenlet.switch_();
}

[[gnu::noinline]] void worker_body(int depth) { park_here(depth); }

}  // namespace

// gdb_marker() is where the test's gdb script stops: every greenlet below is
// then in the state its name says.
extern "C" [[gnu::noinline]] void gdb_marker() { std::puts("gdb_marker"); }

int main() {
  main_greenlet = greenlet::getcurrent();

  greenlet::greenlet alpha([] { worker_body(2); });
  alpha.set_name("alpha");
  greenlet::greenlet beta([] { worker_body(0); });
  beta.set_name("beta");
  greenlet::greenlet gamma([] {});
  gamma.set_name("gamma-unstarted");
  greenlet::greenlet delta([] {});
  delta.set_name("delta-dead");

  alpha.switch_();
  beta.switch_();
  delta.switch_();

  std::printf("alpha=%llu beta=%llu\n", static_cast<unsigned long long>(alpha.id()),
              static_cast<unsigned long long>(beta.id()));
  gdb_marker();
  // Leaving main drops the handles: alpha and beta are killed with
  // GreenletExit and unwind.
  return 0;
}
