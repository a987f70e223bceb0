// process_pool.cpp: ProcessPoolExecutor. Each worker process is forked in
// the constructor and talks to one parent-side thread over a socketpair:
// the thread takes a job from the shared queue, writes the request, blocks
// on the reply. A reply cut short (EOF, error) means the worker died; the
// pool is then broken. A worker that dies idle is noticed by one more
// thread, the watcher, which polls every worker's socket for the hang-up.
// Sockets, not pipes: send(MSG_NOSIGNAL) to a dead worker fails with EPIPE
// instead of killing us with SIGPIPE.
#include "greenlet/concurrent/process_pool.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "io/blocked_signals.hpp"

namespace greenlet::concurrent {

namespace detail {

namespace {

std::mutex registry_mutex;
std::map<std::string, process_entry>& registry() {
  static auto* functions = new std::map<std::string, process_entry>();
  return *functions;
}

// The pool whose serve() runs on this thread, if any: a done callback runs
// there, and such a thread must not join itself.
thread_local const process_pool* current_process_pool = nullptr;

// Parent-side sockets of every live pool (and each watcher's wake-up
// eventfd). A worker forked for one pool must not keep another pool's
// sockets open, or that pool's workers would never see EOF at shutdown. The mutex is held across fork(), so the child
// inherits a consistent set (and the lock, which it never needs to take).
std::mutex parent_fds_mutex;
std::vector<int>& parent_fds() {
  static auto* fds = new std::vector<int>();
  return *fds;
}

void forget_parent_fd(int fd) {
  std::lock_guard<std::mutex> lock(parent_fds_mutex);
  std::erase(parent_fds(), fd);
}

enum reply_status : std::uint8_t { reply_ok = 0, reply_raised = 1, reply_unknown = 2 };

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A message is a 64-bit length and that many bytes.
bool write_message(int fd, std::string_view body) {
  std::uint64_t size = body.size();
  return write_all(fd, reinterpret_cast<const char*>(&size), sizeof size) && write_all(fd, body.data(), body.size());
}

bool read_message(int fd, std::string& body) {
  std::uint64_t size = 0;
  if (!read_all(fd, reinterpret_cast<char*>(&size), sizeof size)) return false;
  body.resize(size);
  return read_all(fd, body.data(), size);
}

// flush_stdio() writes out what the standard streams hold: before a fork,
// so that the worker does not inherit the parent's pending output and write
// it a second time; in the worker before _exit(), which drops what the
// functions printed but did not flush. Python flushes at both points too.
void flush_stdio() noexcept {
  try {
    std::cout.flush();
    std::clog.flush();
  } catch (...) {
    // A stream set to throw: its state says what went wrong.
  }
  std::fflush(nullptr);
}

// worker_main is the child's whole life: request (name, args) in, reply
// (status byte + payload) out, until the parent closes the socket.
[[noreturn]] void worker_main(int fd) {
  std::string name, args;
  while (read_message(fd, name) && read_message(fd, args)) {
    std::string reply(1, static_cast<char>(reply_ok));
    // No lock: this process is single-threaded, and the registry was
    // consistent when forked (the parent held registry_mutex across fork()).
    process_entry entry;
    if (auto it = registry().find(name); it != registry().end()) entry = it->second;
    if (!entry) {
      reply[0] = static_cast<char>(reply_unknown);
      reply += "no process function named '" + name + "': register it before the pool starts";
    } else {
      try {
        reply += entry(args);
      } catch (const std::exception& e) {
        reply.assign(1, static_cast<char>(reply_raised));
        reply += demangle(typeid(e).name()) + ": " + e.what();
      } catch (...) {
        reply.assign(1, static_cast<char>(reply_raised));
        reply += "unknown exception";
      }
    }
    if (!write_message(fd, reply)) break;
  }
  flush_stdio();
  ::_exit(0);
}

}  // namespace

void register_process_entry(const std::string& name, process_entry entry) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry()[name] = std::move(entry);
}

// process_pool is shared with its parent-side threads (each holds a
// reference), so a thread never touches a freed pool, even when the last
// handle to the executor goes on one of them (in a done callback).
class process_pool : public std::enable_shared_from_this<process_pool> {
 public:
  explicit process_pool(std::size_t max_workers) {
    if (max_workers == 0) max_workers = std::max(1u, std::thread::hardware_concurrency());
    // A worker is recorded right after its fork (the reserve makes that
    // push_back unable to throw), so that a later socketpair() or fork()
    // failing (EMFILE, EAGAIN) closes and reaps the workers forked so far;
    // before, they stayed alive, blocked on their sockets, for ever.
    workers_.reserve(max_workers);
    try {
      fork_from_a_fresh_thread(max_workers);
    } catch (...) {
      close_workers();
      throw;
    }
  }

