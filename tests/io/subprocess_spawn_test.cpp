// subprocess_spawn_test.cpp: how create_subprocess_exec finds its program
// and checks its arguments, as CPython's subprocess: a child given env
// looks its program up in env's PATH (os.get_exec_path(env)), not this
// process's; a NUL in a string for the child is ValueError.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using SubprocessSpawn = greenlet_test::GreenletTest;

constexpr const char* tool = "greenlet-spawn-test-tool";

// tool_dirs is fresh directories: in `plain` a `tool` that is not
// executable, in `runnable` one that prints "runnable tool", in `root` a
// directory named `tool`. Removed at the end.
struct tool_dirs {
  std::string root;
  std::string plain;
  std::string runnable;
  tool_dirs() {
    char name[] = "/tmp/greenlet-spawn-XXXXXX";
    root = ::mkdtemp(name);
    plain = root + "/plain";
    runnable = root + "/runnable";
    ::mkdir(plain.c_str(), 0755);
    ::mkdir(runnable.c_str(), 0755);
    ::mkdir((root + "/" + tool).c_str(), 0755);
    std::ofstream(plain + "/" + tool) << "#!/bin/sh\necho plain tool\n";
    std::ofstream(runnable + "/" + tool) << "#!/bin/sh\necho runnable tool\n";
    ::chmod((runnable + "/" + tool).c_str(), 0755);
  }
  tool_dirs(const tool_dirs&) = delete;
  tool_dirs& operator=(const tool_dirs&) = delete;
  ~tool_dirs() { std::system(("rm -rf " + root).c_str()); }
};

std::string run_tool(const std::string& path, const std::string& cwd = {}) {
  auto p = asyncio::create_subprocess_exec(
      tool, {}, {.stdout_ = sp::PIPE, .env = std::vector<std::string>{"PATH=" + path}, .cwd = cwd});
  return p.communicate().out;
}

// spawn_errno(program, path) is the errno of spawning program with env PATH
// path (0 if it ran), checking the message names the program.
int spawn_errno(const std::string& program, const std::string& path) {
  try {
    auto p = asyncio::create_subprocess_exec(program, {}, {.env = std::vector<std::string>{"PATH=" + path}});
    p.wait();
    return 0;
  } catch (const asyncio::OSError& e) {
    EXPECT_NE(std::string(e.what()).find("create_subprocess_exec(" + program + ")"), std::string::npos) << e.what();
    return e.code().value();
  }
}

// The explorer's repro: a program only env's PATH has runs, one only this
// process's PATH has does not (it was the other way round).
TEST_F(SubprocessSpawn, ProgramIsLookedUpInTheGivenEnvsPath) {
  tool_dirs dirs;
  asyncio::run([&] {
    EXPECT_EQ(spawn_errno("ls", "/greenlet-nonexistent"), ENOENT);
    EXPECT_EQ(spawn_errno("ls", "/usr/bin:/bin"), 0);
    EXPECT_EQ(run_tool(dirs.runnable + ":/usr/bin:/bin"), "runnable tool\n");
  });
}

// As execvp and Python: a file that is not executable is skipped for a
// later directory's, and is EACCES when no directory has a runnable one.
TEST_F(SubprocessSpawn, NotExecutableInEnvsPathIsSkippedThenEacces) {
  tool_dirs dirs;
  asyncio::run([&] {
    EXPECT_EQ(run_tool(dirs.plain + ":" + dirs.runnable), "runnable tool\n");
    EXPECT_EQ(spawn_errno(tool, dirs.plain + ":/greenlet-nonexistent"), EACCES);
    EXPECT_EQ(spawn_errno(tool, "/greenlet-nonexistent:" + dirs.root), EACCES);  // a directory
  });
}

