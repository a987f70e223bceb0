// owned_fd.hpp: small descriptor helpers the I/O transports share.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace greenlet::asyncio::detail {

// would_block(err): the call would have waited (EAGAIN/EWOULDBLOCK).
inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

// owned_fd closes a descriptor being set up unless release()d.
struct owned_fd {
  int fd = -1;
  owned_fd() = default;
  explicit owned_fd(int f) noexcept : fd(f) {}
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() noexcept { return std::exchange(fd, -1); }
};

}  // namespace greenlet::asyncio::detail
