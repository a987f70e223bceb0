// subprocess.cpp: create_subprocess_exec/shell and Process. Children are
// started with posix_spawnp (glibc reports a failed exec, e.g. ENOENT, as
// its return value), or posix_spawn once the program has been looked up in
// the PATH of the environment given to the child; the parent's pipe ends
// are made close-on-exec by pipe2 and non-blocking afterwards (O_NONBLOCK
// is shared through dup, so setting it at pipe2 time would give the child
// non-blocking stdio too).
// The child keeps only 0/1/2 and the config's pass_fds (Python's
// close_fds=True): a closefrom file action, or before glibc 2.34 one close
// action per descriptor that would survive the exec.
#include "greenlet/io/subprocess.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/socket.hpp"
#include "io/child_reaper.hpp"
#include "io/stream_transport.hpp"
#include "io/wait.hpp"

extern char** environ;

namespace greenlet::asyncio {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) { raise_os_error(err, what); }

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

using detail::write_no_sigpipe;

// read_into(fd, buf) appends what one read() gives to buf: bytes, 0 at
// EOF, -1 with errno. It reads into the string itself rather than a stack
// buffer, since tasks may run on small stacks.
ssize_t read_into(int fd, std::string& buf) {
  constexpr std::size_t chunk = 16384;
  const std::size_t old = buf.size();
  buf.resize(old + chunk);
  const ssize_t n = ::read(fd, buf.data() + old, chunk);
  buf.resize(old + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  return n;
}

// spawn_resources owns what create_subprocess_exec() makes until it hands
// the parent's ends to the Process: every way out frees the rest.
struct spawn_resources {
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_resources() {
    if (int err = posix_spawn_file_actions_init(&actions); err != 0) throw_errno(err, "posix_spawn_file_actions_init");
    if (int err = posix_spawnattr_init(&attr); err != 0) {
      posix_spawn_file_actions_destroy(&actions);
      throw_errno(err, "posix_spawnattr_init");
    }
  }
  spawn_resources(const spawn_resources&) = delete;
  spawn_resources& operator=(const spawn_resources&) = delete;
  ~spawn_resources() {
    for (auto& p : pipes) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

void check_file_action(int err, const char* action) {
  if (err != 0) throw_errno(err, action);
}

// survives_exec(fd): fd is open and not close-on-exec.
bool survives_exec(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) == 0;
}

// add_close(actions, fd) makes the child close fd.
void add_close(posix_spawn_file_actions_t& actions, int fd) {
  check_file_action(posix_spawn_file_actions_addclose(&actions, fd), "posix_spawn_file_actions_addclose");
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
// add_close_from(actions, lowest): the child closes every descriptor from
// lowest up (close_range(), or /proc/self/fd on kernels without it).
void add_close_from(posix_spawn_file_actions_t& actions, int lowest) {
  check_file_action(posix_spawn_file_actions_addclosefrom_np(&actions, lowest),
                    "posix_spawn_file_actions_addclosefrom_np");
}
#else
// add_close_from(actions, lowest), before glibc 2.34 (no closefrom action):
// a close action for each descriptor from lowest up that is open now and
// would survive the exec (no FD_CLOEXEC). One another thread opens
// meanwhile without FD_CLOEXEC can still reach the child; without /proc
// they all do, as before.
void add_close_from(posix_spawn_file_actions_t& actions, int lowest) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int listing = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd < lowest || fd == listing) continue;
    if (!survives_exec(static_cast<int>(fd))) continue;
    try {
      add_close(actions, static_cast<int>(fd));
    } catch (...) {
      ::closedir(dir);
      throw;
    }
  }
  ::closedir(dir);
}
#endif

