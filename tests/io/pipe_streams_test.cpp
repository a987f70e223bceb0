// pipe_streams_test.cpp: connect_read_pipe()/connect_write_pipe(), after
// CPython's test_events.py (test_read_pipe, test_write_pipe,
// test_write_pipe_disconnect_on_close) with streams in place of protocols.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using PipeStreams = greenlet_test::GreenletTest;

struct os_pipe {
  int read_end = -1, write_end = -1;
  os_pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_end = fds[0];
    write_end = fds[1];
  }
};

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST_F(PipeStreams, LinesWrittenToAPipeArriveAsTheyComeWhileOtherTasksRun) {
  os_pipe p;
  std::vector<std::string> events;
  asyncio::run([&] {
    asyncio::StreamReader in = asyncio::connect_read_pipe(p.read_end);
    asyncio::StreamWriter out = asyncio::connect_write_pipe(p.write_end);
    auto writer = asyncio::create_task([&] {
      for (const char* line : {"one\n", "two\n", "three"}) {
        events.push_back(std::string("write ") + line[0]);
        out.write(line);
        out.drain();
        asyncio::sleep(0.001);
      }
      out.close();
      out.wait_closed();
    });
    for (std::string& line : asyncio::aiter(in)) events.push_back("read " + line);
    EXPECT_TRUE(in.at_eof());
    asyncio::await(writer);
  });
  EXPECT_EQ(events,
            (std::vector<std::string>{"write o", "read one\n", "write t", "read two\n", "write t", "read three"}));
  EXPECT_FALSE(is_open(p.read_end));  // the streams owned the ends
  EXPECT_FALSE(is_open(p.write_end));
}

TEST_F(PipeStreams, WritingToAPipeWhoseReaderIsGoneIsBrokenPipeErrorNotSigpipe) {
  os_pipe p;
  ::close(p.read_end);
  asyncio::run([&] {
    asyncio::StreamWriter out = asyncio::connect_write_pipe(p.write_end);
    out.write("nobody listens");
    EXPECT_THROW(out.drain(), asyncio::BrokenPipeError);
  });
}

TEST_F(PipeStreams, ABigWriteWaitsForTheReaderInsteadOfBlockingTheLoop) {
  os_pipe p;
  const std::string big(1 << 20, 'x');  // 16 times a pipe's 64 KiB buffer
  std::string got;
  asyncio::run([&] {
    asyncio::StreamWriter out = asyncio::connect_write_pipe(p.write_end);
    asyncio::StreamReader in = asyncio::connect_read_pipe(p.read_end);
    auto writer = asyncio::create_task([&] {
      out.write(big);
      out.drain();
      out.close();
    });
    got = in.read();
    asyncio::await(writer);
  });
  EXPECT_EQ(got.size(), big.size());
  EXPECT_EQ(got, big);
}

TEST_F(PipeStreams, ARegularFileIsRefusedWithAHintAndStaysTheCallersToClose) {
  char path[] = "/tmp/greenlet_pipe_streams_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  asyncio::run([&] {
    try {
      asyncio::connect_read_pipe(fd);
      ADD_FAILURE() << "a regular file was taken";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("regular file"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("to_thread()"), std::string::npos) << e.what();
    }
    EXPECT_THROW(asyncio::connect_write_pipe(-1), asyncio::OSError);
  });
  EXPECT_TRUE(is_open(fd));
  ::close(fd);
}

TEST_F(PipeStreams, OutsideARunningLoopIsAClearError) {
  os_pipe p;
  EXPECT_THROW(asyncio::connect_read_pipe(p.read_end), asyncio::RuntimeError);
  EXPECT_TRUE(is_open(p.read_end));
  ::close(p.read_end);
  ::close(p.write_end);
}

}  // namespace

// A write pipe sees its reader go without writing (asyncio's _UnixWritePipeTransport watches a FIFO
// or socket write end for that): it closes, cleanly with nothing buffered, with BrokenPipeError
// when bytes were still to go.
namespace pipe_streams_reader_gone {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using WritePipeReaderGone = greenlet_test::GreenletTest;

// Bounds the waits below: without the watch they would never end.
constexpr double guard_seconds = 10;

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

struct ends {
  int read_end = -1, write_end = -1;
};

ends os_pipe_ends() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {fds[0], fds[1]};
}

ends socket_pair_ends() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {fds[0], fds[1]};
}

// The reader takes what was written, then closes its end: the writer closes by itself, and
// wait_closed() returns. As asyncio, later writes to the closed transport are dropped (no error
// at write()), and drain() says the connection is lost.
void expect_writer_closes_cleanly(ends e) {
  asyncio::run([&] {
    asyncio::StreamWriter out = asyncio::connect_write_pipe(e.write_end);
    out.write("seen");
    char got[8];
    EXPECT_EQ(::read(e.read_end, got, sizeof got), 4);
    ::close(e.read_end);
    EXPECT_FALSE(out.is_closing());
    asyncio::wait_for([&] { out.wait_closed(); }, guard_seconds);
    EXPECT_TRUE(out.is_closing());
    EXPECT_EQ(out.fileno(), -1);  // its fd is closed
    EXPECT_NO_THROW(out.write("dropped"));
    EXPECT_EQ(out.transport_buffer_size(), 0u);
    EXPECT_THROW(out.drain(), asyncio::ConnectionResetError);
  });
}

