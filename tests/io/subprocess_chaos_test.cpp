// subprocess_chaos_test.cpp: seeded randomized ("chaos") runs of subprocesses. One loop runs 8-16
// children at once, each a random plan over /bin/cat, /bin/sh, /bin/echo:
//  - cat: communicate() with random input (0 to 300 KB), the output equal to it;
//  - sh: random stdout and stderr text and a random exit code (0-255);
//  - echo: random words, the output their line;
//  - a shell that kills itself with a random signal (returncode -N);
//  - cat fed and read line by line (readexactly), then killed or terminated with its stdin open;
//  - wait() under wait_for() on a cat that waits for its stdin, which times out (the child runs
//    on); then its stdin closed, or it killed, and waited for again;
//  - communicate() in a task cancelled midway (before it starts or while it reads), then a second
//    communicate(): all of the output, since what was read stays in the streams and the input is
//    still written;
//  - 2-4 tasks awaiting one wait(), one of them cancelled, the others woken with the code;
//  - a Process dropped while its child runs (the reaper takes it over);
//  - writes to the stdin of a child that exited (no SIGPIPE; BrokenPipeError or
//    ConnectionResetError, or nothing);
//  - readline() of part of a shell's output, then communicate() for the rest.
// Meanwhile a chaos task cancels random children's tasks; at the end the children still running
// are killed and waited for.
//
// Checked: outputs byte for byte; each returncode is the plan's (the exit code, -N for signal N),
// or -SIGKILL for a child the cleanup killed after its task was cancelled; a task ends cancelled
// only if cancelled; nothing reaches the loop's exception handler; no task is left pending; after
// the loop, no child of ours is left (a zombie or running: /proc, not waitpid(), which would reap
// it) and the process has no more descriptors than before (both polled for up to 20 s: the
// reaper thread reaps dropped children and closes its descriptors on its own time); a watchdog
// (30 s) turns a hang into a failure.
//
// GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n, GREENLET_CHAOS_SEED=<s> one seed
// (support/chaos_seeds.hpp), GREENLET_CHAOS_VERBOSE=1 prints each child's plan and outcome. A seed
// fixes the plan, not the kernel's scheduling.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/chaos_seeds.hpp"
#include "support/process_stats.hpp"

namespace subprocess_chaos_a {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using SubprocessChaos = greenlet_test::GreenletTest;

int uniform(std::mt19937& g, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
bool chance(std::mt19937& g, int percent) { return uniform(g, 0, 99) < percent; }

// Printable bytes (a shell argument: no NUL), or any bytes (cat's input).
std::string random_text(std::mt19937& g, std::size_t n, bool printable) {
  std::string out(n, '\0');
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) v = (static_cast<std::uint64_t>(g()) << 32) | g();
    const auto byte = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
    out[i] = printable ? static_cast<char>(' ' + byte % 95) : static_cast<char>(byte);
  }
  return out;
}

enum class kind {
  cat_all,
  sh_exit,
  echo_words,
  self_signal,
  partial_kill,
  wait_timeout,
  cancel_communicate,
  many_waiters,
  dropped_running,
  stdin_to_exited,
  readline_rest
};
const char* kind_name(kind k) {
  static const char* names[] = {"cat_all",         "sh_exit",         "echo_words",         "self_signal",
                                "partial_kill",    "wait_timeout",    "cancel_communicate", "many_waiters",
                                "dropped_running", "stdin_to_exited", "readline_rest"};
  return names[static_cast<int>(k)];
}

struct child_record {
  kind k = kind::cat_all;
  std::uint32_t rng_seed = 0;
  double start_delay = 0;
  std::optional<asyncio::Process> proc;
  std::vector<pid_t> pids;
  std::vector<int> allowed_rc;  // what its returncode may be (the cleanup adds -SIGKILL if it kills it)
  bool cancel_requested = false;
  bool cancelled = false;
  bool done = false;
  bool killed_by_cleanup = false;
  std::optional<int> final_rc;
  std::vector<asyncio::Task<int>> waiters;  // many_waiters
  int waiters_cancelled = 0;
  std::string detail;
};

