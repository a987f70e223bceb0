// io/socket.hpp: asyncio's low-level socket calls (loop.sock_recv, ...) as
// free functions on non-blocking fds. Each is called from a task: it tries
// the system call and, while it would block, awaits the fd's readiness, so
// other tasks run meanwhile. Cancelling the task while it waits removes the
// registration and raises CancelledError; no data is lost or half-sent
// except by sock_sendall (see there). The data calls (sock_recv*, sock_sendall,
// sock_recvfrom*, sock_sendto) pass MSG_DONTWAIT, so they never block the
// loop's thread, even on a blocking socket; sock_accept() and sock_connect()
// have no such flag and refuse a blocking socket with ValueError (asyncio's
// debug-mode check), as sock_sendfile() does.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "greenlet/io/address.hpp"
#include "greenlet/io/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// wait_readable(fd)/wait_writable(fd) await fd's readiness once. Throws
// RuntimeError outside a task or if another task already waits on fd in
// that direction, OSError if epoll refuses fd, CancelledError; OSError(EBADF)
// if fd is closed meanwhile and its number taken by a file someone else
// waits on (docs/io.md; cancel a waiting task before closing its fd).
void wait_readable(int fd);
// wait_writable(fd) awaits fd's writability once; see wait_readable(). Throws as wait_readable();
// a task of the running loop's thread only.
void wait_writable(int fd);

// sock_recv_into(fd, buf) receives up to buf.size() bytes; 0 means EOF.
// Throws ConnectionResetError and other OSErrors.
std::size_t sock_recv_into(int fd, std::span<std::byte> buf);
// Overload of sock_recv_into(fd, buf): receives up to size bytes into buf; 0 means EOF. Throws as
// that one; a task of the running loop's thread only.
std::size_t sock_recv_into(int fd, void* buf, std::size_t size);
// sock_recv(fd, n) receives up to n bytes; empty at EOF.
std::string sock_recv(int fd, std::size_t n);
// sock_sendall(fd, data) sends all of data, awaiting while the socket's
// buffer is full. If cancelled midway, a prefix of data has been sent.
// Throws BrokenPipeError/ConnectionResetError (never SIGPIPE).
void sock_sendall(int fd, std::string_view data);
// Overload of sock_sendall(fd, data) for bytes. Throws as that one; a task of the running loop's
// thread only.
void sock_sendall(int fd, std::span<const std::byte> data);
// sock_accept(fd) awaits a connection on the listening fd and returns it,
// non-blocking and close-on-exec. peer/peer_len, if given, get its address.
// Throws ValueError if fd is a blocking socket (see set_nonblocking()), OSError.
int sock_accept(int fd, sockaddr_storage* peer = nullptr, socklen_t* peer_len = nullptr);
// sock_connect(fd, addr, len) connects the non-blocking fd, awaiting the
// handshake. Throws ConnectionRefusedError and other OSErrors, whose what()
// names the address, as Python's "Connect call failed ('127.0.0.1', 1)":
// "connect to 127.0.0.1:1: Connection refused" (a Unix socket: its path);
// ValueError if fd is a blocking socket (see set_nonblocking()).
void sock_connect(int fd, const sockaddr* addr, socklen_t len);
// sock_connect(fd, host, port) is loop.sock_connect(sock, (host, port)):
// resolves host for fd's family (AF_INET or AF_INET6) and connects to the
// first address. A numeric host resolves inline; a name with getaddrinfo
// on the loop's default executor (or by the loop's resolver, set_resolver())
// while the task awaits. Throws gaierror
// (unknown host: the message names it; or no address of fd's family),
// ConnectionRefusedError and other OSErrors, CancelledError;
// std::out_of_range and ValueError as open_connection() (port outside
// 0-65535, NUL in host).
void sock_connect(int fd, const std::string& host, int port);

// Datagrams (UDP or Unix-domain SOCK_DGRAM), as Python 3.11's
// loop.sock_recvfrom/sock_recvfrom_into/sock_sendto:
//
//   int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);  // bind() it to receive
//   auto [data, from] = asyncio::sock_recvfrom(fd, 1024);       // data, addr = await loop.sock_recvfrom(sock, 1024)
//   asyncio::sock_sendto(fd, data, from);                       // await loop.sock_sendto(sock, data, addr)
//
// For callbacks per datagram (asyncio's create_datagram_endpoint and
// DatagramProtocol) see io/datagram.hpp.

// sock_recvfrom(fd, n) receives one datagram and returns up to n bytes of it
// (the rest of a longer one is discarded, as recvfrom() does) and the
// sender's address ({path, 0} for a Unix-domain sender, {"", 0} if it is
// unnamed). Throws OSError (ConnectionRefusedError on a connected UDP socket
// whose peer port is closed), CancelledError; a task of the running loop's thread only.
std::pair<std::string, address> sock_recvfrom(int fd, std::size_t n);
// sock_recvfrom_into(fd, buf) receives one datagram into buf; returns the
// bytes stored (at most buf.size()) and the sender's address. Throws as sock_recvfrom().
std::pair<std::size_t, address> sock_recvfrom_into(int fd, std::span<std::byte> buf);
// sock_sendto(fd, data, to) sends data as one datagram to `to` (a numeric
// host inline; a name resolved for fd's family on the loop's default
// executor, as sock_connect()), awaiting room in the socket's buffer;
// returns data.size(). Throws OSError (EMSGSIZE for a datagram too big),
// gaierror, CancelledError (nothing sent); std::out_of_range for a port
// outside 0-65535. A task of the running loop's thread only.
std::size_t sock_sendto(int fd, std::string_view data, const address& to);
// sock_sendto(fd, data, addr, len) sends to a socket address; see above.
std::size_t sock_sendto(int fd, std::string_view data, const sockaddr* addr, socklen_t len);

// sock_sendfile(sock, file, offset, count, fallback) is loop.sock_sendfile(): sends the file open
// on `file` from byte `offset`, `count` bytes or to its end, over the connected non-blocking
// stream socket `sock`, awaiting room in the socket's buffer; returns the bytes sent (0 for an
// empty file, fewer than count if the file ends first). A regular file goes by sendfile(2): the
// kernel copies it from the page cache, through no buffer of the program's. Anything else (a
// pipe, a FIFO, a socket) or a file the kernel will not sendfile() is read (on the default
// executor, 256 KiB at a time) and sent with sock_sendall(), unless fallback is false:
// SendfileNotAvailableError then, before anything is sent. As in asyncio, the file's position is
// offset + the bytes sent once the call returns or throws (untouched if nothing was sent), so
// lseek(file, 0, SEEK_CUR) tells how far a cancelled or failed call got. Throws ValueError for a
// blocking socket, a socket that is not SOCK_STREAM, a count of 0 or an offset past 2^63 - 1;
// BrokenPipeError/ConnectionResetError and other OSErrors, CancelledError. A task of the running
// loop's thread only.
std::size_t sock_sendfile(int sock, int file, std::uint64_t offset = 0, std::optional<std::uint64_t> count = {},
                          bool fallback = true);

// set_nonblocking(fd) puts fd in non-blocking mode (O_NONBLOCK).
void set_nonblocking(int fd);

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
