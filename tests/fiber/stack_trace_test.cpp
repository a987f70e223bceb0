// stack_trace_test.cpp: greenlet::get_stack() (fiber/stack_trace.hpp), Python's
// traceback.extract_stack(g.gr_frame): a suspended greenlet's stack read without resuming it, the
// running one's own, the ends trimmed to the user's frames, the limit, the states without a stack,
// another thread's greenlet refused, and a greenlet read several times then switched to, thrown
// into and killed as if never read. Both stack modes (the fiber suite also runs stack-copying).
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace stack_trace_test {

using GetStack = greenlet_test::GreenletTest;
using greenlet_port::Event;

// The lines each function below is at when it waits (set as they run).
int outer_line = 0;
int inner_line = 0;

[[gnu::noinline]] greenlet::value stack_trace_test_inner(greenlet::greenlet& back) {
  inner_line = __LINE__ + 1;
  greenlet::value got = back.switch_();
  return got;  // not a tail call: the frame stays while it waits
}

[[gnu::noinline]] greenlet::value stack_trace_test_outer(greenlet::greenlet& back) {
  outer_line = __LINE__ + 1;
  greenlet::value got = stack_trace_test_inner(back);
  return got;
}

bool names(const greenlet::stack_frame& f, const char* function) {
  return f.function.find(function) != std::string::npos;
}

// The two newest frames of a greenlet waiting in stack_trace_test_inner().
void expect_waiting_in_inner(const greenlet::stack_summary& frames) {
  ASSERT_GE(frames.size(), 2u) << greenlet::format_stack(frames);
  const greenlet::stack_frame& newest = frames.back();
  const greenlet::stack_frame& caller = frames[frames.size() - 2];
  EXPECT_TRUE(names(newest, "stack_trace_test_inner")) << greenlet::format_stack(frames);
  EXPECT_EQ(newest.file, __FILE__);
  EXPECT_EQ(newest.line, static_cast<unsigned>(inner_line));
  EXPECT_TRUE(names(caller, "stack_trace_test_outer")) << greenlet::format_stack(frames);
  EXPECT_EQ(caller.line, static_cast<unsigned>(outer_line));
  EXPECT_NE(newest.address, nullptr);
  // No frame of the library's switch, or of the walk that read it.
  for (const greenlet::stack_frame& f : frames) {
    EXPECT_NE(f.function.rfind("greenlet::", 0), 0u) << greenlet::format_stack(frames);
    EXPECT_EQ(f.function.find("walk_here"), std::string::npos) << greenlet::format_stack(frames);
  }
}

TEST_F(GetStack, ASuspendedGreenletShowsWhereItWaits) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet g([&] { return stack_trace_test_outer(main); });
  EXPECT_TRUE(g.get_stack().empty());  // unstarted: Python's gr_frame is None
  g.switch_();
  const greenlet::stack_summary frames = g.get_stack();
  expect_waiting_in_inner(frames);
  // The oldest frame is the greenlet's run function (the lambda above), the newest last.
  EXPECT_EQ(frames.front().file, __FILE__);
  // Read again: the same (the first read leaves nothing a second one shows).
  const greenlet::stack_summary again = g.get_stack();
  ASSERT_EQ(again.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(again[i].function, frames[i].function);
    EXPECT_EQ(again[i].line, frames[i].line);
  }
  // Reads do not stack frames on it: a thousand more leave it as deep as it was (each stacking a
  // frame would run its 128 KiB stack out of room in a few hundred).
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(g.get_stack().size(), frames.size()) << "read " << i;
  // Then it goes on as if never read: the switch carries its value both ways.
  EXPECT_EQ(g.switch_(42).get<int>(), 42);
  EXPECT_TRUE(g.dead());
  EXPECT_TRUE(g.get_stack().empty());  // dead: no stack
}

TEST_F(GetStack, LimitKeepsTheNewestFrames) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet g([&] { return stack_trace_test_outer(main); });
  g.switch_();
  const greenlet::stack_summary all = g.get_stack();
  const greenlet::stack_summary one = g.get_stack(1);
  const greenlet::stack_summary two = g.get_stack(2);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].function, all.back().function);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].function, all[all.size() - 2].function);
  EXPECT_TRUE(g.get_stack(0).empty());
  g.switch_();
}

[[gnu::noinline]] greenlet::stack_summary stack_trace_test_read_own() {
  greenlet::stack_summary frames = greenlet::getcurrent().get_stack();
  return frames;
}

TEST_F(GetStack, TheRunningGreenletReadsItsOwnStackToTheCall) {
  greenlet::stack_summary inside;
  int call_line = 0;
  greenlet::greenlet g([&] {
    call_line = __LINE__ + 1;
    inside = stack_trace_test_read_own();
    return 0;
  });
  g.switch_();
  ASSERT_GE(inside.size(), 2u) << greenlet::format_stack(inside);
  EXPECT_TRUE(names(inside.back(), "stack_trace_test_read_own")) << greenlet::format_stack(inside);
  EXPECT_EQ(inside[inside.size() - 2].line, static_cast<unsigned>(call_line)) << greenlet::format_stack(inside);

  // The main greenlet too, down to this test's body (no C library start frames).
  const greenlet::stack_summary mine = stack_trace_test_read_own();
  ASSERT_GE(mine.size(), 2u);
  EXPECT_TRUE(names(mine.back(), "stack_trace_test_read_own"));
  for (const greenlet::stack_frame& f : mine)
    EXPECT_NE(f.function, "__libc_start_main") << greenlet::format_stack(mine);
}

