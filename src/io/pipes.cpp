// pipes.cpp: connect_read_pipe()/connect_write_pipe(): a pipe end the user
// has (stdin, a FIFO, one end of pipe()) as a stream, on the same transport
// as a subprocess's pipes.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/io/socket.hpp"
#include "greenlet/io/streams.hpp"
#include "io/stream_transport.hpp"

namespace greenlet::asyncio {

namespace {

// pipe_transport(fd, config, call, writing) checks that epoll can wait on
// fd and wraps it; fd is owned only once this returns.
std::shared_ptr<detail::stream_transport> pipe_transport(int fd, stream_config config, const char* call, bool writing) {
  detail::loop_core& loop = detail::require_running_loop();
  detail::check_stream_config(config, call);
  struct stat st {};
  if (::fstat(fd, &st) < 0) raise_os_error(errno, std::string(call) + "(" + std::to_string(fd) + ")");
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    throw ValueError(std::string(call) + "(): fd " + std::to_string(fd) + " is a " +
                     (S_ISREG(st.st_mode) ? "regular file" : "directory") +
                     ": epoll cannot wait on it (it is always ready); use a pipe, FIFO, socket or terminal, "
                     "or read the file with to_thread()");
  }
  set_nonblocking(fd);
  auto t = detail::stream_transport::make(loop, fd, config, detail::transport_kind::pipe);
  // A write end sees its reader go as a hang-up (EPOLLERR on a FIFO, the
  // peer's close on a socket), as asyncio watches it, for those two kinds
  // only: a terminal's hang-up is not its reader going.
  if (writing && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) t->watch_reader_gone();
  return t;
}

}  // namespace

StreamReader connect_read_pipe(int fd, stream_config config) {
  return StreamReader(pipe_transport(fd, config, "connect_read_pipe", false));
}

StreamWriter connect_write_pipe(int fd, stream_config config) {
  return StreamWriter(pipe_transport(fd, config, "connect_write_pipe", true));
}

}  // namespace greenlet::asyncio
