// io/subprocess.hpp: asyncio's subprocesses (asyncio.create_subprocess_exec,
// create_subprocess_shell, asyncio.subprocess.Process). Spawning is an
// ordinary call; wait(), communicate() and the pipe streams are used from a
// task and await without blocking the loop.
//
//   auto p = asyncio::create_subprocess_exec(
//       "cat", {}, {.stdin_ = asyncio::subprocess::PIPE, .stdout_ = asyncio::subprocess::PIPE});
//   auto [out, err] = p.communicate("hello");  // out == "hello"
//   int status = *p.returncode();              // 0
//
//   auto q = asyncio::create_subprocess_shell("echo a; echo b", {.stdout_ = asyncio::subprocess::PIPE});
//   std::string line = q.stdout_().readline();  // "a\n", as proc.stdout.readline()
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "greenlet/asyncio/future.hpp"
#include "greenlet/io/errors.hpp"
#include "greenlet/io/streams.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace subprocess {
// stdio chooses what a child's stdin/stdout/stderr is: the parent's
// (inherit), a pipe to the parent (PIPE), /dev/null (DEVNULL) or, for
// stderr only, the child's stdout (STDOUT), as asyncio.subprocess's.
enum class stdio { inherit, PIPE, DEVNULL, STDOUT };
// PIPE: a pipe between parent and child (asyncio.subprocess.PIPE).
inline constexpr stdio PIPE = stdio::PIPE;
// DEVNULL: /dev/null (asyncio.subprocess.DEVNULL).
inline constexpr stdio DEVNULL = stdio::DEVNULL;
// STDOUT: for stderr only, the same place as stdout (asyncio.subprocess.STDOUT).
inline constexpr stdio STDOUT = stdio::STDOUT;
}  // namespace subprocess

// subprocess_config is create_subprocess_*'s keyword arguments. The fields
// end in '_' because stdin/stdout/stderr are macros of `cstdio`. A plain
// struct: throws nothing, not synchronized.
struct subprocess_config {
  // stdin_: what the child reads from (inherit, PIPE or DEVNULL).
  subprocess::stdio stdin_ = subprocess::stdio::inherit;
  // stdout_: where the child writes its output (inherit, PIPE or DEVNULL).
  subprocess::stdio stdout_ = subprocess::stdio::inherit;
  // stderr_: where the child writes its errors (inherit, PIPE, DEVNULL or STDOUT).
  subprocess::stdio stderr_ = subprocess::stdio::inherit;
  // env: if given, the child's whole environment ("NAME=value" each); its
  // PATH is where the program is looked up.
  std::optional<std::vector<std::string>> env{};
  // cwd: if not empty, the child's working directory.
  std::string cwd{};
  // pass_fds: descriptors of this process the child keeps, at the same
  // numbers and inheritable there (Python's pass_fds). Every other one
  // above 2 is closed in the child, close-on-exec or not (Python's
  // close_fds=True): a pipe end or listening socket of the parent does not
  // stay open in it. A negative fd is ValueError, one not open OSError EBADF.
  std::vector<int> pass_fds{};
  // start_new_session: the child calls setsid() before the program starts (Python's
  // start_new_session=True): a new session and process group, no controlling terminal, so a
  // terminal's Ctrl-C or hang-up does not reach it.
  bool start_new_session = false;
  // process_group: the child calls setpgid(0, *process_group) before the program starts (Python
  // 3.11's process_group=): 0 makes it the leader of a new group, so that killpg(pid, sig) reaches
  // it and its own children. A negative value is ValueError.
  std::optional<int> process_group{};
};

// communicate_result is what communicate() read: `auto [out, err] = ...`.
struct communicate_result {
  // out: everything the child wrote to its stdout pipe (empty without PIPE).
  std::string out;
  // err: everything the child wrote to its stderr pipe (empty without PIPE).
  std::string err;
};

// Process is asyncio.subprocess.Process: a spawned child. Move-only (do not
// move it while a task waits on it). The pipes the config asked for are
// streams, as asyncio's proc.stdin/stdout/stderr: stdin_() is a
// StreamWriter, stdout_() and stderr_() are StreamReaders (their copies
// share the pipe). Destroying the Process drops its references to them (a
// pipe closes when its last stream copy goes, stdin once what was written
// to it is sent) and does not kill the child;
// a child that has already exited is reaped then, one still running (or
// just killed) is reaped when it exits by a process-wide reaper thread, as
// asyncio's child watchers do, so it never stays a zombie. Do not reap the
// pid yourself after dropping the Process. Use it on one thread.
class Process {
 public:
  // Process(other) takes over other's child and streams; other becomes empty. Throws nothing.
  Process(Process&& other) noexcept;
  // operator=(other) takes over other's child and streams, dropping this one's. Throws nothing.
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // pid() is the child's process id.
  pid_t pid() const noexcept { return pid_; }
  // returncode() is nullopt while the child runs; once it has exited, its
  // exit status, or -N if signal N killed it (as Python's), whether or not
  // anyone called wait(): until known, each call looks (one
  // waitpid(WNOHANG), which reaps the child once it has exited), so a
  // `while (!p.returncode()) asyncio::sleep(0.05);` ends. Not const for
  // that reason. Any thread the Process is used on, with or without a loop.
  std::optional<int> returncode() noexcept;

