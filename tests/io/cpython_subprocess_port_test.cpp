// cpython_subprocess_port_test.cpp: CPython 3.12's Lib/test/test_asyncio/test_subprocess.py, method by
// method (read from the search index's stored 3.12-era copy, file id 88908127: the one with the
// deprecated SafeChildWatcher/FastChildWatcher, test_subprocess_protocol_events and
// test_create_subprocess_with_pidfd; python/cpython's own stored copy, 14f6cfc2, is a 3.9 one).
// subprocess_test.cpp, subprocess_spawn_test.cpp and subprocess_fds_test.cpp hold the hand-written
// cases; each test here names its Python method and keeps its values.
//
// The children: PROGRAM_BLOCKED (python -c 'time.sleep(3600)') is `sleep 3600`, PROGRAM_CAT is `cat`,
// and the other `sys.executable -c` programs are the shell or coreutils doing the same thing
// (`print(len(sys.stdin.read()))` is `wc -c`). SubprocessMixin's tests run once: the child watcher
// classes it is run under (Threaded, Safe, Fast, Pidfd) are twins of one Process here.
//
// Not ported (8 of 39):
// - SubprocessTransportTests.test_proc_exited, test_subprocess_repr: a mock BaseSubprocessTransport's
//   internals and repr; there is no transport or protocol object.
// - test_cancel_post_init, test_close_kill_running: loop.subprocess_exec() with a SubprocessProtocol
//   and transport.close(); neither exists. (Destroying a running child's Process deliberately does
//   not kill it, docs/io.md "Children nobody waits for"; child_reaper_test.cpp covers that.)
// - test_create_subprocess_exec_text_mode_fails, test_create_subprocess_shell_text_mode_fails: there
//   are no text/encoding/errors parameters; input and output are bytes in std::string.
// - MultiLoopChildWatcherTests.test_warns, GenericWatcherTests.test_create_subprocess_fails_with_
//   inactive_watcher: the DeprecationWarning of a watcher class, a mocked watcher; there are no
//   child watcher objects (a pidfd per Process, docs/io.md "Exit").
// - SubprocessProactorTests: Windows.
//
// Ported with a difference the test states:
// - test_pause_reading: no `limit` parameter and no transport to mock; the output is asserted.
// - test_stdin_not_inheritable, test_*_input/output/error: close_fds=False is not expressible
//   (the child always keeps only 0/1/2 and pass_fds).
// - test_cancel_make_subprocess_transport_exec: spawning is an ordinary call that does not await,
//   so a task spawning is never cancelled inside it; the cancel comes after.
// - test_close_dont_kill_finished: a child reaped elsewhere (the Popen.wait() of the Python test):
//   returncode() is 255 as asyncio's watchers report then, and kill() does nothing.
// - test_popen_error(_with_stdin_pipe): a real spawn failure (ENOENT) instead of a mocked Popen
//   raising ZeroDivisionError; asserted: no descriptor is left open.
// - test_subprocess_protocol_events: the protocol callbacks are the stream reads (data, EOF) and
//   wait() (process_exited), each in its own task.
// - test_create_subprocess_with_pidfd: the event loop policy checks have no twin; the loop running
//   in another thread (to_thread(asyncio.run, ...)) is ported.
// Deliberate difference no test here reaches: send_signal()/kill()/terminate() after the child was
// reaped do nothing (asyncio's transport raises ProcessLookupError, test_proc_exited).
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

extern char** environ;

namespace cpython_subprocess_port {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using CPythonSubprocessMixin = greenlet_test::GreenletTest;
using CPythonGenericWatcherTests = greenlet_test::GreenletTest;

// support.PIPE_MAX_SIZE: more than any pipe's buffer.
constexpr std::size_t PIPE_MAX_SIZE = 4 * 1024 * 1024 + 1;

// PROGRAM_BLOCKED: a child that runs until killed.
asyncio::Process program_blocked(const asyncio::subprocess_config& config = {}) {
  return asyncio::create_subprocess_exec("sleep", {"3600"}, config);
}

// PROGRAM_CAT: a child copying its input to its output.
asyncio::Process program_cat(const asyncio::subprocess_config& config) {
  return asyncio::create_subprocess_exec("cat", {}, config);
}

// rstrip() is bytes.rstrip(): trailing whitespace removed.
std::string rstrip(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  return s;
}

// environ_with(entry) is os.environ.copy() with one more "NAME=value".
std::vector<std::string> environ_with(const std::string& entry) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back(entry);
  return env;
}

