// stream_aiter_test.cpp: `async for line in reader` over a StreamReader,
// as CPython's StreamReader.__aiter__/__anext__ (readline() until it
// returns empty).
#include <optional>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using StreamAiterTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

static_assert(asyncio::async_iterable<asyncio::StreamReader&>, "a StreamReader iterates by lines");
static_assert(asyncio::async_iterator<asyncio::StreamReader>);

// Every line as readline() returns it, the last one without its newline;
// the iteration ends at EOF.
TEST_F(StreamAiterTests, AsyncForReadsLinesUntilEof) {
  Strings lines = asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("line one\nline two\n\ntail");
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    Strings out;
    for (std::string& line : asyncio::aiter(r)) out.push_back(line);
    EXPECT_TRUE(r.at_eof());
    EXPECT_EQ(r.anext(), std::nullopt);  // stays exhausted
    server.close();
    server.wait_closed();
    return out;
  });
  EXPECT_EQ(lines, (Strings{"line one\n", "line two\n", "\n", "tail"}));
}

// The example of aiter.hpp, after a Python twin: `async for line in
// proc.stdout` over a subprocess's pipe.
TEST_F(StreamAiterTests, AsyncForOverSubprocessStdout) {
  Strings lines = asyncio::run([] {
    auto proc = asyncio::create_subprocess_shell("printf 'a\\nb\\nc'", {.stdout_ = asyncio::subprocess::PIPE});
    asyncio::StreamReader reader = proc.stdout_();
    Strings out;
    for (auto& line : asyncio::aiter(reader)) out.push_back(line);
    EXPECT_EQ(proc.wait(), 0);
    return out;
  });
  EXPECT_EQ(lines, (Strings{"a\n", "b\n", "c"}));
}

// A line past the stream's limit: anext() raises readline()'s ValueError,
// and the iteration can go on with the next line, as in Python.
TEST_F(StreamAiterTests, OverlongLineRaisesValueError) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader, asyncio::StreamWriter w) {
          // Built by append: g++ 12 -O2 warns falsely (-Warray-bounds) on
          // std::string(100, 'x') + "...".
          std::string payload(100, 'x');
          payload.append("\nok\n");
          w.write(payload);
          w.close();
        },
        "127.0.0.1", 0);
    asyncio::stream_config config;
    config.limit = 10;
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), config);
    EXPECT_THROW(asyncio::anext(r), asyncio::ValueError);
    EXPECT_EQ(asyncio::anext(r), "ok\n");
    EXPECT_EQ(asyncio::anext(r), std::nullopt);
    server.close();
    server.wait_closed();
  });
}

}  // namespace