// keep_only_stdio_and(actions, pass_fds) makes the child close every
// descriptor above 2 but pass_fds, as Python's close_fds=True: it inherited
// each one without FD_CLOEXEC (a pipe() end stayed open in it, so the
// reader saw EOF only when the child exited; a listening socket stayed
// bound). Added after the dup2s onto 0/1/2 (the child runs the actions in
// order), which have copied the pipes there already. Each fd kept is
// dup2'ed onto itself, which clears its close-on-exec in the child only
// (glibc >= 2.29, POSIX 2017), as Python makes pass_fds inheritable; the
// ones between that are open and would survive the exec are closed one by
// one (a close action for every number would make thousands for a pass_fd
// numbered in thousands), the rest with one closefrom.
void keep_only_stdio_and(posix_spawn_file_actions_t& actions, std::vector<int> pass_fds) {
  std::sort(pass_fds.begin(), pass_fds.end());
  pass_fds.erase(std::unique(pass_fds.begin(), pass_fds.end()), pass_fds.end());
  if (!pass_fds.empty() && pass_fds.front() < 0) {
    throw ValueError("create_subprocess_exec(): pass_fds holds a negative descriptor (" +
                     std::to_string(pass_fds.front()) + ")");
  }
  int first_closed = 3;
  for (const int fd : pass_fds) {
    if (fd < first_closed) continue;  // 0, 1 and 2 are always kept
    check_file_action(posix_spawn_file_actions_adddup2(&actions, fd, fd), "posix_spawn_file_actions_adddup2");
    for (int between = first_closed; between < fd; ++between) {
      if (survives_exec(between)) add_close(actions, between);
    }
    first_closed = fd + 1;
  }
  add_close_from(actions, first_closed);
}

// reject_null_byte(call, text, what) throws ValueError if text holds a NUL,
// as Python's "embedded null byte": exec takes C strings, so the child got
// text cut at it (a shell command "echo a\0; rm x" ran `echo a`).
void reject_null_byte(const char* call, std::string_view text, const char* what) {
  if (text.find('\0') != std::string_view::npos) {
    throw ValueError(std::string(call) + "(): embedded null byte in " + what);
  }
}

// reject_null_bytes(program, args, config): reject_null_byte() on every
// string create_subprocess_exec() hands to the child.
void reject_null_bytes(const std::string& program, const std::vector<std::string>& args,
                       const subprocess_config& config) {
  constexpr const char* call = "create_subprocess_exec";
  reject_null_byte(call, program, "the program");
  for (const std::string& arg : args) reject_null_byte(call, arg, "an argument");
  if (config.env) {
    for (const std::string& entry : *config.env) reject_null_byte(call, entry, "an env entry");
  }
  reject_null_byte(call, config.cwd, "cwd");
}

// throw_spawn_error(err, program, cwd) throws the OSError of a failed
// spawn. posix_spawn gives one errno for the chdir and the exec: name the
// directory when it is the one missing, as Python does.
[[noreturn]] void throw_spawn_error(int err, const std::string& program, const std::string& cwd) {
  struct stat cwd_stat {};
  if (!cwd.empty() && (::stat(cwd.c_str(), &cwd_stat) != 0 || !S_ISDIR(cwd_stat.st_mode))) {
    throw_errno(err, "create_subprocess_exec(" + program + "): cannot change to cwd '" + cwd + "'");
  }
  throw_errno(err, "create_subprocess_exec(" + program + ")");
}

// exec_search_path(env) is where a child given env looks its program up,
// as Python's os.get_exec_path(env): env's PATH, else os.defpath.
std::string_view exec_search_path(const std::vector<std::string>& env) {
  constexpr std::string_view name = "PATH=";
  for (const std::string& entry : env) {
    if (entry.starts_with(name)) return std::string_view(entry).substr(name.size());
  }
  return "/bin:/usr/bin";
}

