// pipe_streams_test.cpp: connect_read_pipe()/connect_write_pipe(), after
// CPython's test_events.py (test_read_pipe, test_write_pipe,
// test_write_pipe_disconnect_on_close) with streams in place of protocols.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
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
