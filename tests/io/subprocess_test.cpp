// subprocess_test.cpp: create_subprocess_exec/shell and Process, after
// CPython's Lib/test/test_asyncio/test_subprocess.py (test_stdin_stdout,
// test_shell, test_kill, test_communicate, test_wait_for...).
#include <signal.h>
#include <sys/wait.h>

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

// communicate() cancelled by a timeout leaves no registration behind and
// loses nothing: what it read stays in the stdout stream.
TEST_F(Subprocess, CommunicateTimeout) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("echo early; exec sleep 10", {.stdout_ = sp::PIPE});
    EXPECT_THROW(asyncio::wait_for([&] { p.communicate(); }, 0.1), asyncio::TimeoutError);
    p.kill();
    EXPECT_EQ(p.wait(), -SIGKILL);
    EXPECT_EQ(p.stdout_().read(), "early\n");
    EXPECT_TRUE(p.stdout_().at_eof());
  });
}

// Cancelled in its final wait(), the pipes already at EOF and the child
// still running: the output stays in the stream too (it had been taken
// out before the wait and was lost, so read() and a second communicate()
// gave nothing; CPython 3.11 loses it as well, but the header promises it).
TEST_F(Subprocess, CommunicateCancelledWhileAwaitingTheExitKeepsTheOutput) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("echo important; echo also >&2; exec >&- 2>&-; exec sleep 30",
                                              {.stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    EXPECT_THROW(asyncio::wait_for([&] { p.communicate(); }, 0.5), asyncio::TimeoutError);
    EXPECT_FALSE(p.returncode());
    EXPECT_EQ(p.stdout_().read(), "important\n");
    p.kill();
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "");
    EXPECT_EQ(err, "also\n");
    EXPECT_EQ(p.returncode(), -SIGKILL);
  });
}

TEST_F(Subprocess, EnvAndCwd) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec(
        "/bin/sh", {"-c", "echo $GREENLET_X; pwd"},
        {.stdout_ = sp::PIPE, .env = std::vector<std::string>{"GREENLET_X=42"}, .cwd = "/"});
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "42\n/\n");
  });
}

// proc.stdout.readline(): line by line as the child writes, the last line
// without its newline, then EOF.
TEST_F(Subprocess, ReadlineFromStdout) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("echo one; sleep 0.02; echo two; printf three", {.stdout_ = sp::PIPE});
    ASSERT_TRUE(p.stdout_());
    EXPECT_FALSE(p.stdin_());
    EXPECT_FALSE(p.stderr_());
    std::vector<std::string> lines;
    while (true) {
      std::string line = p.stdout_().readline();
      if (line.empty()) break;
      lines.push_back(line);
    }
    EXPECT_EQ(lines, (std::vector<std::string>{"one\n", "two\n", "three"}));
    EXPECT_TRUE(p.stdout_().at_eof());
    EXPECT_EQ(p.wait(), 0);
  });
}

TEST_F(Subprocess, ReadexactlyAndReaduntilFromStdout) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("printf", {"key=value;abcdef"}, {.stdout_ = sp::PIPE});
    EXPECT_EQ(p.stdout_().readuntil("="), "key=");
    EXPECT_EQ(p.stdout_().readuntil(";"), "value;");
    EXPECT_EQ(p.stdout_().readexactly(4), "abcd");
    try {
      p.stdout_().readexactly(5);
      ADD_FAILURE() << "expected IncompleteReadError";
    } catch (const asyncio::IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "ef");
      EXPECT_EQ(e.expected(), 5u);
    }
    EXPECT_EQ(p.wait(), 0);
  });
}

// proc.stdin.write/drain through cat, read back line by line, then close
// stdin: cat sees EOF and exits 0.
TEST_F(Subprocess, WriteStdinReadBackThroughCat) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    asyncio::StreamWriter in = p.stdin_();
    asyncio::StreamReader out = p.stdout_();
    for (int i = 0; i < 3; ++i) {
      const std::string line = "line " + std::to_string(i) + "\n";
      in.write(line);
      in.drain();
      EXPECT_EQ(out.readline(), line);
    }
    // More than a pipe holds: write() buffers, drain() waits for the child
    // to take it while another task reads the echo.
    const std::string big(300 * 1024, 'z');
    auto reader = asyncio::create_task([&] { return out.readexactly(big.size()); });
    in.write(big);
    EXPECT_GT(in.transport_buffer_size(), 0u);
    in.drain();
    EXPECT_EQ(asyncio::await(reader), big);
    EXPECT_GE(p.stdin_fd(), 0);
    in.close();
    EXPECT_EQ(p.stdin_fd(), -1);
    EXPECT_EQ(out.read(), "");
    EXPECT_TRUE(out.at_eof());
    EXPECT_EQ(p.wait(), 0);
  });
}

