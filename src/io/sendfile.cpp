// sendfile.cpp: sock_sendfile() and StreamWriter::sendfile(), asyncio's
// loop.sock_sendfile() and loop.sendfile(): sendfile(2) for a regular file,
// read() and send() for anything else.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "greenlet/asyncio/executor.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/socket.hpp"
#include "io/stream_transport.hpp"

namespace greenlet::asyncio {

namespace {

// fallback_chunk is how much the fallback reads at a time: asyncio's
// SENDFILE_FALLBACK_READBUFFER_SIZE.
constexpr std::size_t fallback_chunk = 256 * 1024;
// Linux's sendfile(2) moves at most this much a call.
constexpr std::uint64_t sendfile_call_max = 0x7ffff000;

// check_sendfile_args() refuses what asyncio's _check_sendfile_params() and
// sock_sendfile() refuse, before anything moves.
void check_sendfile_args(int sock, std::uint64_t offset, const std::optional<std::uint64_t>& count) {
  const int flags = ::fcntl(sock, F_GETFL);
  if (flags < 0) raise_os_error(errno, "sock_sendfile: fcntl(F_GETFL)");
  if ((flags & O_NONBLOCK) == 0) throw ValueError("the socket must be non-blocking (see set_nonblocking())");
  int type = 0;
  socklen_t type_len = sizeof type;
  if (::getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &type_len) < 0) {
    raise_os_error(errno, "sock_sendfile: getsockopt(SO_TYPE)");
  }
  if (type != SOCK_STREAM) throw ValueError("only SOCK_STREAM type sockets are supported");
  if (count && *count == 0) throw ValueError("count must be a positive integer (got 0)");
  if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
    throw ValueError("offset must be a non-negative integer below 2**63 (got " + std::to_string(offset) + ")");
  }
}

// file_position_update sets the file's position to offset + sent on every
// way out, as asyncio's _sock_sendfile_update_filepos(): a caller learns
// from it how far a cancelled or failed send got.
struct file_position_update {
  int file;
  std::uint64_t offset;
  std::uint64_t sent = 0;
  ~file_position_update() {
    if (sent > 0) ::lseek(file, static_cast<off_t>(offset + sent), SEEK_SET);
  }
};

// not_sendable(err) says whether sendfile(2) failing with err before any
// byte went means this pair cannot use it (fall back), not that the
// connection failed (raise). asyncio falls back on every error at the first
// call; a reset or closed connection is then raised by the fallback's
// send(), but with fallback off it would read "not available".
bool not_sendable(int err) {
  return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == ESPIPE || err == EOVERFLOW || err == EIO;
}

// send_native() sends with sendfile(2); std::nullopt if it cannot before
// anything was sent (the caller falls back or refuses).
std::optional<std::uint64_t> send_native(int sock, int file, std::uint64_t offset,
                                         const std::optional<std::uint64_t>& count, file_position_update& position,
                                         std::string& why_not) {
  struct stat st {};
  if (::fstat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
    // asyncio reads st_size of whatever it is, and a pipe's 0 made it send
    // nothing; its fallback reads a pipe to its end.
    why_not = "not a regular file";
    return std::nullopt;
  }
  for (;;) {
    std::uint64_t block = sendfile_call_max;
    if (count) {
      if (position.sent >= *count) break;
      block = std::min(block, *count - position.sent);
    }
    off_t at = static_cast<off_t>(offset + position.sent);
    const ssize_t n = ::sendfile(sock, file, &at, static_cast<std::size_t>(block));
    if (n > 0) {
      position.sent += static_cast<std::uint64_t>(n);
    } else if (n == 0) {
      break;  // the end of the file
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_writable(sock);
    } else if (errno != EINTR) {
      if (position.sent == 0 && not_sendable(errno)) {
        why_not = std::string("sendfile() failed: ") + std::strerror(errno);
        return std::nullopt;
      }
      raise_os_error(errno, "sendfile");
    }
  }
  return position.sent;
}

