// child_reaper.cpp: the thread that reaps the children of destroyed Process
// objects (see child_reaper.hpp). One per process at most, started when a
// child is handed over and none runs; it polls an eventfd (more children)
// and the children's pidfds, and ends, closing the eventfd, once every
// child it was given is reaped, so an idle process keeps no thread and no
// descriptor for it.
//
// Its memory comes from malloc and its thread from pthread_create, not new
// and std::thread: it is called from Process's destructor, where nothing may
// throw, and its allocations, freed later on its own thread, stay out of
// what operator new accounts for (the tests' per-test leak check).
#include "io/child_reaper.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

#include "io/blocked_signals.hpp"

namespace greenlet::asyncio::detail {

namespace {

// P_PIDFD (Linux 5.4) is an idtype_t only from glibc 2.36 on.
constexpr auto p_pidfd = static_cast<idtype_t>(3);

// Children without a pidfd (old kernel, seccomp) are polled this often.
constexpr int poll_interval_ms = 100;

struct child {
  pid_t pid;
  int pidfd;
  child* next;
};

// reaper_state is the process's reaper. Lock order: only `mutex`, never
// held while the thread waits or reaps.
struct reaper_state {
  pid_t owner = 0;  // the process it belongs to: a fork's child starts afresh
  std::mutex mutex;
  child* handed = nullptr;  // handed over, not yet taken by the thread
  bool running = false;     // a thread will take `handed`
  int wake_fd = -1;         // the running thread's eventfd; it closes it as it ends
};

std::atomic<reaper_state*> current_state{nullptr};

// state() is this process's reaper_state, made on first use. A child
// forked while another thread held the parent's mutex inherits it locked,
// and not the thread: it makes its own (the parent's copy is left alone).
reaper_state* state() noexcept {
  const pid_t me = ::getpid();
  reaper_state* s = current_state.load(std::memory_order_acquire);
  if (s != nullptr && s->owner == me) return s;
  void* memory = std::malloc(sizeof(reaper_state));
  if (memory == nullptr) return nullptr;
  auto* fresh = new (memory) reaper_state();
  fresh->owner = me;
  if (current_state.compare_exchange_strong(s, fresh, std::memory_order_acq_rel)) return fresh;
  fresh->~reaper_state();
  std::free(memory);
  return s;  // another thread of this process made it first
}

// reaped(c) reaps c if it has exited; true also if it can never be reaped
// here (someone else did: ECHILD), so that it is dropped.
bool reaped(const child& c) noexcept {
  if (c.pidfd >= 0) {
    siginfo_t info{};
    if (::waitid(p_pidfd, static_cast<id_t>(c.pidfd), &info, WEXITED | WNOHANG) == 0) return info.si_pid != 0;
    if (errno == EINTR) return false;
    if (errno != EINVAL) return true;
    // EINVAL: a kernel without P_PIDFD. By pid, then.
  }
  int status = 0;
  const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
  return r == c.pid || (r < 0 && errno != EINTR);
}

void pause_briefly() noexcept {
  const timespec delay{0, poll_interval_ms * 1000000L};
  ::nanosleep(&delay, nullptr);
}

void* serve(void* arg) {
  auto* s = static_cast<reaper_state*>(arg);
  pthread_setname_np(pthread_self(), "greenlet-reaper");
  child* mine = nullptr;
  std::size_t count = 0;
  pollfd* fds = nullptr;
  std::size_t capacity = 0;
  for (;;) {
    {
      std::lock_guard lock(s->mutex);
      while (s->handed != nullptr) {
        child* c = s->handed;
        s->handed = c->next;
        c->next = mine;
        mine = c;
        ++count;
      }
      if (mine == nullptr) {
        // Nothing left: end, so that an adder starts a new thread.
        ::close(s->wake_fd);
        s->wake_fd = -1;
        s->running = false;
        break;
      }
    }
    if (count + 1 > capacity) {
      auto* grown = static_cast<pollfd*>(std::realloc(fds, (count + 1) * sizeof(pollfd)));
      if (grown == nullptr) {
        pause_briefly();
        continue;
      }
      fds = grown;
      capacity = count + 1;
    }
    fds[0] = {s->wake_fd, POLLIN, 0};  // only this thread closes it
    bool without_pidfd = false;
    std::size_t n = 1;
    for (child* c = mine; c != nullptr; c = c->next) {
      fds[n++] = {c->pidfd, POLLIN, 0};  // poll() skips a negative fd
      without_pidfd |= c->pidfd < 0;
    }
    if (::poll(fds, n, without_pidfd ? poll_interval_ms : -1) < 0) {
      if (errno != EINTR) pause_briefly();
      continue;
    }
    if (fds[0].revents != 0) {
      std::uint64_t ignored;
      [[maybe_unused]] const ssize_t r = ::read(s->wake_fd, &ignored, sizeof ignored);
    }
    child** link = &mine;
    for (std::size_t i = 1; i < n; ++i) {
      child* c = *link;
      if ((c->pidfd < 0 || fds[i].revents != 0) && reaped(*c)) {
        *link = c->next;
        if (c->pidfd >= 0) ::close(c->pidfd);
        std::free(c);
        --count;
      } else {
        link = &c->next;
      }
    }
  }
  std::free(fds);
  return nullptr;
}

// start_thread(s) starts a detached thread serving s, with asynchronous
// signals blocked (a signal handler's signal must not land on it).
bool start_thread(reaper_state* s) noexcept {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int err;
  {
    const ::greenlet::detail::async_signals_blocked masked;
    err = pthread_create(&thread, &attr, &serve, s);
  }
  pthread_attr_destroy(&attr);
  return err == 0;
}

}  // namespace

void reap_when_exited(pid_t pid, int pidfd) noexcept {
  reaper_state* s = state();
  auto* c = s != nullptr ? static_cast<child*>(std::malloc(sizeof(child))) : nullptr;
  if (c == nullptr) {
    if (pidfd >= 0) ::close(pidfd);
    return;
  }
  *c = child{pid, pidfd, nullptr};
  std::lock_guard lock(s->mutex);
  c->next = s->handed;
  s->handed = c;
  if (s->running) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t r = ::write(s->wake_fd, &one, sizeof one);
    return;
  }
  s->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd >= 0 && start_thread(s)) {
    s->running = true;
    return;
  }
  // No thread to be had: the child stays unreaped (`handed` held only it,
  // since a thread ends only once it took everything).
  if (s->wake_fd >= 0) ::close(s->wake_fd);
  s->wake_fd = -1;
  s->handed = nullptr;
  if (pidfd >= 0) ::close(pidfd);
  std::free(c);
}

}  // namespace greenlet::asyncio::detail