// exec_error(candidate) is what an exec of candidate would fail with (0 if
// it would run, as far as a look at the file tells): ENOENT or ENOTDIR if it
// is not there, EACCES if it is not an executable regular file.
int exec_error(const std::string& candidate) {
  struct stat st {};
  if (::stat(candidate.c_str(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return EACCES;
  if (::faccessat(AT_FDCWD, candidate.c_str(), X_OK, AT_EACCESS) != 0) return errno;
  return 0;
}

// find_program(program, search_path, cwd) looks program (no '/') up in the
// directories of search_path as the child's exec would (Python's
// _execute_child tries each): the first that holds it executable wins. A
// relative directory (an empty one is ".") is the child's, so under cwd.
// When none does, throws the first error that is not ENOENT/ENOTDIR
// (EACCES: a file that is not executable), else ENOENT.
std::string find_program(const std::string& program, std::string_view search_path, const std::string& cwd) {
  int first_error = 0;
  for (;;) {
    const std::size_t colon = search_path.find(':');
    const std::string_view dir = search_path.substr(0, colon);
    const std::string candidate = dir.empty() ? program : std::string(dir) + "/" + program;
    const bool under_cwd = !cwd.empty() && !candidate.starts_with('/');
    const int err = exec_error(under_cwd ? cwd + "/" + candidate : candidate);
    if (err == 0) return candidate;
    if (err != ENOENT && err != ENOTDIR && first_error == 0) first_error = err;
    if (colon == std::string_view::npos) break;
    search_path.remove_prefix(colon + 1);
  }
  throw_spawn_error(first_error != 0 ? first_error : ENOENT, program, cwd);
}

}  // namespace

Process create_subprocess_exec(const std::string& program, const std::vector<std::string>& args,
                               const subprocess_config& config) {
  using subprocess::stdio;
  if (config.stdin_ == stdio::STDOUT || config.stdout_ == stdio::STDOUT)
    throw OSError(EINVAL, "create_subprocess_exec(): STDOUT is only valid for stderr");
  reject_null_bytes(program, args, config);
  if (config.process_group && *config.process_group < 0) {
    throw ValueError(
        "create_subprocess_exec(): process_group must be 0 (a new group led by the child) or an "
        "existing group's id, got " +
        std::to_string(*config.process_group));
  }
  // posix_spawnp() would search this process's PATH: a child given env
  // looks its program up in env's PATH, as Python's.
  const bool search_env_path = config.env && !program.empty() && program.find('/') == std::string::npos;
  const std::string executable =
      search_env_path ? find_program(program, exec_search_path(*config.env), config.cwd) : program;
  spawn_resources r;

  // The child starts with no signal blocked (our signal handlers block
  // some in this thread) and SIGPIPE at its default, as Python's children.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&r.attr, &none);
  posix_spawnattr_setsigdefault(&r.attr, &defaults);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (config.start_new_session) flags |= POSIX_SPAWN_SETSID;
  if (config.process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&r.attr, *config.process_group);
  }
  posix_spawnattr_setflags(&r.attr, flags);

  const stdio modes[3] = {config.stdin_, config.stdout_, config.stderr_};
  for (int target = 0; target < 3; ++target) {
    switch (modes[target]) {
      case stdio::inherit: break;
      case stdio::PIPE: {
        if (::pipe2(r.pipes[target], O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
        // pipes[t][0] reads, [1] writes: the child gets the read end of
        // stdin and the write ends of stdout/stderr.
        const int child_end = r.pipes[target][target == 0 ? 0 : 1];
        posix_spawn_file_actions_adddup2(&r.actions, child_end, target);
        break;
      }
      case stdio::DEVNULL:
        posix_spawn_file_actions_addopen(&r.actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0);
        break;
      case stdio::STDOUT: posix_spawn_file_actions_adddup2(&r.actions, 1, 2); break;
    }
  }
  keep_only_stdio_and(r.actions, config.pass_fds);
  if (!config.cwd.empty()) posix_spawn_file_actions_addchdir_np(&r.actions, config.cwd.c_str());

  std::vector<char*> argv;
  argv.reserve(args.size() + 2);
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (config.env) {
    envp.reserve(config.env->size() + 1);
    for (const std::string& e : *config.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }

  Process p;
  const int err = config.env ? posix_spawn(&p.pid_, executable.c_str(), &r.actions, &r.attr, argv.data(), envp.data())
                             : posix_spawnp(&p.pid_, program.c_str(), &r.actions, &r.attr, argv.data(), environ);
  if (err != 0) throw_spawn_error(err, program, config.cwd);

  // Opened before anyone can reap the child, so the pid cannot be reused
  // under it. Failure (old kernel, seccomp) leaves wait() to poll.
  p.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, p.pid_, 0));
  if (p.pidfd_ >= 0) ::fcntl(p.pidfd_, F_SETFD, FD_CLOEXEC);

  for (int target = 0; target < 3; ++target) {
    if (modes[target] != stdio::PIPE) continue;
    int& mine = r.pipes[target][target == 0 ? 1 : 0];
    p.raw_[target] = std::exchange(mine, -1);
    set_nonblocking(p.raw_[target]);
  }
  // On a running loop the pipes become streams at once; otherwise at the
  // first use of a stream (which needs a loop then).
  if (detail::running_loop() != nullptr) p.make_streams();
  return p;
}

Process create_subprocess_shell(const std::string& cmd, const subprocess_config& config) {
  reject_null_byte("create_subprocess_shell", cmd, "the command");
  return create_subprocess_exec("/bin/sh", {"-c", cmd}, config);
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      stdin_stream_(std::move(other.stdin_stream_)),
      stdout_stream_(std::move(other.stdout_stream_)),
      stderr_stream_(std::move(other.stderr_stream_)),
      exit_waiter_(std::move(other.exit_waiter_)),
      returncode_(other.returncode_) {
  for (int i = 0; i < 3; ++i) {
    raw_[i] = std::exchange(other.raw_[i], -1);
    pipes_[i] = std::move(other.pipes_[i]);
  }
  other.exit_waiter_ = Future<void>();
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    for (int i = 0; i < 3; ++i) {
      raw_[i] = std::exchange(other.raw_[i], -1);
      pipes_[i] = std::move(other.pipes_[i]);
    }
    stdin_stream_ = std::move(other.stdin_stream_);
    stdout_stream_ = std::move(other.stdout_stream_);
    stderr_stream_ = std::move(other.stderr_stream_);
    exit_waiter_ = std::move(other.exit_waiter_);
    other.exit_waiter_ = Future<void>();
    returncode_ = other.returncode_;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !returncode_) {
    try {
      try_reap();
    } catch (...) {
      // waitpid failed otherwise than ECHILD: the reaper tries again below.
    }
  }
  if (pid_ > 0 && !returncode_) {
    // Still running (or killed a moment ago): it must not stay a zombie
    // once it exits, so the reaper takes it over with its pidfd.
    drop_exit_waiter();
    detail::reap_when_exited(pid_, std::exchange(pidfd_, -1));
  }
  close_pidfd();
  for (int& fd : raw_) close_fd(fd);
  // The streams' transports close their pipes when the last copy goes
  // (stdin once its buffered bytes are sent: stream_transport::handles_gone()).
}

void Process::make_streams() {
  if (raw_[0] < 0 && raw_[1] < 0 && raw_[2] < 0) return;
  detail::loop_core& loop = detail::require_running_loop();
  for (int i = 0; i < 3; ++i) {
    if (raw_[i] < 0) continue;
    pipes_[i] =
        detail::stream_transport::make(loop, std::exchange(raw_[i], -1), stream_config{}, detail::transport_kind::pipe);
  }
  if (pipes_[0]) {
    // As asyncio's stdin transport: a child that closes its stdin or exits
    // closes the stream (BrokenPipeError if bytes were still to go).
    pipes_[0]->watch_reader_gone();
    stdin_stream_ = StreamWriter(pipes_[0]);
  }
  if (pipes_[1]) stdout_stream_ = StreamReader(pipes_[1]);
  if (pipes_[2]) stderr_stream_ = StreamReader(pipes_[2]);
}

StreamWriter& Process::stdin_() {
  make_streams();
  return stdin_stream_;
}

StreamReader& Process::stdout_() {
  make_streams();
  return stdout_stream_;
}

StreamReader& Process::stderr_() {
  make_streams();
  return stderr_stream_;
}

int Process::stdin_fd() const noexcept { return pipes_[0] ? pipes_[0]->fd() : raw_[0]; }
int Process::stdout_fd() const noexcept { return pipes_[1] ? pipes_[1]->fd() : raw_[1]; }
int Process::stderr_fd() const noexcept { return pipes_[2] ? pipes_[2]->fd() : raw_[2]; }

void Process::close_stdin() noexcept {
  close_fd(raw_[0]);
  if (pipes_[0]) {
    try {
      pipes_[0]->close();
    } catch (...) {
      // close() only schedules wake-ups; a closed loop cannot take them.
    }
  }
}

// drop_exit_waiter() unregisters the pidfd waiter and wakes the tasks
// awaiting it, which then see the return code (or register anew).
void Process::drop_exit_waiter() noexcept {
  if (exit_waiter_.empty()) return;
  Future<void> w = std::move(exit_waiter_);
  exit_waiter_ = Future<void>();
  w.state()->loop()->io->remove_waiter(pidfd_, detail::io_direction::read, w.state());
  if (!w.done()) {
    try {
      w.set_result();
    } catch (...) {
      // A closed loop: its tasks are gone, nobody waits.
    }
  }
}

void Process::close_pidfd() noexcept {
  drop_exit_waiter();
  close_fd(pidfd_);
}

void Process::set_status(int status) noexcept {
  if (WIFEXITED(status)) {
    returncode_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    returncode_ = -WTERMSIG(status);
  }
}

// check_has_child() refuses a moved-from (or default) Process: with pid -1,
// waitpid() and kill() would reach every child of the program.
void Process::check_has_child(const char* call) const {
  if (pid_ <= 0 && !returncode_) {
    throw RuntimeError(asyncio_errc::invalid_state, std::string("Process::") + call +
                                                        "(): this Process has no child (it was moved from); use the "
                                                        "Process it was moved to");
  }
}

// try_reap() collects the child's status if it has exited.
bool Process::try_reap() {
  if (returncode_) return true;
  check_has_child("wait");
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    set_status(status);
    // The pid may now be reused: the pidfd has served its purpose.
    close_pidfd();
    return true;
  }
  if (r < 0) {
    // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, a foreign
    // waitpid(-1)); Python reports 255 then.
    if (errno == ECHILD) {
      returncode_ = 255;
      close_pidfd();
      return true;
    }
    throw_errno(errno, "waitpid");
  }
  return false;
}

// returncode() reaps the child if it has exited, as asyncio's child
// watcher sets the return code when the child exits: before, it stayed
// nullopt until someone called wait(), and a ported polling loop never
// ended. A look when asked rather than a watcher registered at spawn: no
// cost for a Process nobody asks, and it works without a loop.
std::optional<int> Process::returncode() noexcept {
  if (!returncode_ && pid_ > 0) {  // a moved-from one must not waitpid(-1)
    try {
      try_reap();
    } catch (...) {
      // waitpid failed otherwise than ECHILD: still unknown, wait() raises it.
    }
  }
  return returncode_;
}

int Process::wait() {
  double delay = 0.001;
  while (!try_reap()) {
    if (pidfd_ >= 0) {
      // One registration on the pidfd for all waiters: a shared future,
      // each task awaiting its own private future chained to it (so that
      // cancelling one waiter leaves the others waiting).
      detail::loop_core& loop = detail::require_running_loop();
      // A waiter left by a wait() cancelled under an earlier loop (a child
      // spawned outside any loop, awaited by one asyncio::run and then the
      // next) is that loop's: awaiting it here raised RuntimeError
      // ("a future attached to a different loop"), so it is replaced.
      if (exit_waiter_.empty() || exit_waiter_.done() || exit_waiter_.state()->loop() != &loop) {
        drop_exit_waiter();
        Future<void> w(new detail::future_value<void>(&loop));
        loop.io->add_waiter(pidfd_, detail::io_direction::read, detail::io_caller::user, w.state());
        exit_waiter_ = w;
      }
      Future<void> shared = exit_waiter_;
      detail::await_shared(shared);
    } else {
      sleep(delay);
      delay = std::min(delay * 2, 0.1);
    }
  }
  return *returncode_;
}

// send_signal() looks first, as Popen.send_signal() polls: a child that has
// exited is reaped here and not signalled, and one whose status someone
// else took (ECHILD, returncode 255) is not either. Signalling its pid then
// raised OSError ESRCH, or reached whatever process had been given the pid
// since. ESRCH from kill() itself (reaped elsewhere in between) is ignored,
// as Python's.
void Process::send_signal(int sig) {
  if (returncode()) return;
  check_has_child("send_signal");
  if (::kill(pid_, sig) != 0 && errno != ESRCH) throw_errno(errno, "kill");
}

void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

communicate_result Process::communicate(std::string_view input) {
  check_has_child("communicate");
  make_streams();
  detail::loop_core& loop = detail::require_running_loop();
  // stdin: the transport writes what the pipe takes now and flushes the
  // rest from a writer callback, then closes; a child that stops reading
  // (EPIPE) ends that quietly.
  if (pipes_[0]) {
    pipes_[0]->write(input);
    pipes_[0]->close();
  }
  // stdout and stderr are read by this one task: each round takes what
  // both pipes have without waiting, then awaits one future registered as
  // the read waiter of every pipe still open (whichever is ready first
  // completes it). No helper tasks: a cancelled communicate() only
  // unregisters, and what it read stays in the streams' buffers.
  detail::stream_transport* outputs[2] = {pipes_[1].get(), pipes_[2].get()};
  bool open[2] = {outputs[0] != nullptr, outputs[1] != nullptr};
  while (open[0] || open[1]) {
    for (int i = 0; i < 2; ++i) {
      while (open[i]) {
        // A chatty child always has more: let the loop poll now and then.
        outputs[i]->yield_if_over_read_budget();
        const int got = outputs[i]->fill_nowait();
        if (got == 0) open[i] = false;
        if (got < 0) break;
      }
    }
    if (!open[0] && !open[1]) break;
    Future<void> ready(new detail::future_value<void>(&loop));
    struct registrations {
      detail::loop_core& loop;
      Future<void>& ready;
      int fds[2] = {-1, -1};
      ~registrations() {
        for (int fd : fds) {
          if (fd >= 0) loop.io->remove_waiter(fd, detail::io_direction::read, ready.state());
        }
      }
    } regs{loop, ready};
    for (int i = 0; i < 2; ++i) {
      if (!open[i]) continue;
      // Each pipe answered EAGAIN just above, as an owner's wait must.
      loop.io->add_waiter(outputs[i]->fd(), detail::io_direction::read, detail::io_caller::owner, ready.state());
      regs.fds[i] = outputs[i]->fd();
    }
    await(ready);
  }
  // Taken once the child is reaped: a cancel of this wait() (the child
  // closed its output but runs on) leaves them in the streams, as promised.
  wait();
  communicate_result result;
  if (outputs[0] != nullptr) result.out = outputs[0]->take_all();
  if (outputs[1] != nullptr) result.err = outputs[1]->take_all();
  return result;
}

std::string read_all(int fd) {
  std::string data;
  while (true) {
    const ssize_t n = read_into(fd, data);
    if (n > 0) {
      continue;
    } else if (n == 0) {
      return data;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_readable(fd);
    } else if (errno != EINTR) {
      throw_errno(errno, "read");
    }
  }
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write_no_sigpipe(fd, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_writable(fd);
    } else if (errno != EINTR) {
      throw_errno(errno, "write");
    }
  }
}

}  // namespace greenlet::asyncio
