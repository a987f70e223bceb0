// fiber/stack_trace.hpp: call stacks read at run time, the C++ side of Python's
// traceback.extract_stack(g.gr_frame) and asyncio's Task.get_stack().
//
// greenlet::get_stack() reads a greenlet's stack: the running one's where it runs, a suspended
// one's on its own stack, without resuming it (src/fiber/stack_trace.cpp says how). Each frame is
// named from the binary's symbols and, where it has debug information (-g), with its file and
// line, inlined calls included (GCC's libbacktrace; without it, the dynamic symbols dladdr()
// sees). Reading is for diagnostics, a few microseconds a frame: a hung task's wait, a report.
#pragma once

#include <cstddef>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

// stack_frame is one frame of a call stack, as Python's traceback.FrameSummary.
struct stack_frame {
  // The instruction the frame is at: the call it made (the newest frame's: where it switched away).
  // The frames of functions inlined into one another share it.
  const void* address = nullptr;
  // The function, demangled ("worker(int)"); empty when the binary has no symbol for it.
  std::string function;
  // The source file and line with debug information; otherwise file is the binary (executable or
  // shared library) holding the code and line is 0.
  std::string file;
  unsigned line = 0;
};

// A call stack, oldest frame first (Python's "most recent call last").
using stack_summary = std::vector<stack_frame>;

// no_frame_limit asks get_stack() and the functions that print stacks for every frame.
inline constexpr std::size_t no_frame_limit = std::numeric_limits<std::size_t>::max();

// format_frame(f) is one line as Python's traceback prints it, without the indent or newline:
// `File "worker.cpp", line 12, in worker(int)`; `File "/usr/bin/app", in worker(int)` without
// debug information; `?? at 0x...` for the function name when there is no symbol. Throws
// std::bad_alloc.
std::string format_frame(const stack_frame& f);
// format_stack(frames) is traceback.format_list(): each frame as format_frame() on a line of its
// own, indented by two spaces. Throws std::bad_alloc.
std::string format_stack(const stack_summary& frames);
// print_stack(frames, out) writes format_stack(frames) to out; print_stack(frames) to stderr, as
// Python's traceback.print_list(). Throws what writing to out throws.
void print_stack(const stack_summary& frames, std::ostream& out);
void print_stack(const stack_summary& frames);

}  // namespace greenlet

#pragma GCC visibility pop
