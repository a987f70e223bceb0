// A ProcessPoolExecutor whose construction fails partway (socketpair() out of
// descriptors after some workers were forked) must not leave those workers
// behind: before, they stayed alive for ever, blocked reading sockets nobody
// would close, and were never reaped.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

int open_descriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Child exit codes, so the parent test can say what went wrong.
enum outcome : int {
  reaped = 0,
  constructed = 10,  // the limit did not bite: no failure to test
  wrong_error = 11,
  workers_left = 12,
  descriptors_left = 13,
};

// run_in_child() constructs a pool of 16 workers with room for only a few
// socketpairs, in a forked child so the descriptor limit and the children
// stay out of the test process.
int run_in_child() {
  const int before = open_descriptors();
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  // Each worker keeps one descriptor in this process (and needs two while it
  // is forked), so 3 spare descriptors admit a couple of workers, not 16.
  limit.rlim_cur = static_cast<rlim_t>(before + 3);
  ::setrlimit(RLIMIT_NOFILE, &limit);
  try {
    concurrent::ProcessPoolExecutor pool(16);
    return constructed;
  } catch (const std::system_error& e) {
    if (e.code().value() != EMFILE) return wrong_error;
  }
  // Every worker forked so far must be gone: no child left, running or not.
  if (::waitpid(-1, nullptr, WNOHANG) != -1 || errno != ECHILD) return workers_left;
  if (open_descriptors() != before) return descriptors_left;
  return reaped;
}

}  // namespace

TEST(ProcessPoolPartialStart, FailingConstructionReapsTheWorkersItForked) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(30);  // a worker left blocked must not hang the child either
    ::_exit(run_in_child());
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), reaped) << "10: constructed anyway, 11: not EMFILE, 12: workers left, 13: fds left";
}