TEST_F(GetStack, TheMainGreenletReadFromAnotherShowsWhereItSwitched) {
  greenlet::stack_summary main_frames;
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet g([&] {
    main_frames = main.get_stack();
    return 0;
  });
  const int switch_line = __LINE__ + 1;
  g.switch_();
  ASSERT_FALSE(main_frames.empty());
  EXPECT_EQ(main_frames.back().file, __FILE__) << greenlet::format_stack(main_frames);
  EXPECT_EQ(main_frames.back().line, static_cast<unsigned>(switch_line)) << greenlet::format_stack(main_frames);
}

// A throw and a kill into a greenlet that was read reach it as into any other.
struct count_destruction {
  int* count;
  ~count_destruction() { ++*count; }
};

TEST_F(GetStack, AGreenletReadIsThrownIntoAndKilledAsUsual) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::string caught;
  greenlet::greenlet g([&] {
    try {
      stack_trace_test_outer(main);
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    return stack_trace_test_outer(main);
  });
  g.switch_();
  expect_waiting_in_inner(g.get_stack());
  g.throw_(std::runtime_error("thrown after a read"));
  EXPECT_EQ(caught, "thrown after a read");
  expect_waiting_in_inner(g.get_stack());
  EXPECT_TRUE(g.throw_().holds<greenlet::GreenletExit>());  // dies; GreenletExit comes back as a value
  EXPECT_TRUE(g.dead());

  int destroyed = 0;
  {
    greenlet::greenlet h([&] {
      count_destruction guard{&destroyed};
      return stack_trace_test_outer(main);
    });
    h.switch_();
    (void)h.get_stack();
    (void)h.get_stack();
  }  // its last handle: killed, its stack unwound through the frame the reads left
  EXPECT_EQ(destroyed, 1);
}

TEST_F(GetStack, AnotherThreadsGreenletIsRefusedWhileItRuns) {
  greenlet::greenlet theirs;
  Event made;
  Event checked;
  std::thread worker([&] {
    greenlet::greenlet main = greenlet::getcurrent();
    theirs = greenlet::greenlet([&] { return stack_trace_test_outer(main); });
    theirs.switch_();
    made.set();
    checked.wait();
    theirs.switch_();
  });
  made.wait();
  try {
    (void)theirs.get_stack();
    ADD_FAILURE() << "get_stack() of another thread's greenlet did not throw";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::wrong_thread);
    EXPECT_NE(std::string(e.what()).find("read the stack of a greenlet of another thread"), std::string::npos)
        << e.what();
  }
  checked.set();
  worker.join();
  EXPECT_TRUE(theirs.get_stack().empty());  // its thread is gone: dead
}

// With stack copying, a greenlet whose bytes are copied out is read after they are put back; when
// the reader runs on the shared stack itself, the stack copier does that on its own stack and puts
// the reader's bytes back before it goes on.
TEST_F(GetStack, StackCopyingGreenletsAreReadFromOnAndOffTheSharedStack) {
  const greenlet::stack_options shared{.mode = greenlet::stack_mode::shared};
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet a([&] { return stack_trace_test_outer(main); }, greenlet::greenlet(), shared);
  greenlet::stack_summary read_by_b;
  greenlet::greenlet b(
      [&] {
        read_by_b = a.get_stack();
        return stack_trace_test_outer(main);
      },
      greenlet::greenlet(), shared);
  a.switch_();
  b.switch_();  // a's bytes are copied out for b's
  expect_waiting_in_inner(read_by_b);
  expect_waiting_in_inner(a.get_stack());  // a's back in, b's out
  expect_waiting_in_inner(b.get_stack());
  EXPECT_EQ(a.switch_(1).get<int>(), 1);
  EXPECT_EQ(b.switch_(2).get<int>(), 2);
}

TEST_F(GetStack, FramesFormatAsPythonsTraceback) {
  greenlet::stack_frame with_line{nullptr, "worker(int)", "worker.cpp", 12};
  greenlet::stack_frame without_line{nullptr, "worker(int)", "/usr/bin/app", 0};
  int here = 0;
  greenlet::stack_frame unnamed{&here, "", "/usr/bin/app", 0};
  EXPECT_EQ(greenlet::format_frame(with_line), "File \"worker.cpp\", line 12, in worker(int)");
  EXPECT_EQ(greenlet::format_frame(without_line), "File \"/usr/bin/app\", in worker(int)");
  EXPECT_EQ(greenlet::format_frame(unnamed).rfind("File \"/usr/bin/app\", in ?? at 0x", 0), 0u)
      << greenlet::format_frame(unnamed);
  EXPECT_EQ(greenlet::format_stack({with_line, without_line}),
            "  File \"worker.cpp\", line 12, in worker(int)\n  File \"/usr/bin/app\", in worker(int)\n");
  std::ostringstream out;
  greenlet::print_stack({with_line}, out);
  EXPECT_EQ(out.str(), "  File \"worker.cpp\", line 12, in worker(int)\n");
}

}  // namespace stack_trace_test