// write_eof() on a pipe closes it (a pipe has no half-close).
TEST_F(Subprocess, StdinWriteEofCloses) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("wc", {"-c"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    p.stdin_().write("12345");
    p.stdin_().write_eof();
    EXPECT_TRUE(p.stdin_().is_closing());
    EXPECT_EQ(p.stdout_().readline(), "5\n");
    EXPECT_EQ(p.wait(), 0);
  });
}

// A child that exited without reading: its stdin stream closes once the loop
// sees the pipe's reader gone (as asyncio's, cleanly: nothing was buffered),
// a later write is dropped and drain() raises ConnectionResetError, and no
// SIGPIPE ends this process. (A write before the loop saw it fails with
// BrokenPipeError: the WritePipeReaderGone tests in pipe_streams_test.cpp.)
TEST_F(Subprocess, StdinToExitedChildIsClosedConnection) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("true", {}, {.stdin_ = sp::PIPE});
    EXPECT_EQ(p.wait(), 0);
    p.stdin_().wait_closed();
    EXPECT_TRUE(p.stdin_().is_closing());
    p.stdin_().write("nobody reads this\n");
    EXPECT_THROW(p.stdin_().drain(), asyncio::ConnectionResetError);
  });
}

TEST_F(Subprocess, StderrStream) {
  asyncio::run([] {
    auto p =
        asyncio::create_subprocess_shell("echo out; echo err >&2; exit 4", {.stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    EXPECT_EQ(p.stderr_().readline(), "err\n");
    EXPECT_EQ(p.stdout_().readline(), "out\n");
    EXPECT_EQ(p.wait(), 4);
    // communicate() after partial stream reads returns what is left.
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "");
    EXPECT_EQ(err, "");
  });
}

// communicate() takes the part of the output the stream has not handed out.
TEST_F(Subprocess, CommunicateAfterReadline) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_shell("echo first; echo second; echo third", {.stdout_ = sp::PIPE});
    EXPECT_EQ(p.stdout_().readline(), "first\n");
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "second\nthird\n");
    EXPECT_EQ(p.returncode(), 0);
  });
}

// Spawned outside a loop: the streams are made at first use, on the loop
// running then; without one that is RuntimeError.
TEST_F(Subprocess, SpawnedOutsideLoopStreamsLater) {
  auto p = asyncio::create_subprocess_shell("echo later", {.stdout_ = sp::PIPE});
  EXPECT_GE(p.stdout_fd(), 0);
  EXPECT_THROW(p.stdout_(), asyncio::RuntimeError);
  asyncio::run([&] {
    EXPECT_EQ(p.stdout_().readline(), "later\n");
    EXPECT_EQ(p.wait(), 0);
  });
}

// Several tasks await wait() on one Process: all get the code; a cancelled
// waiter does not disturb the others.
TEST_F(Subprocess, SeveralTasksAwaitWait) {
  asyncio::run([] {
    // The child exits when its stdin closes, not after a delay: on a loaded machine a short sleep
    // could end before the checks below that it is still running.
    auto p = asyncio::create_subprocess_shell("read line; exit 7", {.stdin_ = sp::PIPE});
    std::vector<std::string> order;
    auto a = asyncio::create_task([&] {
      int code = p.wait();
      order.push_back("a");
      return code;
    });
    auto b = asyncio::create_task([&] {
      int code = p.wait();
      order.push_back("b");
      return code;
    });
    auto c = asyncio::create_task([&] { return p.wait(); });
    asyncio::sleep(0.01);
    EXPECT_FALSE(p.returncode());
    c.cancel();
    EXPECT_THROW(asyncio::await(c), asyncio::CancelledError);
    p.close_stdin();
    EXPECT_EQ(p.wait(), 7);  // a third waiter, this task
    EXPECT_EQ(asyncio::await(a), 7);
    EXPECT_EQ(asyncio::await(b), 7);
    EXPECT_EQ(order.size(), 2u);
    EXPECT_EQ(p.returncode(), 7);
  });
}

// A child killed by a signal: returncode is minus the signal, as Python's,
// whoever sends it.
TEST_F(Subprocess, SignalledChildNegativeReturncode) {
  asyncio::run([] {
    auto self = asyncio::create_subprocess_shell("kill -USR1 $$; sleep 5");
    EXPECT_EQ(self.wait(), -SIGUSR1);
    auto p = asyncio::create_subprocess_exec("sleep", {"5"});
    auto waiter = asyncio::create_task([&] { return p.wait(); });
    asyncio::sleep(0.01);
    p.send_signal(SIGINT);
    EXPECT_EQ(asyncio::await(waiter), -SIGINT);
    EXPECT_EQ(p.returncode(), -SIGINT);
  });
}

}  // namespace

