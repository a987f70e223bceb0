// subprocess_fds_test.cpp: which descriptors a child of create_subprocess_*
// gets. As Python's close_fds=True (the default), only 0/1/2 and pass_fds
// survive the spawn: before, every descriptor without FD_CLOEXEC did, so a
// pipe() end stayed open in a long-lived child (its reader saw EOF only when
// the child exited) and a listening socket stayed bound.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using SubprocessFds = greenlet_test::GreenletTest;

// pipe_pair closes its descriptors at the end of the test.
struct pipe_pair {
  int fds[2] = {-1, -1};
  explicit pipe_pair(int flags) { EXPECT_EQ(::pipe2(fds, flags), 0); }
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;
  ~pipe_pair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
};

// open_in_child(fds, pass_fds) is which of fds a shell child spawned with
// pass_fds has open ("3 7 " for 3 and 7): `[` is the shell's builtin, so
// /proc/self is the shell itself.
std::string open_in_child(const std::vector<int>& fds, const std::vector<int>& pass_fds) {
  std::string cmd = "for n in";
  for (int fd : fds) cmd += " " + std::to_string(fd);
  cmd += "; do [ -e /proc/self/fd/$n ] && printf '%s ' $n; done; true";
  auto p = asyncio::create_subprocess_shell(cmd, {.stdout_ = sp::PIPE, .pass_fds = pass_fds});
  auto [out, err] = p.communicate();
  EXPECT_EQ(p.returncode(), 0);
  return out;
}

std::string numbers(const std::vector<int>& fds) {
  std::string text;
  for (int fd : fds) text += std::to_string(fd) + " ";
  return text;
}

// The explorer's repro: a pipe() made by the program, a long-lived child,
// the write end closed here. The reader must see EOF at once (it waited for
// the child's exit: TimeoutError here); the pipes the library puts on the
// child's 0/1 still work.
TEST_F(SubprocessFds, ParentsPipeIsNotInheritedSoItsReaderSeesEofAtOnce) {
  asyncio::run([] {
    pipe_pair user(0);  // as pipe(): no FD_CLOEXEC
    auto cat = asyncio::create_subprocess_exec("cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    ::close(std::exchange(user.fds[1], -1));
    asyncio::set_nonblocking(user.read_end());
    EXPECT_EQ(asyncio::wait_for([&] { return asyncio::read_all(user.read_end()); }, 5.0), "");
    auto [out, err] = cat.communicate("through the child's stdio\n");
    EXPECT_EQ(out, "through the child's stdio\n");
    EXPECT_EQ(cat.returncode(), 0);
  });
}

// Only pass_fds survive, close-on-exec or not; the parent's copies keep
// their flags, and the child can use what it was passed.
TEST_F(SubprocessFds, ChildKeepsOnlyStdioAndPassFds) {
  asyncio::run([] {
    pipe_pair plain(0);
    pipe_pair cloexec(O_CLOEXEC);
    const std::vector<int> all = {plain.read_end(), plain.write_end(), cloexec.read_end(), cloexec.write_end()};
    EXPECT_EQ(open_in_child(all, {}), "");
    EXPECT_EQ(open_in_child(all, {cloexec.write_end(), plain.read_end()}),
              numbers({plain.read_end(), cloexec.write_end()}));
    EXPECT_EQ(open_in_child(all, {1, 2, plain.write_end(), plain.write_end()}), numbers({plain.write_end()}));
    EXPECT_NE(::fcntl(cloexec.write_end(), F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(::fcntl(plain.write_end(), F_GETFD) & FD_CLOEXEC, 0);

    const std::string to = std::to_string(cloexec.write_end());
    auto p = asyncio::create_subprocess_shell("echo passed >&" + to, {.pass_fds = {cloexec.write_end()}});
    EXPECT_EQ(p.wait(), 0);
    char buf[16] = {};
    EXPECT_EQ(::read(cloexec.read_end(), buf, sizeof buf), 7);
    EXPECT_EQ(std::string(buf), "passed\n");
  });
}

// A negative pass_fd is ValueError (Python: "bad value(s) in fds_to_keep"),
// one that is not open OSError EBADF, both before any child runs.
TEST_F(SubprocessFds, BadPassFdsAreRefused) {
  EXPECT_THROW(asyncio::create_subprocess_exec("true", {}, {.pass_fds = {-1}}), asyncio::ValueError);
  const int unused = ::dup(0);
  ASSERT_GE(unused, 0);
  ::close(unused);
  try {
    auto p = asyncio::create_subprocess_exec("true", {}, {.pass_fds = {unused}});
    ADD_FAILURE() << "a descriptor that is not open was passed";
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
  }
}

}  // namespace