// A relative (or empty) PATH entry is the child's working directory's; an
// env without PATH searches os.defpath (/bin:/usr/bin).
TEST_F(SubprocessSpawn, RelativeEntriesAreUnderCwdAndNoPathIsDefpath) {
  tool_dirs dirs;
  asyncio::run([&] {
    EXPECT_EQ(run_tool("runnable", dirs.root), "runnable tool\n");
    EXPECT_EQ(run_tool("/greenlet-nonexistent:", dirs.runnable), "runnable tool\n");
    auto sh = asyncio::create_subprocess_exec(
        "sh", {"-c", "echo $GREENLET_X"}, {.stdout_ = sp::PIPE, .env = std::vector<std::string>{"GREENLET_X=no PATH"}});
    EXPECT_EQ(sh.communicate().out, "no PATH\n");
  });
}

// null_byte_error(spawn) is the message of the ValueError spawn() throws,
// or "spawned" if it throws nothing.
std::string null_byte_error(const std::function<asyncio::Process()>& spawn) {
  try {
    asyncio::Process p = spawn();
    p.wait();
    return "spawned";
  } catch (const asyncio::ValueError& e) {
    return e.what();
  }
}

// A NUL in anything handed to the child is Python's ValueError("embedded
// null byte"), before any child runs: the strings were cut at it (the
// explorer's repro ran `echo a` of "echo a\0; echo b", and an argument
// "rm -rf\0 /tmp/x" reached the child as "rm -rf").
TEST_F(SubprocessSpawn, EmbeddedNullByteIsValueError) {
  using namespace std::string_literals;
  asyncio::run([] {
    EXPECT_EQ(null_byte_error([] { return asyncio::create_subprocess_shell("echo a\0; echo b"s); }),
              "create_subprocess_shell(): embedded null byte in the command");
    EXPECT_EQ(null_byte_error([] { return asyncio::create_subprocess_exec("echo", {"rm -rf\0 /tmp/x"s}); }),
              "create_subprocess_exec(): embedded null byte in an argument");
    EXPECT_EQ(null_byte_error([] { return asyncio::create_subprocess_exec("true\0x"s); }),
              "create_subprocess_exec(): embedded null byte in the program");
    EXPECT_EQ(null_byte_error([] {
                return asyncio::create_subprocess_exec("true", {}, {.env = std::vector<std::string>{"A=1\0B=2"s}});
              }),
              "create_subprocess_exec(): embedded null byte in an env entry");
    EXPECT_EQ(null_byte_error([] { return asyncio::create_subprocess_exec("true", {}, {.cwd = "/\0tmp"s}); }),
              "create_subprocess_exec(): embedded null byte in cwd");
  });
}

}  // namespace

namespace subprocess_session_test {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using SubprocessSession = greenlet_test::GreenletTest;

// The child's process group and session, fields 5 and 6 of /proc/self/stat as cut prints them.
std::string group_and_session(const asyncio::subprocess_config& config, int* pid) {
  asyncio::subprocess_config c = config;
  c.stdout_ = sp::PIPE;
  auto p = asyncio::create_subprocess_exec("cut", {"-d", " ", "-f5,6", "/proc/self/stat"}, c);
  *pid = p.pid();
  auto [out, err] = p.communicate();
  return out;
}

// test_subprocess.py test_start_new_session / process_group (3.11): setsid() or setpgid() in the
// child before the program starts.
TEST_F(SubprocessSession, StartNewSessionAndProcessGroup) {
  std::vector<std::string> seen, expected;
  std::string refused;
  asyncio::run([&] {
    int pid = 0;
    std::string out = group_and_session({}, &pid);
    seen.push_back(out);
    expected.push_back(std::to_string(::getpgrp()) + " " + std::to_string(::getsid(0)) + "\n");
    out = group_and_session({.start_new_session = true}, &pid);
    seen.push_back(out);
    expected.push_back(std::to_string(pid) + " " + std::to_string(pid) + "\n");
    out = group_and_session({.process_group = 0}, &pid);
    seen.push_back(out);
    expected.push_back(std::to_string(pid) + " " + std::to_string(::getsid(0)) + "\n");
    try {
      group_and_session({.process_group = -1}, &pid);
    } catch (const asyncio::ValueError& e) {
      refused = e.what();
    }
  });
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(refused.rfind("create_subprocess_exec(): process_group must be 0", 0), 0u) << refused;
}

}  // namespace subprocess_session_test