namespace {

// A missing cwd fails the spawn with ENOENT, as a missing program does: the
// message must name the directory (it blamed the program).
TEST_F(Subprocess, MissingCwdIsNamed) {
  try {
    auto p = asyncio::create_subprocess_exec("/bin/true", {}, {.cwd = "/no/such/greenlet-dir"});
    FAIL() << "expected OSError";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("cwd '/no/such/greenlet-dir'"), std::string::npos) << e.what();
  }
}

// A moved-from Process has pid -1: its wait() called waitpid(-1), reaping
// (and so stealing the exit status of) every other child of the program.
TEST_F(Subprocess, MovedFromProcessRefusesInsteadOfReapingOthers) {
  asyncio::run([] {
    auto other = asyncio::create_subprocess_exec("/bin/sh", {"-c", "exit 7"});
    auto p = asyncio::create_subprocess_exec("/bin/sh", {"-c", "exit 3"});
    auto q = std::move(p);
    asyncio::sleep(0.05);  // both children have exited: a waitpid(-1) would take them
    for (int i = 0; i < 2; ++i) {
      try {
        i == 0 ? (void)p.wait() : p.kill();
        ADD_FAILURE() << "a moved-from Process acted";
      } catch (const asyncio::RuntimeError& e) {
        EXPECT_NE(std::string(e.what()).find("moved from"), std::string::npos) << e.what();
      }
    }
    EXPECT_EQ(q.wait(), 3);
    EXPECT_EQ(other.wait(), 7);
  });
}

// As Python's (its child watcher sets it), returncode() is known once the
// child has exited, without wait(): it stayed nullopt until a wait(), so a
// ported `while proc.returncode is None: await asyncio.sleep(...)` never
// ended. A moved-from Process's stays nullopt without reaping the others.
TEST_F(Subprocess, ReturncodeIsSetWhenTheChildExitsWithoutWait) {
  asyncio::run([] {
    // poll(p) is the polling loop: up to 5 s (a bound for a broken build).
    auto poll = [](asyncio::Process& p) {
      for (int i = 0; i < 500 && !p.returncode(); ++i) asyncio::sleep(0.01);
      return p.returncode();
    };
    auto done = asyncio::create_subprocess_shell("exit 5");
    EXPECT_EQ(poll(done), 5);
    EXPECT_EQ(done.wait(), 5);

    auto running = asyncio::create_subprocess_exec("sleep", {"30"});
    asyncio::sleep(0.05);
    EXPECT_FALSE(running.returncode());
    running.kill();
    EXPECT_EQ(poll(running), -SIGKILL);
    running.kill();  // reaped: nothing happens

    auto other = asyncio::create_subprocess_shell("exit 7");
    auto moved = asyncio::create_subprocess_exec("sleep", {"30"});
    auto owner = std::move(moved);
    asyncio::sleep(0.05);  // `other` has exited: a waitpid(-1) would take it
    EXPECT_FALSE(moved.returncode());
    EXPECT_FALSE(owner.returncode());
    owner.kill();
    EXPECT_EQ(owner.wait(), -SIGKILL);
    EXPECT_EQ(poll(other), 7);
  });
}

// A task awaiting wait() wakes with the code when returncode() in another
// task reaped the child first (it unregisters the pidfd the task awaits).
TEST_F(Subprocess, ReturncodeReapingWakesTheWaiters) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec("sleep", {"30"});
    auto waiter = asyncio::create_task([&] { return p.wait(); });
    asyncio::sleep(0.01);
    p.kill();
    // Until the child is a zombie, without reaping it or letting the loop
    // run (the waiter would reap it first).
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(p.pid()), &info, WEXITED | WNOWAIT), 0);
    EXPECT_EQ(p.returncode(), -SIGKILL);
    EXPECT_EQ(asyncio::await(waiter), -SIGKILL);
  });
}

// A child spawned outside any loop, its wait() timed out under one
// asyncio::run, is awaited by the next: the pidfd waiter left registered
// on the first loop made that wait() raise RuntimeError ("a future attached
// to a different loop").
TEST_F(Subprocess, WaitTimedOutUnderOneRunIsAwaitedInTheNext) {
  auto p = asyncio::create_subprocess_exec("sleep", {"30"});
  EXPECT_THROW(asyncio::run([&] { asyncio::wait_for([&] { p.wait(); }, 0.01); }), asyncio::TimeoutError);
  EXPECT_FALSE(p.returncode());
  const int code = asyncio::run([&] {
    p.kill();
    return p.wait();
  });
  EXPECT_EQ(code, -SIGKILL);
}

}  // namespace