struct world {
  std::vector<child_record> children;
  std::vector<std::string> failures;
  int timeouts = 0, cancelled_communicates = 0, signalled = 0, dropped = 0, broken_pipes = 0;
  void fail(const child_record& r, const std::string& what) {
    failures.push_back("child " + std::to_string(&r - children.data()) + " (" + kind_name(r.k) + "): " + what);
  }
};

asyncio::Process& spawn(child_record& r, const std::string& program, const std::vector<std::string>& args,
                        const asyncio::subprocess_config& config) {
  r.proc.emplace(asyncio::create_subprocess_exec(program, args, config));
  r.pids.push_back(r.proc->pid());
  return *r.proc;
}

void expect_eq(world& wd, child_record& r, const std::string& what, const std::string& got, const std::string& want) {
  if (got == want) return;
  std::size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  wd.fail(r, what + ": got " + std::to_string(got.size()) + " bytes, expected " + std::to_string(want.size()) +
                 ", first difference at " + std::to_string(at));
}

void expect_rc(world& wd, child_record& r, int rc) {
  r.final_rc = rc;
  if (std::find(r.allowed_rc.begin(), r.allowed_rc.end(), rc) == r.allowed_rc.end())
    wd.fail(r, "returncode " + std::to_string(rc));
}

const int kill_signals[] = {SIGTERM, SIGKILL, SIGUSR1, SIGUSR2, SIGHUP, SIGALRM};