  // wait() awaits the child's exit and returns returncode(). Any number of
  // tasks may wait at once; they all wake when it exits. It waits on a
  // pidfd registered with the loop (Linux >= 5.3), else polls waitpid()
  // with a growing asyncio::sleep. Does not read the pipes: a child
  // writing more than a pipe's buffer to a PIPE nobody reads never exits;
  // use communicate(). Throws RuntimeError outside a task or on a moved-from
  // Process, CancelledError (the child keeps running; the other waiters go
  // on waiting).
  int wait();

  // communicate(input) writes input to stdin (if it is a PIPE) and closes
  // it, reads stdout and stderr (those that are PIPEs) to EOF, all at once,
  // then awaits the exit. A child that exits without reading its input is
  // not an error (BrokenPipe is ignored, as Python's). If cancelled, the
  // bytes read so far stay in the stdout_()/stderr_() streams (also while
  // it awaits the exit after EOF) and the input not yet taken by the child
  // is still written, then stdin closed.
  communicate_result communicate(std::string_view input = {});

  // send_signal(sig) sends sig to the child; nothing once it has exited
  // (it looks first, as returncode(), and reaps it) or was reaped by
  // someone else. terminate() is SIGTERM, kill() SIGKILL. Throws OSError;
  // RuntimeError on a moved-from Process (wait() and communicate() too).
  void send_signal(int sig);
  // terminate() sends SIGTERM; see send_signal().
  void terminate();
  // kill() sends SIGKILL; see send_signal().
  void kill();

  // stdin_() is the writer of the child's stdin pipe (asyncio's
  // proc.stdin): write(), drain(), close(), write_eof() (closes it, a pipe
  // has no half-close). stdout_()/stderr_() are the readers of its output
  // pipes: read(), readline(), readexactly(), readuntil(), at_eof(). Each
  // is an empty stream (operator bool false) unless the config asked for a
  // PIPE: reading or writing it throws RuntimeError saying so. The streams
  // are made on the running loop at spawn (or at the first call here if
  // the child was spawned outside a loop: RuntimeError if none runs then).
  // Writes never raise SIGPIPE. A child that closes its stdin (or exits)
  // closes the stdin stream once the loop sees it, as asyncio's: with
  // BrokenPipeError (drain(), wait_closed()) if bytes were still buffered,
  // cleanly otherwise (later writes dropped, drain() raising
  // ConnectionResetError); a write that found the reader gone first is
  // BrokenPipeError. An open stdin stream counts as pending I/O for the
  // loop's deadlock detection.
  StreamWriter& stdin_();
  // stdout_() is the reader of the child's stdout; see stdin_().
  StreamReader& stdout_();
  // stderr_() is the reader of the child's stderr; see stdin_().
  StreamReader& stderr_();

  // stdin_fd()/stdout_fd()/stderr_fd() are the parent's ends of the pipes
  // (-1 unless PIPE was asked, or once closed), non-blocking, for
  // read_all(), write_all(), wait_readable()/wait_writable() instead of the
  // streams (mixing both on one pipe loses what the stream buffered). They
  // stay owned by the Process and its streams.
  int stdin_fd() const noexcept;
  // stdout_fd(): the parent's end of the stdout pipe, or -1; see stdin_fd().
  int stdout_fd() const noexcept;
  // stderr_fd(): the parent's end of the stderr pipe, or -1; see stdin_fd().
  int stderr_fd() const noexcept;
  // close_stdin() closes the stdin pipe once its buffered bytes are
  // written (at once if none), so the child sees EOF.
  void close_stdin() noexcept;

 private:
  friend Process create_subprocess_exec(const std::string&, const std::vector<std::string>&, const subprocess_config&);
  Process() = default;
  void set_status(int status) noexcept;
  void check_has_child(const char* call) const;
  bool try_reap();
  void make_streams();
  void drop_exit_waiter() noexcept;
  void close_pidfd() noexcept;

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int raw_[3] = {-1, -1, -1};  // pipe ends not yet wrapped in streams
  std::shared_ptr<detail::stream_transport> pipes_[3];
  StreamWriter stdin_stream_;
  StreamReader stdout_stream_;
  StreamReader stderr_stream_;
  Future<void> exit_waiter_;  // registered on pidfd_ while someone waits
  std::optional<int> returncode_;
};

// create_subprocess_exec(program, args, config) starts program with argv =
// {program, args...}. A program without '/' is looked up in PATH: that of
// config.env when it is given (/bin:/usr/bin if it has none), as Python's
// os.get_exec_path(env), else this process's. Throws OSError with the
// errno of the failure: ENOENT for a missing program, EACCES for one that
// is not executable; ValueError ("embedded null byte", as Python's) if the
// program, an argument, an env entry or cwd holds a NUL, before spawning.
Process create_subprocess_exec(const std::string& program, const std::vector<std::string>& args = {},
                               const subprocess_config& config = {});
// create_subprocess_shell(cmd, config) runs cmd with /bin/sh -c. Throws as
// create_subprocess_exec(); ValueError if cmd holds a NUL.
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
