// subprocess.cpp: create_subprocess_exec/shell and Process. Children are
// started with posix_spawnp (glibc reports a failed exec, e.g. ENOENT, as
// its return value); the parent's pipe ends are made close-on-exec by
// pipe2 and non-blocking afterwards (O_NONBLOCK is shared through dup, so
// setting it at pipe2 time would give the child non-blocking stdio too).
#include "greenlet/io/subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/socket.hpp"

extern char** environ;

namespace greenlet::asyncio {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) { raise_os_error(err, what); }

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// write_no_sigpipe() is write() that reports a reader-less pipe as EPIPE
// without SIGPIPE: SIGPIPE is blocked around the call and an occurrence it
// raised is consumed before the mask is restored.
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t n = ::write(fd, data, size);
  const int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    const timespec zero{};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

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

}  // namespace

Process create_subprocess_exec(const std::string& program, const std::vector<std::string>& args,
                               const subprocess_config& config) {
  using subprocess::stdio;
  if (config.stdin_ == stdio::STDOUT || config.stdout_ == stdio::STDOUT)
    throw OSError(EINVAL, "create_subprocess_exec(): STDOUT is only valid for stderr");
  spawn_resources r;

  // The child starts with no signal blocked (our signal handlers block
  // some in this thread) and SIGPIPE at its default, as Python's children.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&r.attr, &none);
  posix_spawnattr_setsigdefault(&r.attr, &defaults);
  posix_spawnattr_setflags(&r.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  const stdio modes[3] = {config.stdin_, config.stdout_, config.stderr_};
  for (int target = 0; target < 3; ++target) {
    switch (modes[target]) {
      case stdio::inherit:
        break;
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
      case stdio::STDOUT:
        posix_spawn_file_actions_adddup2(&r.actions, 1, 2);
        break;
    }
  }
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
  const int err =
      posix_spawnp(&p.pid_, program.c_str(), &r.actions, &r.attr, argv.data(), config.env ? envp.data() : environ);
  if (err != 0) throw_errno(err, "create_subprocess_exec(" + program + ")");

  // Opened before anyone can reap the child, so the pid cannot be reused
  // under it. Failure (old kernel, seccomp) leaves wait() to poll.
  p.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, p.pid_, 0));
  if (p.pidfd_ >= 0) ::fcntl(p.pidfd_, F_SETFD, FD_CLOEXEC);

  int* parent_ends[3] = {&p.stdin_, &p.stdout_, &p.stderr_};
  for (int target = 0; target < 3; ++target) {
    if (modes[target] != stdio::PIPE) continue;
    int& mine = r.pipes[target][target == 0 ? 1 : 0];
    *parent_ends[target] = std::exchange(mine, -1);
    set_nonblocking(*parent_ends[target]);
  }
  return p;
}

Process create_subprocess_shell(const std::string& cmd, const subprocess_config& config) {
  return create_subprocess_exec("/bin/sh", {"-c", cmd}, config);
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      stdin_(std::exchange(other.stdin_, -1)),
      stdout_(std::exchange(other.stdout_, -1)),
      stderr_(std::exchange(other.stderr_, -1)),
      returncode_(other.returncode_) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    stdin_ = std::exchange(other.stdin_, -1);
    stdout_ = std::exchange(other.stdout_, -1);
    stderr_ = std::exchange(other.stderr_, -1);
    returncode_ = other.returncode_;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !returncode_) try_reap();
  close_fds();
}

void Process::close_fds() noexcept {
  close_fd(pidfd_);
  close_fd(stdin_);
  close_fd(stdout_);
  close_fd(stderr_);
}

void Process::close_stdin() noexcept { close_fd(stdin_); }

void Process::set_status(int status) noexcept {
  if (WIFEXITED(status)) {
    returncode_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    returncode_ = -WTERMSIG(status);
  }
}