void run_child(world& wd, child_record& r) {
  std::mt19937 g(r.rng_seed);
  asyncio::sleep(r.start_delay);
  switch (r.k) {
    case kind::cat_all: {
      const std::size_t n = chance(g, 20) ? static_cast<std::size_t>(uniform(g, 0, 300000))
                                          : static_cast<std::size_t>(uniform(g, 0, 2000));
      const std::string input = random_text(g, n, false);
      r.allowed_rc = {0};
      auto& p = spawn(r, "/bin/cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
      auto [out, err] = p.communicate(input);
      expect_eq(wd, r, "stdout", out, input);
      expect_eq(wd, r, "stderr", err, "");
      expect_rc(wd, r, *p.returncode());
      break;
    }
    case kind::sh_exit: {
      const std::string out = random_text(g, static_cast<std::size_t>(uniform(g, 0, 3000)), true);
      const std::string err = random_text(g, static_cast<std::size_t>(uniform(g, 0, 300)), true);
      const int code = uniform(g, 0, 255);
      r.allowed_rc = {code};
      auto& p = spawn(r, "/bin/sh",
                      {"-c", "printf %s \"$1\"; printf %s \"$2\" >&2; exit $3", "sh", out, err, std::to_string(code)},
                      {.stdin_ = sp::DEVNULL, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
      auto [o, e] = p.communicate();
      expect_eq(wd, r, "stdout", o, out);
      expect_eq(wd, r, "stderr", e, err);
      expect_rc(wd, r, *p.returncode());
      break;
    }
    case kind::echo_words: {
      std::vector<std::string> words;
      std::string line;
      for (int i = uniform(g, 0, 12); i > 0; --i) {
        std::string w = random_text(g, static_cast<std::size_t>(uniform(g, 1, 20)), true);
        for (char& c : w) c = static_cast<char>('a' + static_cast<unsigned char>(c) % 26);
        line += (words.empty() ? "" : " ") + w;
        words.push_back(w);
      }
      r.allowed_rc = {0};
      auto& p = spawn(r, "/bin/echo", words, {.stdout_ = sp::PIPE, .stderr_ = sp::STDOUT});
      auto [out, err] = p.communicate();
      expect_eq(wd, r, "stdout", out, line + "\n");
      expect_rc(wd, r, *p.returncode());
      break;
    }
    case kind::self_signal: {
      const int sig = kill_signals[uniform(g, 0, 5)];
      r.allowed_rc = {-sig};
      auto& p = spawn(r, "/bin/sh", {"-c", "echo before; kill -" + std::to_string(sig) + " $$; echo after"},
                      {.stdout_ = sp::PIPE});
      auto [out, err] = p.communicate();
      expect_eq(wd, r, "stdout", out, "before\n");
      expect_rc(wd, r, *p.returncode());
      ++wd.signalled;
      break;
    }
    case kind::partial_kill: {
      const bool terminate = chance(g, 50);
      r.allowed_rc = {-SIGKILL, -SIGTERM};
      auto& p = spawn(r, "/bin/cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
      for (int i = uniform(g, 0, 6); i > 0; --i) {
        const std::string line = random_text(g, static_cast<std::size_t>(uniform(g, 0, 5000)), true) + "\n";
        p.stdin_().write(line);
        if (chance(g, 50)) p.stdin_().drain();
        expect_eq(wd, r, "a line back", p.stdout_().readexactly(static_cast<std::ptrdiff_t>(line.size())), line);
      }
      r.allowed_rc = {terminate ? -SIGTERM : -SIGKILL, -SIGKILL};
      if (terminate) {
        p.terminate();
      } else {
        p.kill();
      }
      expect_rc(wd, r, p.wait());
      expect_eq(wd, r, "the rest of stdout", p.stdout_().read(), "");
      if (!p.stdout_().at_eof()) wd.fail(r, "stdout not at EOF after the child died");
      break;
    }
    case kind::wait_timeout: {
      // cat with its stdin open never exits on its own: the wait must time out.
      r.allowed_rc = {0, -SIGKILL};
      auto& p = spawn(r, "/bin/cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::DEVNULL});
      try {
        asyncio::wait_for([&] { return p.wait(); }, uniform(g, 1, 30) * 0.001);
        wd.fail(r, "wait() returned while the child waited for its stdin");
      } catch (const asyncio::TimeoutError&) {
        ++wd.timeouts;
      }
      if (p.returncode()) wd.fail(r, "a returncode while the child still waits for its stdin");
      if (chance(g, 50)) {
        r.allowed_rc = {0};
        p.close_stdin();
        expect_rc(wd, r, asyncio::wait_for([&] { return p.wait(); }, 20.0));
      } else {
        r.allowed_rc = {-SIGKILL};
        p.kill();
        expect_rc(wd, r, p.wait());
      }
      break;
    }
    case kind::cancel_communicate: {
      // On the heap: if this task is cancelled, `first` may outlive its frame a moment.
      auto input =
          std::make_shared<const std::string>(random_text(g, static_cast<std::size_t>(uniform(g, 0, 200000)), false));
      auto started = std::make_shared<bool>(false);
      r.allowed_rc = {0};
      auto& p = spawn(r, "/bin/cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
      auto first = asyncio::create_task([&p, input, started] {
        *started = true;
        p.communicate(*input);
      });
      const int yields = uniform(g, 0, 4);
      for (int i = 0; i < yields; ++i) asyncio::sleep(0);
      first.cancel();
      bool first_cancelled = false;
      try {
        asyncio::await(first);
      } catch (const asyncio::CancelledError&) {
        if (asyncio::current_task().cancelling() > 0) throw;  // this task was cancelled too
        first_cancelled = true;
        ++wd.cancelled_communicates;
      }
      // A second communicate(): the whole output (what the first read stays in the stream), and
      // the input written once in all.
      auto [out, err] = p.communicate(*started ? std::string_view() : std::string_view(*input));
      if (first_cancelled || !*started) {
        expect_eq(wd, r, "stdout of the two communicate() calls", out, *input);
      } else {
        expect_eq(wd, r, "stdout after the first communicate() completed", out, "");
      }
      expect_rc(wd, r, *p.returncode());
      break;
    }
    case kind::many_waiters: {
      r.allowed_rc = {0};
      auto& p = spawn(r, "/bin/cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::DEVNULL});
      const int n = uniform(g, 2, 4);
      for (int i = 0; i < n; ++i) r.waiters.push_back(asyncio::create_task([&p] { return p.wait(); }));
      asyncio::sleep(0);
      const int victim = uniform(g, 0, n);  // n: none
      if (victim < n) {
        r.waiters[static_cast<std::size_t>(victim)].cancel();
        ++r.waiters_cancelled;
      }
      asyncio::sleep(uniform(g, 0, 3) * 0.001);
      p.close_stdin();
      for (int i = 0; i < n; ++i) {
        try {
          const int rc = asyncio::await(r.waiters[static_cast<std::size_t>(i)]);
          if (i == victim) wd.fail(r, "a cancelled waiter returned");
          expect_rc(wd, r, rc);
        } catch (const asyncio::CancelledError&) {
          if (asyncio::current_task().cancelling() > 0) throw;
          if (i != victim) wd.fail(r, "a waiter nobody cancelled was cancelled");
        }
      }
      expect_rc(wd, r, p.wait());
      break;
    }
    case kind::dropped_running: {
      r.allowed_rc = {};  // nobody sees it
      {
        std::optional<asyncio::Process> p;
        if (chance(g, 50)) {
          // Exits once its stdin closes, which dropping the Process does.
          p.emplace(asyncio::create_subprocess_exec("/bin/cat", {}, {.stdin_ = sp::PIPE, .stdout_ = sp::DEVNULL}));
          p->stdin_().write(random_text(g, static_cast<std::size_t>(uniform(g, 0, 100000)), false));
        } else {
          p.emplace(asyncio::create_subprocess_exec(
              "/bin/sh",
              {"-c", "sleep 0.0" + std::to_string(uniform(g, 1, 5)) + "; exit " + std::to_string(uniform(g, 0, 9))}));
        }
        r.pids.push_back(p->pid());
        if (chance(g, 30)) p->kill();
      }
      ++wd.dropped;
      break;
    }
    case kind::stdin_to_exited: {
      const int code = uniform(g, 0, 9);
      r.allowed_rc = {code};
      auto& p = spawn(r, "/bin/sh", {"-c", "exit " + std::to_string(code)}, {.stdin_ = sp::PIPE});
      expect_rc(wd, r, p.wait());
      try {
        for (int i = uniform(g, 1, 4); i > 0; --i) {
          p.stdin_().write(random_text(g, static_cast<std::size_t>(uniform(g, 1, 100000)), false));
          p.stdin_().drain();
        }
      } catch (const asyncio::BrokenPipeError&) {
        ++wd.broken_pipes;
      } catch (const asyncio::ConnectionResetError&) {
        ++wd.broken_pipes;
      }
      break;
    }
    case kind::readline_rest: {
      std::vector<std::string> args = {"-c", "for l; do printf '%s\\n' \"$l\"; done", "sh"};
      std::string all;
      const int lines = uniform(g, 1, 20);
      std::vector<std::string> expect;
      for (int i = 0; i < lines; ++i) {
        std::string l = random_text(g, static_cast<std::size_t>(uniform(g, 0, 400)), true);
        args.push_back(l);
        expect.push_back(l + "\n");
        all += expect.back();
      }
      r.allowed_rc = {0};
      auto& p = spawn(r, "/bin/sh", args, {.stdout_ = sp::PIPE});
      std::string got;
      const int first = uniform(g, 0, lines);
      for (int i = 0; i < first; ++i) {
        const std::string l = p.stdout_().readline();
        expect_eq(wd, r, "line " + std::to_string(i), l, expect[static_cast<std::size_t>(i)]);
        got += l;
      }
      auto [out, err] = p.communicate();
      expect_eq(wd, r, "lines read, then communicate()", got + out, all);
      expect_rc(wd, r, *p.returncode());
      break;
    }
  }
}

struct run_stats {
  int children = 0, timeouts = 0, cancelled_communicates = 0, signalled = 0, dropped = 0, cancelled_tasks = 0,
      cleanup_kills = 0, broken_pipes = 0;
};

run_stats run_chaos(std::uint32_t seed) {
  std::mt19937 g(seed);
  world wd;
  const std::string tag =
      "seed " + std::to_string(seed) + " (GREENLET_CHAOS_SEED=" + std::to_string(seed) + " replays its plan): ";
  const int n = uniform(g, 8, 16);
  wd.children.resize(static_cast<std::size_t>(n));
  for (child_record& r : wd.children) {
    r.k = static_cast<kind>(uniform(g, 0, 10));
    r.rng_seed = static_cast<std::uint32_t>(g());
    r.start_delay = uniform(g, 0, 10) * 0.001;
  }
  const int cancels = uniform(g, 0, n / 3);
  std::vector<std::string> reported;
  bool hung = false;
  run_stats stats;
  const int fds_before = greenlet_test::open_fd_count();
  asyncio::run([&] {
    asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      reported.push_back(c.message + (c.exception ? ": " + greenlet_test::describe_exception(c.exception) : ""));
    });
    std::vector<asyncio::Task<>> tasks;
    for (child_record& r : wd.children) {
      tasks.push_back(asyncio::create_task([&wd, &r] {
        try {
          run_child(wd, r);
          r.done = true;
        } catch (const asyncio::CancelledError&) {
          r.cancelled = true;
          throw;
        } catch (...) {
          wd.fail(r, "failed: " + greenlet_test::describe_exception(std::current_exception()));
        }
      }));
    }
    std::mt19937 chaos_rng(seed ^ 0x5b9cU);
    auto chaos = asyncio::create_task([&] {
      for (int k = 0; k < cancels; ++k) {
        asyncio::sleep(uniform(chaos_rng, 0, 40) * 0.0005);
        const auto i = static_cast<std::size_t>(uniform(chaos_rng, 0, n - 1));
        if (tasks[i].done()) continue;
        wd.children[i].cancel_requested = true;
        tasks[i].cancel();
      }
    });
    try {
      asyncio::timeout(30.0, [&] {
        asyncio::await(chaos);
        asyncio::gather(asyncio::return_exceptions, tasks);
        // The children of cancelled tasks may still run: killed (the plan's code if it exited first).
        for (child_record& r : wd.children) {
          if (!r.proc) continue;
          if (!r.proc->returncode()) {
            r.killed_by_cleanup = true;
            ++stats.cleanup_kills;
            r.proc->kill();
          }
          if (!r.done) {
            r.allowed_rc.push_back(-SIGKILL);
            expect_rc(wd, r, r.proc->wait());
          } else if (r.proc->wait() != *r.final_rc) {
            wd.fail(r, "wait() differs from the returncode seen before");
          }
          for (auto& w : r.waiters) {
            try {
              const int rc = asyncio::await(w);
              if (rc != *r.proc->returncode()) wd.fail(r, "a waiter got " + std::to_string(rc));
            } catch (const asyncio::CancelledError&) {
              if (asyncio::current_task().cancelling() > 0) throw;
            }
          }
        }
      });
    } catch (const asyncio::TimeoutError&) {
      hung = true;
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        if (!tasks[i].done()) wd.fail(wd.children[i], "still running at the watchdog");
      }
      for (child_record& r : wd.children) {
        if (r.proc) r.proc->kill();
        for (auto& w : r.waiters) w.cancel();
      }
      for (auto& t : tasks) t.cancel();
      chaos.cancel();
      asyncio::gather(asyncio::return_exceptions, tasks);
      asyncio::gather(asyncio::return_exceptions, chaos);
      for (child_record& r : wd.children) asyncio::gather(asyncio::return_exceptions, r.waiters);
    }
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      child_record& r = wd.children[i];
      if (r.cancelled && !r.cancel_requested) wd.fail(r, "cancelled by nobody");
      if (!r.cancelled && !r.done && !hung) wd.fail(r, "neither done nor cancelled");
    }
    for (child_record& r : wd.children) {
      r.proc.reset();
      r.waiters.clear();
    }
    const asyncio::AnyTask me = asyncio::current_task();
    for (const asyncio::AnyTask& t : asyncio::all_tasks()) {
      if (!(t == me)) wd.failures.push_back("a task still pending at the end: " + t.repr());
    }
  });
  // No child of ours left, and the reaper's descriptors closed once it has nothing to reap.
  std::vector<pid_t> pids;
  for (const child_record& r : wd.children) pids.insert(pids.end(), r.pids.begin(), r.pids.end());
  auto all_reaped = [&] {
    return std::all_of(pids.begin(), pids.end(), [](pid_t p) { return greenlet_test::process_state(p) == 0; });
  };
  for (int i = 0; i < 2000 && !(all_reaped() && greenlet_test::open_fd_count() <= fds_before); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (pid_t p : pids) {
    if (const char state = greenlet_test::process_state(p))
      ADD_FAILURE() << tag << "child " << p << " left in state " << state;
  }
  EXPECT_LE(greenlet_test::open_fd_count(), fds_before) << tag << "descriptors leaked";
  EXPECT_FALSE(hung) << tag << "the run hung (watchdog)";
  for (const std::string& f : wd.failures) ADD_FAILURE() << tag << f;
  for (const std::string& r : reported) ADD_FAILURE() << tag << "reported to the loop's exception handler: " << r;
  if (std::getenv("GREENLET_CHAOS_VERBOSE") != nullptr) {
    for (std::size_t i = 0; i < wd.children.size(); ++i) {
      const child_record& r = wd.children[i];
      std::printf("  seed %u child %zu %s: %s rc %s%s\n", seed, i, kind_name(r.k),
                  r.done ? "done" : (r.cancelled ? "cancelled" : "?"),
                  r.final_rc ? std::to_string(*r.final_rc).c_str() : "-", r.killed_by_cleanup ? " (cleanup kill)" : "");
    }
  }
  stats.children = n;
  stats.timeouts = wd.timeouts;
  stats.cancelled_communicates = wd.cancelled_communicates;
  stats.signalled = wd.signalled;
  stats.dropped = wd.dropped;
  stats.broken_pipes = wd.broken_pipes;
  for (const child_record& r : wd.children) stats.cancelled_tasks += r.cancelled;
  return stats;
}

TEST_F(SubprocessChaos, RandomChildrenCommunicateWaitKillAndCancelKeepingTheInvariants) {
  run_stats total;
  for (const std::uint32_t seed : greenlet_test::chaos_seeds(6)) {
    const run_stats s = run_chaos(seed);
    total.children += s.children;
    total.timeouts += s.timeouts;
    total.cancelled_communicates += s.cancelled_communicates;
    total.signalled += s.signalled;
    total.dropped += s.dropped;
    total.cancelled_tasks += s.cancelled_tasks;
    total.cleanup_kills += s.cleanup_kills;
    total.broken_pipes += s.broken_pipes;
    if (HasFailure()) break;
  }
  std::printf(
      "subprocess chaos: children %d wait-timeouts %d cancelled-communicates %d self-signalled %d dropped %d "
      "cancelled-tasks %d cleanup-kills %d broken-pipes %d\n",
      total.children, total.timeouts, total.cancelled_communicates, total.signalled, total.dropped,
      total.cancelled_tasks, total.cleanup_kills, total.broken_pipes);
  if (HasFailure() || std::getenv("GREENLET_CHAOS_SEED") != nullptr) return;
  EXPECT_GT(total.timeouts, 0);
  EXPECT_GT(total.signalled, 0);
  EXPECT_GT(total.cancelled_tasks, 0);
}

}  // namespace subprocess_chaos_a