// send_by_reading() is asyncio's _sock_sendfile_fallback(): read on the
// default executor (a read may block: a pipe, a slow disk), send here.
// send(data) sends one block: sock_sendall() on a socket, the TLS stream's write() and drain().
template <class Send>
std::uint64_t send_by_reading(Send&& send, int file, std::uint64_t offset, const std::optional<std::uint64_t>& count,
                              file_position_update& position) {
  if (offset != 0 && ::lseek(file, static_cast<off_t>(offset), SEEK_SET) < 0) {
    raise_os_error(errno, "sock_sendfile: lseek to the offset");
  }
  std::string buffer(count ? static_cast<std::size_t>(std::min<std::uint64_t>(*count, fallback_chunk)) : fallback_chunk,
                     '\0');
  for (;;) {
    std::size_t block = buffer.size();
    if (count) {
      if (position.sent >= *count) break;
      block = static_cast<std::size_t>(std::min<std::uint64_t>(block, *count - position.sent));
    }
    const ssize_t n = await(to_thread([file, data = buffer.data(), block] {
      ssize_t got;
      do {
        got = ::read(file, data, block);
      } while (got < 0 && errno == EINTR);
      return got < 0 ? -static_cast<ssize_t>(errno) : got;
    }));
    if (n < 0) raise_os_error(static_cast<int>(-n), "sock_sendfile: read");
    if (n == 0) break;
    send(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    position.sent += static_cast<std::uint64_t>(n);
  }
  return position.sent;
}

}  // namespace

std::size_t sock_sendfile(int sock, int file, std::uint64_t offset, std::optional<std::uint64_t> count, bool fallback) {
  check_sendfile_args(sock, offset, count);
  file_position_update position{file, offset};
  std::string why_not;
  if (const auto sent = send_native(sock, file, offset, count, position, why_not)) {
    return static_cast<std::size_t>(*sent);
  }
  if (!fallback) throw SendfileNotAvailableError(why_not);
  return static_cast<std::size_t>(
      send_by_reading([sock](std::string_view data) { sock_sendall(sock, data); }, file, offset, count, position));
}

namespace detail {

std::size_t stream_transport::send_file(int file, std::uint64_t offset, std::optional<std::uint64_t> count,
                                        bool fallback) {
  if (kind_ == transport_kind::pipe) {
    throw RuntimeError(asyncio_errc::invalid_state, "sendfile is not supported for transport " + repr());
  }
  if (closing_ || fd_ < 0) throw RuntimeError(asyncio_errc::invalid_state, "Transport is closing");
  if (sending_file_) throw RuntimeError(asyncio_errc::invalid_state, "unable to write; sendfile is in progress");
  // The file's bytes go after every byte written before: wait until the
  // buffer has handed its last one to the socket.
  while (fd_ >= 0 && error_ == 0 && write_buffered() > 0) await_drain_waiter();
  check_error();
  if (closing_ || fd_ < 0) throw RuntimeError(asyncio_errc::invalid_state, "Transport is closing");
  sending_file_ = true;
  struct end_sending {
    bool& flag;
    ~end_sending() { flag = false; }
  } guard{sending_file_};
  if (tls_ == nullptr) return sock_sendfile(fd_, file, offset, count, fallback);
  // sendfile(2) would put the file's bytes on the wire unencrypted: a TLS
  // stream reads the file and writes it, as asyncio's SSL transport.
  check_sendfile_args(fd_, offset, count);
  if (!fallback) {
    throw SendfileNotAvailableError(
        "sendfile(2) cannot send over TLS (the kernel would send the file unencrypted): pass fallback = true to "
        "read the file and write it through the TLS stream");
  }
  file_position_update position{file, offset};
  auto send = [this](std::string_view data) {
    check_error();
    if (closing_ || fd_ < 0) throw RuntimeError(asyncio_errc::invalid_state, "Transport is closing");
    write_tls(data);
    drain();
  };
  return static_cast<std::size_t>(send_by_reading(send, file, offset, count, position));
}

}  // namespace detail

}  // namespace greenlet::asyncio
