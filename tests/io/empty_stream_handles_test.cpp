// empty_stream_handles_test.cpp: a StreamReader, StreamWriter or Server with
// nothing behind it (default-made, moved from, or a Process pipe its config
// did not ask for: Python's None) throws RuntimeError saying so, where
// every call used to dereference a null pointer (a segfault). Each test runs
// in a death test's child, so that such a crash fails the test instead of
// ending the suite.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <greenlet/io.hpp>

#include <gtest/gtest.h>

namespace {

namespace asyncio = greenlet::asyncio;

// exit_with(failures) ends a death test's child: code 0 if none, else 1
// with the failures on stderr, where EXPECT_EXIT shows them.
[[noreturn]] void exit_with(const std::string& failures) {
  std::fputs(failures.c_str(), stderr);
  std::fflush(stderr);
  std::_Exit(failures.empty() ? 0 : 1);
}

// refusal(call) is "" if call threw RuntimeError(invalid_state) whose text
// holds every one of `words`, else what went wrong.
std::string refusal(const std::function<void()>& call, std::initializer_list<const char*> words) {
  try {
    call();
    return "returned; ";
  } catch (const asyncio::RuntimeError& e) {
    if (e.code() != asyncio::asyncio_errc::invalid_state) return std::string("wrong code: ") + e.what() + "; ";
    for (const char* w : words) {
      if (std::strstr(e.what(), w) == nullptr) return std::string("no '") + w + "' in: " + e.what() + "; ";
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what() + "; ";
  }
}

TEST(EmptyStreamHandlesDeathTest, DefaultMadeReaderAndWriterRaise) {
  EXPECT_EXIT(
      {
        std::string failures;
        asyncio::run([&] {
          asyncio::StreamReader r;
          asyncio::StreamWriter w;
          failures += refusal([&] { r.read(1); }, {"read()", "empty StreamReader"});
          failures += refusal([&] { r.readline(); }, {"readline()", "empty StreamReader"});
          failures += refusal([&] { r.readexactly(1); }, {"readexactly()"});
          failures += refusal([&] { r.readuntil("\n"); }, {"readuntil()"});
          failures += refusal([&] { r.readuntil({"\r", "\n"}); }, {"readuntil()"});
          failures += refusal([&] { w.write("x"); }, {"write()", "empty StreamWriter"});
          failures += refusal([&] { w.drain(); }, {"drain()"});
          failures += refusal([&] { w.close(); }, {"close()"});
          failures += refusal([&] { w.wait_closed(); }, {"wait_closed()"});
          failures += refusal([&] { w.get_extra_info("peername"); }, {"get_extra_info()"});
          // The calls that cannot throw answer as for a closed stream.
          if (!r.at_eof()) failures += "at_eof() false; ";
          if (!w.is_closing()) failures += "is_closing() false; ";
          if (w.fileno() != -1 || w.transport_buffer_size() != 0) failures += "fileno()/buffer size; ";
        });
        exit_with(failures);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(EmptyStreamHandlesDeathTest, ProcessPipeNotAskedForRaisesNamingPipe) {
  EXPECT_EXIT(
      {
        std::string failures;
        asyncio::run([&] {
          auto p = asyncio::create_subprocess_exec("true", {});
          failures += refusal([&] { p.stdout_().readline(); }, {"stdout_()", "subprocess::PIPE"});
          failures += refusal([&] { p.stderr_().read(); }, {"stderr_()", "subprocess::PIPE"});
          failures += refusal([&] { p.stdin_().write("x"); }, {"stdin_()", "subprocess::PIPE"});
          p.wait();
        });
        exit_with(failures);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(EmptyStreamHandlesDeathTest, DefaultMadeServerRaises) {
  EXPECT_EXIT(
      {
        std::string failures;
        asyncio::run([&] {
          asyncio::Server s;
          failures += refusal([&] { s.close(); }, {"close()", "empty Server"});
          failures += refusal([&] { s.wait_closed(); }, {"wait_closed()"});
          failures += refusal([&] { s.serve_forever(); }, {"serve_forever()"});
          if (s.is_serving() || s.fileno() != -1 || s.port() != 0 || !s.sockets().empty()) {
            failures += "is_serving()/fileno()/port()/sockets(); ";
          }
        });
        exit_with(failures);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