// More is written than the pipe or socket takes, then the reader closes: the writer closes with
// BrokenPipeError, which wait_closed() and drain() raise.
void expect_writer_fails_with_broken_pipe(ends e) {
  asyncio::run([&] {
    asyncio::StreamWriter out = asyncio::connect_write_pipe(e.write_end);
    out.write(std::string(std::size_t{4} << 20, 'x'));
    ASSERT_GT(out.transport_buffer_size(), 0u);
    ::close(e.read_end);
    try {
      asyncio::wait_for([&] { out.wait_closed(); }, guard_seconds);
      ADD_FAILURE() << "wait_closed() returned";
    } catch (const asyncio::BrokenPipeError& error) {
      EXPECT_NE(std::string(error.what()).find("the reader closed its end"), std::string::npos) << error.what();
    }
    EXPECT_TRUE(out.is_closing());
    EXPECT_EQ(out.fileno(), -1);
    EXPECT_EQ(out.transport_buffer_size(), 0u);
    EXPECT_THROW(out.drain(), asyncio::BrokenPipeError);
  });
}

TEST_F(WritePipeReaderGone, AnOsPipeWhoseReaderClosesClosesTheWriterCleanlyWithNothingBuffered) {
  expect_writer_closes_cleanly(os_pipe_ends());
}

TEST_F(WritePipeReaderGone, ASocketWhoseReaderClosesClosesTheWriterCleanlyWithNothingBuffered) {
  expect_writer_closes_cleanly(socket_pair_ends());
}

TEST_F(WritePipeReaderGone, AnOsPipeWhoseReaderClosesWithBytesBufferedFailsTheWriterWithBrokenPipeError) {
  expect_writer_fails_with_broken_pipe(os_pipe_ends());
}

TEST_F(WritePipeReaderGone, ASocketWhoseReaderClosesWithBytesBufferedFailsTheWriterWithBrokenPipeError) {
  expect_writer_fails_with_broken_pipe(socket_pair_ends());
}

// A user's wait on the writer's fd turns the poller's registration to one-shot ones (see
// io_caller): the watch goes on with them.
TEST_F(WritePipeReaderGone, TheWatchOutlivesAUsersWaitOnTheFd) {
  ends e = os_pipe_ends();
  asyncio::run([&] {
    asyncio::StreamWriter out = asyncio::connect_write_pipe(e.write_end);
    asyncio::wait_writable(out.fileno());  // an empty pipe: at once
    ::close(e.read_end);
    asyncio::wait_for([&] { out.wait_closed(); }, guard_seconds);
    EXPECT_TRUE(out.is_closing());
  });
}

// A writer dropped with bytes unsent is kept by the loop until they are sent (an orphan); its
// reader closing frees it and closes its fd at once, not when the loop closes.
TEST_F(WritePipeReaderGone, ADroppedWriterWithBytesUnsentIsFreedWhenTheReaderCloses) {
  asyncio::run([&] {
    // Twice: the first round warms the loop's caches (nodes, the poller's table), so the second
    // must leave no allocation behind.
    long before = 0;
    for (int round = 0; round < 2; ++round) {
      if (round == 1) before = greenlet_test::live_allocations();
      ends e = os_pipe_ends();
      {
        asyncio::StreamWriter out = asyncio::connect_write_pipe(e.write_end);
        out.write(std::string(std::size_t{4} << 20, 'x'));
      }
      ASSERT_TRUE(fd_is_open(e.write_end));  // kept to send the rest
      ::close(e.read_end);
      for (int turn = 0; turn < 1000 && fd_is_open(e.write_end); ++turn) asyncio::sleep(0.001);
      EXPECT_FALSE(fd_is_open(e.write_end));
    }
    EXPECT_EQ(greenlet_test::live_allocations(), before);  // the transport is freed
  });
}

// With nothing but the watch left (no timer, no other I/O), waiting for the reader to go is not a
// deadlock: the watch may still fire, as asyncio's add_reader() keeps its loop waiting. Another
// thread closes the reader a little later.
TEST_F(WritePipeReaderGone, AWaitForTheReaderToGoIsNoDeadlock) {
  ends e = os_pipe_ends();
  std::jthread closer;  // joined however the run ends
  asyncio::run([&] {
    asyncio::StreamWriter out = asyncio::connect_write_pipe(e.write_end);
    closer = std::jthread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ::close(e.read_end);
    });
    out.wait_closed();
    EXPECT_TRUE(out.is_closing());
  });
}

// A subprocess's stdin is the same transport: a child that exits without reading closes it.
TEST_F(WritePipeReaderGone, AChildThatExitsClosesItsStdinStream) {
  asyncio::run([&] {
    auto proc = asyncio::create_subprocess_exec("true", {}, {.stdin_ = sp::PIPE});
    asyncio::StreamWriter& in = proc.stdin_();
    EXPECT_EQ(proc.wait(), 0);
    asyncio::wait_for([&] { in.wait_closed(); }, guard_seconds);
    EXPECT_TRUE(in.is_closing());
  });
}

// ... and with bytes it did not read, BrokenPipeError.
TEST_F(WritePipeReaderGone, AChildThatExitsWithStdinBytesUnreadFailsItsStdinStream) {
  asyncio::run([&] {
    auto proc = asyncio::create_subprocess_exec("true", {}, {.stdin_ = sp::PIPE});
    asyncio::StreamWriter& in = proc.stdin_();
    in.write(std::string(std::size_t{4} << 20, 'x'));
    EXPECT_EQ(proc.wait(), 0);
    EXPECT_THROW(asyncio::wait_for([&] { in.wait_closed(); }, guard_seconds), asyncio::BrokenPipeError);
    EXPECT_TRUE(in.is_closing());
  });
}

}  // namespace pipe_streams_reader_gone
