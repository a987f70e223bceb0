// subprocess_test.cpp: create_subprocess_exec/shell and Process, after
// CPython's Lib/test/test_asyncio/test_subprocess.py (test_stdin_stdout,
// test_shell, test_kill, test_communicate, test_wait_for...).
#include <signal.h>

#include <string>
#include <system_error>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using Subprocess = greenlet_test::GreenletTest;

// test_stdin_stdout: the input comes back through cat.
TEST_F(Subprocess, CommunicateEchoesThroughCat) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    EXPECT_GT(p.pid(), 0);
    EXPECT_FALSE(p.returncode());
    auto [out, err] = p.communicate("hello\nworld\n");
    EXPECT_EQ(out, "hello\nworld\n");
    EXPECT_EQ(err, "");
    EXPECT_EQ(p.returncode(), 0);
  });
}

// More than a pipe's buffer each way: writing and reading must interleave.
TEST_F(Subprocess, CommunicateLargeInputDoesNotDeadlock) {
  asyncio::run([] {
    std::string input(1 << 20, 'x');
    auto p = asyncio::create_subprocess_exec("cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    auto [out, err] = p.communicate(input);
    EXPECT_EQ(out.size(), input.size());
    EXPECT_EQ(out, input);
    EXPECT_EQ(p.returncode(), 0);
  });
}

// test_shell: the shell's exit status is the return code.
TEST_F(Subprocess, ExitCode) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("exit 3");
    EXPECT_EQ(p.wait(), 3);
    EXPECT_EQ(p.returncode(), 3);
    EXPECT_EQ(p.wait(), 3);  // again: already known
  });
}

TEST_F(Subprocess, StderrCapture) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("sh", {"-c", "echo out; echo err >&2; exit 1"},
                                             {.stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "out\n");
    EXPECT_EQ(err, "err\n");
    EXPECT_EQ(p.returncode(), 1);
  });
}

TEST_F(Subprocess, StderrToStdoutAndDevnull) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("echo a; echo b >&2",
                                              {.stdin_ = sp::DEVNULL, .stdout_ = sp::PIPE, .stderr_ = sp::STDOUT});
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "a\nb\n");
    EXPECT_EQ(err, "");
    auto q = asyncio::create_subprocess_shell("echo hidden", {.stdout_ = sp::DEVNULL});
    EXPECT_EQ(q.wait(), 0);
  });
}

TEST_F(Subprocess, ReadAllAndWriteAll) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    asyncio::write_all(p.stdin_fd(), "raw fds\n");
    p.close_stdin();
    EXPECT_EQ(p.stdin_fd(), -1);
    EXPECT_EQ(asyncio::read_all(p.stdout_fd()), "raw fds\n");
    EXPECT_EQ(p.wait(), 0);
  });
}

// test_kill: a killed child reports -SIGKILL.
TEST_F(Subprocess, KilledChild) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("sleep", {"10"});
    p.kill();
    EXPECT_EQ(p.wait(), -SIGKILL);
    EXPECT_EQ(p.returncode(), -SIGKILL);
    p.kill();  // reaped: nothing happens
  });
}

TEST_F(Subprocess, TerminatedChild) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("sleep", {"10"});
    p.terminate();
    EXPECT_EQ(p.wait(), -SIGTERM);
  });
}

TEST_F(Subprocess, MissingProgramIsOSErrorENOENT) {
  try {
    auto p = asyncio::create_subprocess_exec("/nonexistent/greenlet-no-such-program");
    FAIL() << "expected OSError";
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
  try {
    auto p = asyncio::create_subprocess_exec("greenlet-no-such-program-in-path");
    FAIL() << "expected OSError";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
}

// Several children awaited at once while another task keeps ticking: the
// waits do not block the loop.
TEST_F(Subprocess, ConcurrentWaitsKeepLoopRunning) {
  asyncio::run([] {
    int ticks = 0;
    bool done = false;
    auto ticker = asyncio::create_task([&] {
      while (!done) {
        ++ticks;
        asyncio::sleep(0.005);
      }
    });
    std::vector<asyncio::Task<int>> waits;
    for (int i = 0; i < 4; ++i) {
      waits.push_back(asyncio::create_task([i] {
        auto p = asyncio::create_subprocess_shell("sleep 0.1; exit " + std::to_string(i));
        return p.wait();
      }));
    }
    std::vector<int> codes = asyncio::gather(waits);
    done = true;
    asyncio::await(ticker);
    EXPECT_EQ(codes, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_GT(ticks, 1);
  });
}

// test_wait_for-style: the wait times out, the child is still running and
// can then be killed and reaped.
TEST_F(Subprocess, WaitForTimeoutThenKill) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("sleep", {"10"});
    EXPECT_THROW(asyncio::wait_for([&] { p.wait(); }, 0.05), asyncio::TimeoutError);
    EXPECT_FALSE(p.returncode());
    p.kill();
    EXPECT_EQ(p.wait(), -SIGKILL);
  });
}

// communicate() cancelled by a timeout leaves no registration behind: the
// pipes can be read afterwards.
TEST_F(Subprocess, CommunicateTimeout) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("echo early; exec sleep 10", {.stdout_ = sp::PIPE});
    EXPECT_THROW(asyncio::wait_for([&] { p.communicate(); }, 0.1), asyncio::TimeoutError);
    p.kill();
    EXPECT_EQ(p.wait(), -SIGKILL);
    EXPECT_EQ(asyncio::read_all(p.stdout_fd()), "");  // "early" went to the cancelled call
  });
}

TEST_F(Subprocess, EnvAndCwd) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("/bin/sh", {"-c", "echo $GREENLET_X; pwd"},
                                             {.stdout_ = sp::PIPE, .env = std::vector<std::string>{"GREENLET_X=42"},
                                              .cwd = "/"});
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "42\n/\n");
  });
}

}  // namespace
