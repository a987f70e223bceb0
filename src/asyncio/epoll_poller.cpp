// epoll_poller.cpp: the Linux poller: one epoll instance per loop, and an
// eventfd in it so call_soon_threadsafe() can end a sleeping wait.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <ctime>
#include <system_error>

#include "asyncio/poller.hpp"
#include "greenlet/detail/loop_core.hpp"

namespace greenlet::asyncio::detail {

namespace {

class epoll_poller final : public poller {
 public:
  epoll_poller() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      int err = errno;
      ::close(epoll_fd_);
      throw std::system_error(err, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // null marks the wake-up eventfd
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  }
  ~epoll_poller() override {
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }

  void wait(loop_core&, double timeout) override {
    epoll_event events[64];
    int n;
    if (timeout < 0) {
      n = ::epoll_wait(epoll_fd_, events, 64, -1);
    } else {
      // epoll_pwait2 takes nanoseconds; epoll_wait only milliseconds, which
      // would round short timers up to a whole millisecond.
      timespec ts;
      ts.tv_sec = static_cast<time_t>(timeout);
      ts.tv_nsec = static_cast<long>((timeout - static_cast<double>(ts.tv_sec)) * 1e9);
      n = ::epoll_pwait2(epoll_fd_, events, 64, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        n = ::epoll_wait(epoll_fd_, events, 64, static_cast<int>(std::ceil(timeout * 1000)));
      }
    }
    if (n < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        std::uint64_t count;
        while (::read(wake_fd_, &count, sizeof count) > 0) {
        }
      }
    }
  }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
  }

  std::size_t watched() const noexcept override { return 0; }

 private:
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
};

}  // namespace

std::unique_ptr<poller> make_epoll_poller() { return std::make_unique<epoll_poller>(); }

}  // namespace greenlet::asyncio::detail