// open_fds() lists this process's open descriptors (but the one reading the list).
std::set<int> open_fds() {
  std::set<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = ::dirfd(dir);
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::stoi(entry->d_name);
    if (fd != own) fds.insert(fd);
  }
  ::closedir(dir);
  return fds;
}

// test_stdin_stdout
TEST_F(CPythonSubprocessMixin, test_stdin_stdout) {
  auto [exitcode, stdout_data] = asyncio::run([] {
    return asyncio::wait_for(
        [] {
          auto proc = program_cat({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
          // feed data
          proc.stdin_().write("some data");
          proc.stdin_().drain();
          proc.stdin_().close();
          // get output and exitcode
          std::string data = proc.stdout_().read();
          const int code = proc.wait();
          return std::pair{code, data};
        },
        60.0);
  });
  EXPECT_EQ(exitcode, 0);
  EXPECT_EQ(stdout_data, "some data");
}

// test_communicate
TEST_F(CPythonSubprocessMixin, test_communicate) {
  auto [exitcode, stdout_data] = asyncio::run([] {
    return asyncio::wait_for(
        [] {
          auto proc = program_cat({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
          auto [out, err] = proc.communicate("some data");
          return std::pair{proc.returncode(), out};
        },
        300.0);  // support.LONG_TIMEOUT
  });
  EXPECT_EQ(exitcode, 0);
  EXPECT_EQ(stdout_data, "some data");
}

// test_communicate_none_input
TEST_F(CPythonSubprocessMixin, test_communicate_none_input) {
  auto [exitcode, stdout_data] = asyncio::run([] {
    return asyncio::wait_for(
        [] {
          auto proc = program_cat({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
          auto [out, err] = proc.communicate();
          return std::pair{proc.returncode(), out};
        },
        300.0);
  });
  EXPECT_EQ(exitcode, 0);
  EXPECT_EQ(stdout_data, "");
}

// test_shell: spawned outside the loop (run_until_complete(create_subprocess_shell(...))), awaited in it.
TEST_F(CPythonSubprocessMixin, test_shell) {
  auto proc = asyncio::create_subprocess_shell("exit 7");
  const int exitcode = asyncio::run([&] { return proc.wait(); });
  EXPECT_EQ(exitcode, 7);
}

// test_start_new_session: the child in a session of its own (SubprocessSession in
// subprocess_spawn_test.cpp checks the session itself).
TEST_F(CPythonSubprocessMixin, test_start_new_session) {
  auto proc = asyncio::create_subprocess_shell("exit 8", {.start_new_session = true});
  const int exitcode = asyncio::run([&] { return proc.wait(); });
  EXPECT_EQ(exitcode, 8);
}

// test_kill
TEST_F(CPythonSubprocessMixin, test_kill) {
  auto proc = program_blocked();
  proc.kill();
  const int returncode = asyncio::run([&] { return proc.wait(); });
  EXPECT_EQ(-SIGKILL, returncode);
}

// test_kill_issue43884: the shell is killed while its own child (`sleep 1`) still holds the stdout
// pipe open: wait() returns at the shell's exit, not at the pipe's EOF.
TEST_F(CPythonSubprocessMixin, test_kill_issue43884) {
  auto proc = asyncio::create_subprocess_shell("sleep 1; sleep 1", {.stdout_ = sp::PIPE});
  const int returncode = asyncio::run([&] {
    asyncio::sleep(1);
    proc.kill();
    return proc.wait();
  });
  EXPECT_EQ(-SIGKILL, returncode);
}

// test_terminate
TEST_F(CPythonSubprocessMixin, test_terminate) {
  auto proc = program_blocked();
  proc.terminate();
  const int returncode = asyncio::run([&] { return proc.wait(); });
  EXPECT_EQ(-SIGTERM, returncode);
}

// test_send_signal: bpo-31034, the child gets SIGHUP's default action (as the Python test, this
// process's SIGHUP is set to SIG_DFL around it: an ignored signal stays ignored across exec).
TEST_F(CPythonSubprocessMixin, test_send_signal) {
  struct sigaction dfl = {}, old = {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGHUP, &dfl, &old), 0);
  auto proc =
      asyncio::create_subprocess_exec("/bin/sh", {"-c", "echo sleeping; exec sleep 3600"}, {.stdout_ = sp::PIPE});
  const int returncode = asyncio::run([&] {
    // basic synchronization to wait until the program is sleeping
    const std::string line = proc.stdout_().readline();
    EXPECT_EQ(line, "sleeping\n");
    proc.send_signal(SIGHUP);
    return proc.wait();
  });
  EXPECT_EQ(-SIGHUP, returncode);
  ::sigaction(SIGHUP, &old, nullptr);
}

// test_stdin_broken_pipe: the child waits for "go" on a passed pipe, then exits without reading its
// stdin; drain() of more than the pipe holds must raise BrokenPipeError (or ConnectionResetError).
TEST_F(CPythonSubprocessMixin, test_stdin_broken_pipe) {
  const std::string large_data(PIPE_MAX_SIZE, 'x');
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int rfd = fds[0], wfd = fds[1];
  asyncio::run([&] {
    // the program ends before the stdin can be fed
    auto proc = asyncio::create_subprocess_exec("/bin/sh", {"-c", "head -c 1 <&" + std::to_string(rfd) + " >/dev/null"},
                                                {.stdin_ = sp::PIPE, .pass_fds = {rfd}});
    bool raised = false;
    try {
      proc.stdin_().write(large_data);
      // Only exit the child process once the write buffer is filled
      ASSERT_EQ(::write(wfd, "go", 2), 2);
      proc.stdin_().drain();
    } catch (const asyncio::BrokenPipeError&) {
      raised = true;
    } catch (const asyncio::ConnectionResetError&) {
      raised = true;
    }
    EXPECT_TRUE(raised) << "drain() must raise BrokenPipeError or ConnectionResetError";
    EXPECT_EQ(proc.wait(), 0);
  });
  ::close(rfd);
  ::close(wfd);
}

// test_communicate_ignore_broken_pipe: communicate() must ignore BrokenPipeError when feeding stdin.
TEST_F(CPythonSubprocessMixin, test_communicate_ignore_broken_pipe) {
  const std::string large_data(PIPE_MAX_SIZE, 'x');
  // the program ends before the stdin can be fed
  auto proc = asyncio::create_subprocess_exec("true", {}, {.stdin_ = sp::PIPE});
  asyncio::run([&] {
    asyncio::get_running_loop().set_exception_handler([](asyncio::event_loop*, const asyncio::exception_context&) {});
    EXPECT_NO_THROW(proc.communicate(large_data));
    EXPECT_EQ(proc.wait(), 0);
  });
}

// test_pause_reading: Issue #22685, more output than the reader's limit. There is no `limit`
// parameter and no transport to mock pause_reading/resume_reading on: the output is asserted.
TEST_F(CPythonSubprocessMixin, test_pause_reading) {
  const std::size_t limit = 10;
  const std::size_t size = limit * 2 + 1;
  const std::string stdout_data = asyncio::run([&] {
    auto proc = asyncio::create_subprocess_exec("/bin/sh", {"-c", "printf '%s' " + std::string(size, 'x')},
                                                {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    auto [out, err] = proc.communicate();
    return out;
  });
  EXPECT_EQ(stdout_data, std::string(size, 'x'));
}

// len_message(stdin, stdout, stderr, message): the child prints how many bytes its stdin had.
std::pair<std::string, int> len_message(const asyncio::subprocess_config& config, std::string_view message) {
  auto proc = asyncio::create_subprocess_exec("wc", {"-c"}, config);
  auto [out, err] = proc.communicate(message);
  const int exitcode = proc.wait();
  return {out, exitcode};
}

// test_stdin_not_inheritable: asyncio issue #209, communicate() must not hang because the child
// inherited the parent's end of its stdin pipe.
TEST_F(CPythonSubprocessMixin, test_stdin_not_inheritable) {
  auto [output, exitcode] =
      asyncio::run([] { return len_message({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE}, "abc"); });
  EXPECT_EQ(rstrip(output), "3");
  EXPECT_EQ(exitcode, 0);
}

// test_empty_input
TEST_F(CPythonSubprocessMixin, test_empty_input) {
  auto [output, exitcode] =
      asyncio::run([] { return len_message({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE}, ""); });
  EXPECT_EQ(rstrip(output), "0");
  EXPECT_EQ(exitcode, 0);
}

// test_devnull_input
TEST_F(CPythonSubprocessMixin, test_devnull_input) {
  auto [output, exitcode] =
      asyncio::run([] { return len_message({.stdin_ = sp::DEVNULL, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE}, ""); });
  EXPECT_EQ(rstrip(output), "0");
  EXPECT_EQ(exitcode, 0);
}

// test_devnull_output: Python's stdout is None; here it is empty and stdout_() is an empty stream.
TEST_F(CPythonSubprocessMixin, test_devnull_output) {
  asyncio::run([] {
    auto proc = asyncio::create_subprocess_exec("wc", {"-c"},
                                                {.stdin_ = sp::PIPE, .stdout_ = sp::DEVNULL, .stderr_ = sp::PIPE});
    auto [out, err] = proc.communicate("abc");
    const int exitcode = proc.wait();
    EXPECT_EQ(out, "");
    EXPECT_FALSE(proc.stdout_());
    EXPECT_EQ(exitcode, 0);
  });
}

// test_devnull_error: Python's stderr is None; here it is empty and stderr_() is an empty stream.
TEST_F(CPythonSubprocessMixin, test_devnull_error) {
  asyncio::run([] {
    auto proc = asyncio::create_subprocess_exec("wc", {"-c"},
                                                {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::DEVNULL});
    auto [out, err] = proc.communicate("abc");
    const int exitcode = proc.wait();
    EXPECT_EQ(err, "");
    EXPECT_FALSE(proc.stderr_());
    EXPECT_EQ(exitcode, 0);
  });
}

// test_devstdin_input: the child can open /dev/stdin (a pipe can be reopened; a socket pair could not).
TEST_F(CPythonSubprocessMixin, test_devstdin_input) {
  auto [output, exitcode] = asyncio::run([] {
    auto proc = asyncio::create_subprocess_exec("/bin/sh", {"-c", "wc -c < /dev/stdin"},
                                                {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    auto [out, err] = proc.communicate("abc");
    const int code = proc.wait();
    return std::pair{out, code};
  });
  EXPECT_EQ(rstrip(output), "3");
  EXPECT_EQ(exitcode, 0);
}

// test_cancel_process_wait: Issue #23140, cancel Process.wait().
TEST_F(CPythonSubprocessMixin, test_cancel_process_wait) {
  asyncio::run([] {
    auto proc = program_blocked();
    // Create an internal future waiting on the process exit
    auto task = asyncio::create_task([&] { return proc.wait(); });
    asyncio::get_running_loop().call_soon([task]() mutable { task.cancel(); });
    try {
      asyncio::await(task);
    } catch (const asyncio::CancelledError&) {
    }
    EXPECT_TRUE(task.cancelled());
    // Cancel the future
    task.cancel();
    // Kill the process and wait until it is done
    proc.kill();
    EXPECT_EQ(proc.wait(), -SIGKILL);
  });
}

// test_cancel_make_subprocess_transport_exec: the spawn does not await, so the task has spawned
// (and ended) before the cancel comes; the child is then killed and reaped here.
TEST_F(CPythonSubprocessMixin, test_cancel_make_subprocess_transport_exec) {
  asyncio::run([] {
    std::optional<asyncio::Process> proc;
    auto task = asyncio::create_task([&] { proc.emplace(program_blocked()); });
    asyncio::get_running_loop().call_soon([task]() mutable { task.cancel(); });
    try {
      asyncio::await(task);
    } catch (const asyncio::CancelledError&) {
    }
    EXPECT_FALSE(task.cancelled());
    ASSERT_TRUE(proc.has_value());
    proc->kill();
    EXPECT_EQ(proc->wait(), -SIGKILL);
  });
}

// test_close_dont_kill_finished: the child is killed and reaped elsewhere (Python's proc.wait() on
// the Popen), so the Process is not notified; killing it again must not signal anything (the pid
// may be another process's by now) nor raise. returncode() is 255, as asyncio's watchers report
// for a child whose status someone else took.
TEST_F(CPythonSubprocessMixin, test_close_dont_kill_finished) {
  auto proc = program_blocked();
  // kill the process (but the Process is not notified)
  ASSERT_EQ(::kill(proc.pid(), SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(proc.pid(), &status, 0), proc.pid());
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_NO_THROW(proc.kill());
  EXPECT_EQ(proc.returncode(), 255);
}

// _test_popen_error(config): the spawn fails (a missing program here; a mocked Popen raising
// ZeroDivisionError in Python) and leaves no descriptor behind (Issue #24763: the transport closed;
// Issue #35721: the socket pair made for stdin closed).
void test_popen_error(const asyncio::subprocess_config& config) {
  asyncio::run([&] {
    const std::set<int> before = open_fds();
    EXPECT_THROW(asyncio::create_subprocess_exec("/nonexistent/greenlet-cpython-port", {"-c", "pass"}, config),
                 asyncio::OSError);
    EXPECT_EQ(open_fds(), before);
  });
}

// test_popen_error
TEST_F(CPythonSubprocessMixin, test_popen_error) { test_popen_error({}); }

// test_popen_error_with_stdin_pipe
TEST_F(CPythonSubprocessMixin, test_popen_error_with_stdin_pipe) { test_popen_error({.stdin_ = sp::PIPE}); }

// test_read_stdout_after_process_exit: the child writes 64 * 4096 bytes and exits with 1 while the
// reader sleeps between reads; every byte is still read, then EOF.
TEST_F(CPythonSubprocessMixin, test_read_stdout_after_process_exit) {
  asyncio::run([] {
    auto process = asyncio::create_subprocess_exec("/bin/sh", {"-c", "head -c 262144 /dev/zero | tr '\\0' x; exit 1"},
                                                   {.stdout_ = sp::PIPE});
    std::size_t total = 0;
    while (true) {
      const std::string data = process.stdout_().read(65536);
      if (!data.empty()) {
        EXPECT_EQ(data, std::string(data.size(), 'x'));
        total += data.size();
        asyncio::sleep(0.3);
      } else {
        break;
      }
    }
    EXPECT_EQ(total, 64u * 4096u);
    EXPECT_EQ(process.wait(), 1);
  });
}

// test_create_subprocess_exec_with_path: os.PathLike arguments are std::filesystem::path, which
// converts to the std::string the calls take.
TEST_F(CPythonSubprocessMixin, test_create_subprocess_exec_with_path) {
  asyncio::run([] {
    auto p = asyncio::create_subprocess_exec(std::filesystem::path("/bin/sh"), {"-c", ":"});
    EXPECT_EQ(p.wait(), 0);
    p = asyncio::create_subprocess_exec("/bin/sh", {"-c", ":", std::filesystem::path(".")});
    EXPECT_EQ(p.wait(), 0);
  });
}

// check_stdout_output(proc, output)
void check_stdout_output(asyncio::Process proc, const std::string& output) {
  auto [out, err] = proc.communicate();
  EXPECT_EQ(out, output);
  EXPECT_EQ(proc.returncode(), 0);
  auto task = asyncio::create_task([&] { return proc.wait(); });
  asyncio::sleep(0);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(task.result(), proc.returncode());
}

// test_create_subprocess_env_shell
TEST_F(CPythonSubprocessMixin, test_create_subprocess_env_shell) {
  asyncio::run([] {
    auto proc =
        asyncio::create_subprocess_shell("printf '%s' \"$FOO\"", {.stdout_ = sp::PIPE, .env = environ_with("FOO=bar")});
    check_stdout_output(std::move(proc), "bar");
  });
}

// test_create_subprocess_env_exec
TEST_F(CPythonSubprocessMixin, test_create_subprocess_env_exec) {
  asyncio::run([] {
    auto proc = asyncio::create_subprocess_exec("/bin/sh", {"-c", "printf '%s' \"$FOO\""},
                                                {.stdout_ = sp::PIPE, .env = environ_with("FOO=baz")});
    check_stdout_output(std::move(proc), "baz");
  });
}

// test_subprocess_concurrent_wait
TEST_F(CPythonSubprocessMixin, test_subprocess_concurrent_wait) {
  asyncio::run([] {
    auto proc = program_cat({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    auto [out, err] = proc.communicate("some data");
    EXPECT_EQ(out, "some data");
    EXPECT_EQ(proc.returncode(), 0);
    std::vector<asyncio::Task<int>> waits;
    for (int i = 0; i < 10; ++i) waits.push_back(asyncio::create_task([&] { return proc.wait(); }));
    EXPECT_EQ(asyncio::gather(waits), std::vector<int>(10, *proc.returncode()));
  });
}

// test_subprocess_protocol_events: gh-108973, every event is delivered: the data and EOF of each
// pipe (pipe_data_received, pipe_connection_lost) and the exit (process_exited), in no fixed order
// across the pipes but in order on each.
TEST_F(CPythonSubprocessMixin, test_subprocess_protocol_events) {
  using event = std::pair<std::string, int>;  // (name, fd); fd 0 for process_exited
  std::vector<event> events;
  const std::vector<event> expected = {
      {"pipe_data_received stdout", 1},
      {"pipe_data_received stderr", 2},
      {"pipe_connection_lost", 1},
      {"pipe_connection_lost", 2},
      {"process_exited", 0},
  };
  asyncio::run([&] {
    auto proc = asyncio::create_subprocess_exec("/bin/sh", {"-c", "printf stdout; printf stderr >&2"},
                                                {.stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
    auto watch = [&](asyncio::StreamReader& pipe, int fd) {
      while (true) {
        std::string data = pipe.read(65536);
        if (data.empty()) break;
        events.emplace_back("pipe_data_received " + data, fd);
      }
      events.emplace_back("pipe_connection_lost", fd);
    };
    auto out = asyncio::create_task([&] { watch(proc.stdout_(), 1); });
    auto err = asyncio::create_task([&] { watch(proc.stderr_(), 2); });
    auto exited = asyncio::create_task([&] {
      proc.wait();
      events.emplace_back("process_exited", 0);
    });
    asyncio::gather(out, err, exited);
  });
  // First, make sure that we received all events
  EXPECT_EQ(std::multiset<event>(events.begin(), events.end()), std::multiset<event>(expected.begin(), expected.end()));
  // Second, check order of pipe events per file descriptor
  std::map<int, std::vector<std::string>> per_fd_events;
  for (const auto& [name, fd] : events) {
    if (fd != 0) per_fd_events[fd].push_back(name.substr(0, name.find(' ')));
  }
  for (int fd : {1, 2}) {
    EXPECT_EQ(per_fd_events[fd], (std::vector<std::string>{"pipe_data_received", "pipe_connection_lost"}))
        << "fd " << fd;
  }
}

// test_subprocess_communicate_stdout: gh-100133, ten children at once, each one's output to its
// own communicate().
TEST_F(CPythonSubprocessMixin, test_subprocess_communicate_stdout) {
  asyncio::run([] {
    auto get_command_stdout = [](std::string text) {
      auto proc = asyncio::create_subprocess_exec("echo", {text}, {.stdout_ = sp::PIPE});
      auto [out, err] = proc.communicate();
      return rstrip(out);
    };
    std::vector<std::string> outputs;
    std::vector<asyncio::Task<std::string>> tasks;
    for (int i = 0; i < 10; ++i) {
      outputs.push_back("foo" + std::to_string(i));
      tasks.push_back(asyncio::create_task([=, text = outputs.back()] { return get_command_stdout(text); }));
    }
    EXPECT_EQ(asyncio::gather(tasks), outputs);
  });
}

// test_create_subprocess_with_pidfd: the child is spawned and awaited by a loop running in a worker
// thread (asyncio.to_thread(asyncio.run, in_thread())).
TEST_F(CPythonGenericWatcherTests, test_create_subprocess_with_pidfd) {
  auto [returncode, stdout_data] = asyncio::run([] {
    return asyncio::await(asyncio::to_thread([] {
      return asyncio::run([] {
        auto proc = program_cat({.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
        auto [out, err] = proc.communicate("some data");
        return std::pair{*proc.returncode(), out};
      });
    }));
  });
  EXPECT_EQ(returncode, 0);
  EXPECT_EQ(stdout_data, "some data");
}

}  // namespace cpython_subprocess_port
