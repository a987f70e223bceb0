// io/subprocess.hpp: asyncio's subprocesses (asyncio.create_subprocess_exec,
// create_subprocess_shell, asyncio.subprocess.Process). Spawning is an
// ordinary call; wait(), communicate() and read_all() are called from a task
// and await without blocking the loop.
//
//   auto p = asyncio::create_subprocess_exec(
//       "cat", {}, {.stdin_ = asyncio::subprocess::PIPE, .stdout_ = asyncio::subprocess::PIPE});
//   auto [out, err] = p.communicate("hello");  // out == "hello"
//   int status = *p.returncode();              // 0
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "greenlet/io/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace subprocess {
// stdio chooses what a child's stdin/stdout/stderr is: the parent's
// (inherit), a pipe to the parent (PIPE), /dev/null (DEVNULL) or, for
// stderr only, the child's stdout (STDOUT), as asyncio.subprocess's.
enum class stdio { inherit, PIPE, DEVNULL, STDOUT };
inline constexpr stdio PIPE = stdio::PIPE;
inline constexpr stdio DEVNULL = stdio::DEVNULL;
inline constexpr stdio STDOUT = stdio::STDOUT;
}  // namespace subprocess

// subprocess_config is create_subprocess_*'s keyword arguments. The fields
// end in '_' because stdin/stdout/stderr are macros of <cstdio>. env, if
// given, replaces the environment ("NAME=value" each); cwd, if not empty, is
// the child's working directory.
struct subprocess_config {
  subprocess::stdio stdin_ = subprocess::stdio::inherit;
  subprocess::stdio stdout_ = subprocess::stdio::inherit;
  subprocess::stdio stderr_ = subprocess::stdio::inherit;
  std::optional<std::vector<std::string>> env{};
  std::string cwd{};
};

// communicate_result is what communicate() read: `auto [out, err] = ...`.
struct communicate_result {
  std::string out;
  std::string err;
};

// Process is asyncio.subprocess.Process: a spawned child. Move-only; it owns
// the parent's ends of the pipes (non-blocking, close-on-exec) and closes
// them when destroyed. Destroying it does not kill the child; a child that
// has already exited is reaped then, one still running is not (call kill()
// and wait() first). Use it on one thread, and wait()/communicate() from one
// task at a time.
class Process {
 public:
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // pid() is the child's process id.
  pid_t pid() const noexcept { return pid_; }
  // returncode() is nullopt until wait() has seen the child exit; then its
  // exit status, or -N if signal N killed it (as Python's).
  std::optional<int> returncode() const noexcept { return returncode_; }

  // wait() awaits the child's exit and returns returncode(). It waits on a
  // pidfd registered with the loop (Linux >= 5.3), else polls waitpid()
  // with a growing asyncio::sleep. Does not read the pipes: a child
  // writing more than a pipe's buffer to a PIPE nobody reads never exits;
  // use communicate(). Throws RuntimeError outside a task, CancelledError
  // (the child keeps running).
  int wait();

  // communicate(input) writes input to stdin (if it is a PIPE) and closes
  // it, reads stdout and stderr (those that are PIPEs) to EOF, all at once,
  // then awaits the exit. A child that exits without reading its input is
  // not an error (BrokenPipe is ignored, as Python's). If cancelled, the
  // data read so far is lost and the pipes are left as they were.
  communicate_result communicate(std::string_view input = {});

  // send_signal(sig) sends sig to the child; nothing once it has been
  // reaped. terminate() is SIGTERM, kill() SIGKILL. Throws OSError.
  void send_signal(int sig);
  void terminate();
  void kill();

  // stdin_fd()/stdout_fd()/stderr_fd() are the parent's ends of the pipes
  // (-1 unless PIPE was asked), for read_all(), write_all(), sock-style use
  // with wait_readable()/wait_writable(). They stay owned by the Process.
  int stdin_fd() const noexcept { return stdin_; }
  int stdout_fd() const noexcept { return stdout_; }
  int stderr_fd() const noexcept { return stderr_; }
  // close_stdin() closes the stdin pipe, so the child sees EOF.
  void close_stdin() noexcept;

 private:
  friend Process create_subprocess_exec(const std::string&, const std::vector<std::string>&,
                                        const subprocess_config&);
  Process() = default;
  void set_status(int status) noexcept;
  bool try_reap();
  void close_fds() noexcept;

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::optional<int> returncode_;
};

// create_subprocess_exec(program, args, config) starts program (looked up
// in PATH unless it contains '/') with argv = {program, args...}. Throws
// OSError with the errno of the failure: ENOENT for a missing program,
// EACCES for one that is not executable.
Process create_subprocess_exec(const std::string& program, const std::vector<std::string>& args = {},
                               const subprocess_config& config = {});
// create_subprocess_shell(cmd, config) runs cmd with /bin/sh -c.
Process create_subprocess_shell(const std::string& cmd, const subprocess_config& config = {});

// read_all(fd) reads the non-blocking fd to EOF, awaiting while it has
// nothing. Throws OSError, CancelledError (what was read is lost).
std::string read_all(int fd);
// write_all(fd, data) writes all of data to the non-blocking fd, awaiting
// while it is full. A pipe whose reader is gone raises BrokenPipeError,
// never SIGPIPE. If cancelled midway, a prefix has been written.
void write_all(int fd, std::string_view data);

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