  // start() starts one thread per worker; separate from the constructor, as
  // each thread takes a reference (shared_from_this()). If a thread cannot be
  // started, those that were are stopped and every worker reaped.
  void start() {
    try {
      make_wake_fd();
      const ::greenlet::detail::async_signals_blocked masked;  // the threads inherit it: see the header
      for (std::size_t i = 0; i < workers_.size(); ++i) {
        threads_.emplace_back([self = shared_from_this(), i] { self->serve(i); });
      }
      threads_.emplace_back([self = shared_from_this()] { self->watch(); });
    } catch (...) {
      shutdown(true, false);
      throw;
    }
  }

  // The last reference is a thread's when the executor was dropped on one of
  // them (its shutdown(wait=true) refused to wait there). Every other thread
  // has then left serve(), as it held a reference until it did: join them;
  // this one cannot join itself and is detached, at the end of its life.
  // After a shutdown(wait=true) from outside there is nothing left to do.
  ~process_pool() {
    for (auto& t : threads_) {
      if (!t.joinable()) continue;
      if (t.get_id() == std::this_thread::get_id()) {
        t.detach();
      } else {
        t.join();
      }
    }
    close_workers();
  }

  void enqueue(process_job job) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!broken_.empty()) throw BrokenProcessPool(broken_);
    if (shutdown_) {
      throw RuntimeError(concurrent_errc::shutdown, "cannot schedule new futures after shutdown");
    }
    queue_.push_back(std::move(job));
    cv_.notify_one();
  }

  void shutdown(bool wait, bool cancel_futures) {
    std::deque<process_job> cancelled;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
      if (cancel_futures) cancelled.swap(queue_);
      cv_.notify_all();
    }
    stop_watching();
    for (auto& job : cancelled) job.future->cancel();
    if (!wait) return;
    if (current_process_pool == this) {
      // A done callback: joining would wait for itself. The threads still
      // drain the queue; whoever drops the last reference frees the rest.
      throw RuntimeError(concurrent_errc::shutdown,
                         "shutdown(wait=true) from one of the pool's own threads (a done callback) would wait "
                         "for itself: use shutdown(false)");
    }
    // The first caller to get here joins the threads and then closes the
    // sockets; a later or concurrent one waits until it has. Before, the
    // second found the thread list taken, returned at once and closed the
    // sockets under the first one's threads (BrokenProcessPool for all).
    std::unique_lock<std::mutex> lock(mutex_);
    if (closing_) {
      closed_cv_.wait(lock, [this] { return closed_; });
      return;
    }
    closing_ = true;
    lock.unlock();
    for (auto& t : threads_) t.join();  // threads_ is fixed once started; only the closing_ caller joins
    close_workers();
    lock.lock();
    closed_ = true;
    closed_cv_.notify_all();
  }

  std::size_t max_workers() const noexcept { return workers_.size(); }
  std::vector<int> pids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<int> out;
    for (const auto& w : workers_) out.push_back(static_cast<int>(w.pid));
    return out;
  }

 private:
  struct worker {
    pid_t pid;
    int fd;
    bool reaped = false;   // by worker_died(), which saw it die
    bool claimed = false;  // worker_died() runs for it: only one thread reads its status and reaps it
    // The future of the job it runs, if any: break_pool() fails it even when
    // this worker is alive, as CPython fails every running future.
    std::shared_ptr<future_core> running;
  };

  // fork_from_a_fresh_thread(n) forks the workers from a short-lived thread
  // of its own. A child's one thread is a copy of the thread that forked it:
  // forked from the caller, a worker made inside an event-loop task ran on
  // that task's small stack (128 KiB: a function with a big local crashed)
  // and kept its thread-locals, so it believed it ran inside the task
  // (asyncio::run: "cannot be called from a running event loop",
  // Future::result(): blocking_in_loop). A new thread has a full-size stack
  // and fresh thread-locals; its signal mask is the caller's, which the
  // workers keep.
  void fork_from_a_fresh_thread(std::size_t max_workers) {
    std::exception_ptr error;
    std::thread forker([this, max_workers, &error] {
      try {
        fork_workers(max_workers);
      } catch (...) {
        error = std::current_exception();
      }
    });
    forker.join();
    if (error) std::rethrow_exception(error);
  }

  // fork_workers(n) forks every worker before any thread of ours starts.
  void fork_workers(std::size_t max_workers) {
    for (std::size_t i = 0; i < max_workers; ++i) {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::system_error(errno, std::generic_category(), "socketpair() for a process pool worker");
      }
      flush_stdio();
      // Lock order: parent_fds_mutex, then registry_mutex.
      std::unique_lock<std::mutex> fds_lock(parent_fds_mutex);
      std::unique_lock<std::mutex> registry_lock(registry_mutex);
      pid_t pid = ::fork();
      if (pid < 0) {
        int err = errno;
        registry_lock.unlock();
        fds_lock.unlock();
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::system_error(err, std::generic_category(), "fork() for a process pool worker");
      }
      if (pid == 0) {
        ::close(fds[0]);
        for (int fd : parent_fds()) ::close(fd);
        worker_main(fds[1]);
      }
      registry_lock.unlock();
      ::close(fds[1]);
      workers_.push_back({pid, fds[0], false, false, nullptr});
      parent_fds().push_back(fds[0]);
    }
  }

  // close_workers() closes the sockets (EOF: each worker exits) and reaps the
  // workers, once every thread has left serve(). Idempotent.
  void close_workers() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (wake_fd_ >= 0) {
      forget_parent_fd(wake_fd_);
      ::close(wake_fd_);
      wake_fd_ = -1;
    }
    for (auto& w : workers_) {
      if (w.fd >= 0) {
        forget_parent_fd(w.fd);
        ::close(w.fd);  // EOF: the worker exits
      }
      w.fd = -1;
    }
    for (auto& w : workers_) {
      if (w.pid > 0 && !w.reaped) {
        while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      w.pid = -1;
    }
  }

  // serve(i) feeds worker i until shutdown has drained the queue or the pool
  // breaks.
  void serve(std::size_t i) {
    current_process_pool = this;
    const int fd = workers_[i].fd;  // fixed until every serve() has returned
    for (;;) {
      process_job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return !queue_.empty() || shutdown_ || !broken_.empty(); });
        if (!broken_.empty() || queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        // Under the pool's lock (it takes only the future's own), so that the
        // job is in the queue or recorded as running whenever break_pool() looks.
        if (!job.future->set_running_or_notify_cancel()) continue;
        workers_[i].running = job.future;
      }
      std::string reply;
      if (!write_message(fd, job.name) || !write_message(fd, job.args) || !read_message(fd, reply) || reply.empty()) {
        worker_died(i);  // breaks the pool, which fails this job's future with the others
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        // Taken by break_pool(): the pool broke while this job ran, its future
        // has failed already, and the reply is dropped (CPython's too).
        if (!workers_[i].running) return;
        workers_[i].running.reset();
      }
      std::string_view payload(reply);
      payload.remove_prefix(1);
      try {
        switch (static_cast<reply_status>(reply[0])) {
          case reply_ok: job.complete(payload); break;
          case reply_raised: throw RemoteError(std::string(payload));
          case reply_unknown: throw RuntimeError(concurrent_errc::unknown_function, std::string(payload));
        }
      } catch (...) {
        job.future->set_exception(std::current_exception());
      }
    }
  }

  // break_pool(how) breaks the pool because a worker died (`how` says which
  // and how), as CPython's terminate_broken() does: every future the pool
  // still holds, running on any worker or queued, fails with
  // BrokenProcessPool naming the death; submit() raises BrokenProcessPool from
  // now on; and the first break kills the other workers. Before, a job running
  // on a live worker ran on and delivered its result from a broken pool, and
  // one that never ended kept shutdown() waiting for ever. SIGKILL rather than
  // Python's SIGTERM: the workers inherit the caller's signal mask, which may
  // block SIGTERM. No worker is reaped before the pool is broken (see
  // worker_died()), so no pid killed here can have been reused.
  void break_pool(const std::string& how) {
    const std::string message =
        "A process in the process pool was terminated abruptly while the future was running or pending: " + how + ".";
    std::deque<process_job> pending;
    std::vector<std::shared_ptr<future_core>> running;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (broken_.empty()) {
        broken_ = "A child process terminated abruptly, the process pool is not usable anymore: " + how +
                  ". Shut it down and make a new ProcessPoolExecutor.";
        for (const worker& w : workers_) {
          if (w.pid > 0 && !w.reaped) ::kill(w.pid, SIGKILL);
        }
      }
      pending.swap(queue_);
      for (worker& w : workers_) {
        if (w.running) running.push_back(std::move(w.running));
        w.running.reset();
      }
      cv_.notify_all();
    }
    auto fail = [&message](future_core& future) {
      try {
        future.set_exception(std::make_exception_ptr(BrokenProcessPool(message)));
      } catch (const ::greenlet::asyncio::InvalidStateError&) {
        // Cancelled meanwhile (a queued one).
      }
    };
    for (auto& f : running) fail(*f);
    for (auto& p : pending) fail(*p.future);
  }

  // make_wake_fd() makes the eventfd that stop_watching() wakes the watcher
  // with, listed with the parent-side sockets so that no later pool's worker
  // keeps it.
  // Made before any thread of the pool starts: no lock is needed for wake_fd_
  // itself (and mutex_ is never taken inside parent_fds_mutex).
  void make_wake_fd() {
    std::lock_guard<std::mutex> fds_lock(parent_fds_mutex);  // held: a concurrent fork sees it listed, or not made
    int fd = ::eventfd(0, EFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd() for a process pool's watcher");
    parent_fds().push_back(fd);
    wake_fd_ = fd;
  }

  // stop_watching() tells the watcher to return: at shutdown, before the
  // sockets it polls are closed (and their numbers reused).
  void stop_watching() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (wake_fd_ < 0) return;
    const std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  // watch() is the watcher thread: it waits for a worker's socket to hang up
  // (the worker died: killed, crashed, or it exited) and then breaks the
  // pool at once, as Python's executor manager does when a worker's sentinel
  // fires. Without it a worker that died idle went unnoticed (a zombie)
  // until a submit() handed it a job, which then failed, or went to another
  // worker while the pool quietly ran short of one. A worker that dies busy
  // is also seen by its serve() thread; either one breaking is enough. It
  // returns at shutdown (stop_watching()) or once the pool is broken.
  void watch() {
    current_process_pool = this;  // a done callback run here must not join this thread
    std::vector<pollfd> fds;
    for (const worker& w : workers_) fds.push_back({w.fd, POLLRDHUP, 0});  // fixed until this thread is joined
    fds.push_back({wake_fd_, POLLIN, 0});
    for (;;) {
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;  // cannot poll (ENOMEM): busy workers' deaths are still seen by serve()
      }
      if (fds.back().revents != 0) return;
      for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          worker_died(i);
          return;
        }
      }
    }
  }

  // worker_died(i) breaks the pool for worker i, whose socket hung up, with
  // how it ended, then reaps it. The pool is broken before the worker is
  // reaped (waitid(WNOWAIT) reads the status and leaves the zombie), so once
  // it is gone, submit() refuses. Called by the watcher and by the worker's
  // serve() thread; the first one does it, the other returns.
  void worker_died(std::size_t i) {
    pid_t pid;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (workers_[i].claimed) return;
      workers_[i].claimed = true;
      pid = workers_[i].pid;
    }
    siginfo_t info{};
    int got = -1;
    while ((got = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT)) < 0 && errno == EINTR) {
    }
    std::string how = "worker process " + std::to_string(pid);
    if (got < 0) {
      how += " closed its socket";  // reaped by someone else (SIGCHLD ignored, waitpid(-1))
    } else if (info.si_code == CLD_EXITED) {
      how += " exited with status " + std::to_string(info.si_status);
    } else {
      how += " was killed by signal " + std::to_string(info.si_status);
      if (const char* name = ::sigabbrev_np(info.si_status)) how += std::string(" (SIG") + name + ")";
    }
    break_pool(how);
    if (got < 0) return;
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(mutex_);
    workers_[i].reaped = true;
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<process_job> queue_;
  std::vector<worker> workers_;
  std::vector<std::thread> threads_;
  bool shutdown_ = false;
  bool closing_ = false;  // a shutdown(wait=true) is joining the threads and closing the sockets
  bool closed_ = false;   // and is done
  std::condition_variable closed_cv_;
  std::string broken_;
  int wake_fd_ = -1;  // the watcher's wake-up (stop_watching())
};

}  // namespace detail

ProcessPoolExecutor::ProcessPoolExecutor(std::size_t max_workers)
    : impl_(std::make_shared<detail::process_pool>(max_workers)) {
  impl_->start();
}

ProcessPoolExecutor::~ProcessPoolExecutor() {
  // Python's __exit__: wait for the work. A destructor cannot throw: on one
  // of the pool's own threads (the last handle dropped in a done callback)
  // shutdown() refuses to wait; the threads finish the work and the last of
  // them frees the pool, its sockets and its worker processes.
  try {
    impl_->shutdown(true, false);
  } catch (...) {
  }
}

void ProcessPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  if (wait) detail::check_not_in_task("ProcessPoolExecutor::shutdown(wait=true)");
  impl_->shutdown(wait, cancel_futures);
}

std::size_t ProcessPoolExecutor::max_workers() const noexcept { return impl_->max_workers(); }
std::vector<int> ProcessPoolExecutor::pids() const { return impl_->pids(); }
void ProcessPoolExecutor::enqueue(detail::process_job job) { impl_->enqueue(std::move(job)); }

}  // namespace greenlet::concurrent