// try_reap() collects the child's status if it has exited.
bool Process::try_reap() {
  if (returncode_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    set_status(status);
    // The pid may now be reused: the pidfd has served its purpose.
    close_fd(pidfd_);
    return true;
  }
  if (r < 0) {
    // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, a foreign
    // waitpid(-1)); Python reports 255 then.
    if (errno == ECHILD) {
      returncode_ = 255;
      close_fd(pidfd_);
      return true;
    }
    throw_errno(errno, "waitpid");
  }
  return false;
}

int Process::wait() {
  double delay = 0.001;
  while (!try_reap()) {
    if (pidfd_ >= 0) {
      wait_readable(pidfd_);
    } else {
      sleep(delay);
      delay = std::min(delay * 2, 0.1);
    }
  }
  return *returncode_;
}

void Process::send_signal(int sig) {
  if (returncode_ || pid_ <= 0) return;
  if (::kill(pid_, sig) != 0) throw_errno(errno, "kill");
}

void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

communicate_result Process::communicate(std::string_view input) {
  // One task drives all three pipes: persistent add_reader/add_writer
  // callbacks complete a wake-up future, and each round does every
  // non-blocking read and write it can before awaiting the next one. No
  // helper tasks, so cancellation has nothing to clean up but the
  // registrations, which the guard below removes on every way out.
  event_loop& loop = get_running_loop();
  struct state {
    Future<void> wake;
  } st;
  communicate_result result;
  std::size_t written = 0;
  bool out_open = stdout_ >= 0, err_open = stderr_ >= 0;
  if (stdin_ >= 0 && input.empty()) close_stdin();

  struct registrations {
    event_loop& loop;
    int in = -1, out = -1, err = -1;
    void drop_in() noexcept {
      if (in >= 0) loop.remove_writer(std::exchange(in, -1));
    }
    void drop_out() noexcept {
      if (out >= 0) loop.remove_reader(std::exchange(out, -1));
    }
    void drop_err() noexcept {
      if (err >= 0) loop.remove_reader(std::exchange(err, -1));
    }
    ~registrations() {
      drop_in();
      drop_out();
      drop_err();
    }
  } regs{loop};
  auto wake = [&st] {
    if (st.wake.state() != nullptr && !st.wake.done()) st.wake.set_result();
  };

  // drain(fd, buf) reads what fd has; false at EOF.
  auto drain = [](int fd, std::string& buf) {
    while (true) {
      const ssize_t n = read_into(fd, buf);
      if (n > 0) {
        continue;
      } else if (n == 0) {
        return false;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return true;
      } else if (errno != EINTR) {
        throw_errno(errno, "read");
      }
    }
  };

  while (stdin_ >= 0 || out_open || err_open) {
    if (stdin_ >= 0) {
      while (written < input.size()) {
        const ssize_t n = write_no_sigpipe(stdin_, input.data() + written, input.size() - written);
        if (n >= 0) {
          written += static_cast<std::size_t>(n);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          break;
        } else if (errno == EPIPE) {
          written = input.size();  // the child stopped reading: not an error
        } else if (errno != EINTR) {
          throw_errno(errno, "write");
        }
      }
      if (written == input.size()) {
        regs.drop_in();
        close_stdin();
      } else if (regs.in < 0) {
        loop.add_writer(stdin_, wake);
        regs.in = stdin_;
      }
    }
    if (out_open && !(out_open = drain(stdout_, result.out))) regs.drop_out();
    if (out_open && regs.out < 0) {
      loop.add_reader(stdout_, wake);
      regs.out = stdout_;
    }
    if (err_open && !(err_open = drain(stderr_, result.err))) regs.drop_err();
    if (err_open && regs.err < 0) {
      loop.add_reader(stderr_, wake);
      regs.err = stderr_;
    }
    if (stdin_ >= 0 || out_open || err_open) {
      st.wake = loop.create_future<void>();
      await(st.wake);
      st.wake = Future<void>();
    }
  }
  wait();
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
