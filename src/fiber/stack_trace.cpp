// stack_trace.cpp: greenlet::get_stack(), reading a greenlet's call stack.
//
// The running greenlet's stack is walked where it runs, by the C++ runtime's unwinder
// (_Unwind_Backtrace, the one exceptions use). A suspended greenlet's is walked on its own stack:
// Boost.Context's ontop_fcontext() resumes it into walk_here() below, as if the greenlet had
// called walk_here() from the switch it waits in. walk_here() walks the stack it finds itself on
// and jumps straight back, leaving the greenlet suspended one frame deeper, in walk_here(). That
// frame is transparent: the next jump into the greenlet (a switch, a throw, a kill) lands in it,
// and walk_here() returns what the jump carried to the greenlet's own jump, which goes on as if
// nothing had happened between. So the switch path pays nothing for this, and nothing the
// greenlet can observe changes: no switch is made, no trace function called, no exception state
// or context variable touched.
#include <unwind.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <ostream>
#include <span>
#include <string_view>

#include <boost/context/detail/fcontext.hpp>

#include "fiber/escape_trace.hpp"
#include "fiber/stack_copy.hpp"
#include "fiber/symbolize.hpp"
#include "fiber/thread_state.hpp"
#include "greenlet/detail/sanitizers.hpp"
#include "greenlet/fiber/greenlet.hpp"
#include "greenlet/fiber/stack_trace.hpp"

namespace greenlet {
namespace detail {
namespace {

namespace ctx = boost::context::detail;

// raw_stack is what a walk finds: return addresses, newest first, in a fixed array (the walk of a
// suspended greenlet runs on that greenlet's stack, and must not throw there).
struct raw_stack {
  static constexpr std::size_t capacity = 256;
  std::uintptr_t pcs[capacity];
  std::size_t count = 0;
  // Frames the walk leaves out at the newest end: its own.
  std::size_t skip = 0;
  // The oldest frame kept is the greenlet's run function's (its run_ops::invoke, which calls the
  // user's function) or, should that not be found, the frame below greenlet_entry(), the start
  // of every greenlet's stack (0 for a main greenlet, whose stack is the thread's).
  std::uintptr_t run_function = 0;
  std::uintptr_t entry_function = 0;
  // Frames whose canonical frame address lies past the stack's base are not the greenlet's (a
  // last safeguard; 0 for a main greenlet).
  std::uintptr_t stack_base = 0;
};

ctx::transfer_t walk_here(ctx::transfer_t reader) noexcept;

_Unwind_Reason_Code collect_frame(_Unwind_Context* frame, void* data) noexcept {
  auto& stack = *static_cast<raw_stack*>(data);
  int before_instruction = 0;
  const std::uintptr_t ip = _Unwind_GetIPInfo(frame, &before_instruction);
  if (ip == 0) return _URC_END_OF_STACK;
  if (stack.skip > 0) {
    --stack.skip;
    return _URC_NO_REASON;
  }
  if (stack.stack_base != 0 && _Unwind_GetCFA(frame) > stack.stack_base) return _URC_END_OF_STACK;
  const std::uintptr_t function = _Unwind_GetRegionStart(frame);
  if (stack.entry_function != 0 && function == stack.entry_function) return _URC_END_OF_STACK;
  // An earlier read's walk_here() frame, where the greenlet has stayed suspended since.
  if (function == reinterpret_cast<std::uintptr_t>(&walk_here)) return _URC_NO_REASON;
  // A return address is the instruction after the call; the call is what the frame is at (and
  // its line the one to show: the next may belong to another).
  stack.pcs[stack.count++] = before_instruction != 0 ? ip : ip - 1;
  if (function == stack.run_function || stack.count == raw_stack::capacity) return _URC_END_OF_STACK;
  return _URC_NO_REASON;
}

// walk_limits(g) is an empty raw_stack for g's walk, on the heap: a reader running on the shared
// stack (stack copying) has its bytes copied out while the walk fills it.
std::unique_ptr<raw_stack> walk_limits(const greenlet_impl* g) {
  auto stack = std::make_unique<raw_stack>();
  if (!g->is_main) {
    stack->run_function = reinterpret_cast<std::uintptr_t>(g->ops->invoke);
    stack->entry_function = reinterpret_cast<std::uintptr_t>(&greenlet_entry);
    stack->stack_base = reinterpret_cast<std::uintptr_t>(g->stack_base);
  }
  return stack;
}

// walk_current(stack) walks the running stack; its own frame and get_stack()'s are left out.
[[gnu::noinline]] void walk_current(raw_stack& stack) noexcept {
  stack.skip = 2;
  _Unwind_Backtrace(&collect_frame, &stack);
}

struct read_request {
  raw_stack* stack;
  greenlet_impl* reader;
  greenlet_impl* target;
};

// walk_here() runs on a suspended greenlet's stack, on top of its last frame (see the top of the
// file), and stays there while the greenlet stays suspended: a later read jumps back into it (its
// request tagged in the low bit, as no greenlet's address is), and only a real resume (a switch, a
// throw, a kill: the resumer's greenlet as data) makes it return. So reads do not stack frames.
// Not instrumented by ASan: it runs before the sanitizer knows which stack it is on and returns
// after a jump the sanitizer is told about only later (in landed()).
[[gnu::noinline]] __attribute__((no_sanitize("address"))) ctx::transfer_t walk_here(ctx::transfer_t from) noexcept {
  auto* request = static_cast<read_request*>(from.data);
  greenlet_impl* const target = request->target;
  for (;;) {
#if defined(GREENLET_ASAN)
    __sanitizer_finish_switch_fiber(target->asan_fake_stack, nullptr, nullptr);
#endif
    request->stack->skip = 1;  // this frame
    _Unwind_Backtrace(&collect_frame, request->stack);
    target->parked_by_read = true;
    // Back to the reader, as a switch away from the target would tell the sanitizers.
    sanitizers::before_jump(target, request->reader, /*dying=*/false);
    from = ctx::jump_fcontext(from.fctx, nullptr);
    const auto data = reinterpret_cast<std::uintptr_t>(from.data);
    if ((data & 1) == 0) break;
    request = reinterpret_cast<read_request*>(data & ~std::uintptr_t{1});
  }
  // Resumed for real: the jump's transfer goes to the target's own jump, which lands as usual.
  target->parked_by_read = false;
  return from;
}

// read_suspended(ts, target, stack) walks suspended target's stack, in place on this thread. (The
// running greenlet may be the stack copier, reading for a greenlet on the shared stack.)
void read_suspended(thread_state& ts, greenlet_impl* target, void* stack_to_fill) noexcept {
  raw_stack& stack = *static_cast<raw_stack*>(stack_to_fill);
  greenlet_impl* self = ts.current;
  read_request request{&stack, self, target};
  void* const to = target->context;
  // The same bookkeeping as a switch's jump (switch_inline.hpp), minus what only a greenlet that
  // runs needs: ontop_fcontext() loads MXCSR from the target's frame, as jump_fcontext() does.
  before_jump_fp(to);
  sanitizers::before_jump(self, target, /*dying=*/false);
  const ctx::transfer_t back =
      target->parked_by_read
          ? ctx::jump_fcontext(to, reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(&request) | 1))
          : ctx::ontop_fcontext(to, &request, &walk_here);
  target->context = back.fctx;  // walk_here()'s frame, where the next jump into it lands
  sanitizers::after_jump(self, target);
}

// room_to_read(g) says whether suspended g's stack has room for walk_here() and the unwinder.
bool room_to_read(const greenlet_impl* g) noexcept {
  if (g->is_main) return true;  // the thread's own stack
  const auto used_to = reinterpret_cast<std::uintptr_t>(g->context);
  const auto limit = reinterpret_cast<std::uintptr_t>(g->stack_limit);
  return used_to > limit && used_to - limit >= greenlet::stack_read_room;
}

// The library's own source tree (this file is its src/fiber/stack_trace.cpp), as debug
// information names the files compiled there.
constexpr std::string_view library_sources() noexcept {
  constexpr std::string_view here = __FILE__;
  const std::size_t end = here.rfind("fiber/stack_trace.cpp");
  return end == std::string_view::npos || end == 0 ? std::string_view() : here.substr(0, end);
}

// is_plumbing(f) says whether f is machinery between the frames a user wrote and the ends of the
// stack: greenlet-cpp's own code (the switch, a run function's call, the event loop's waits), the
// standard library's calls between them, and the C library's start of a thread. Python's stacks
// show none of it (a greenlet's suspended frame is the one that called switch(), which has no
// frame of its own there).
bool is_plumbing(const stack_frame& f) noexcept {
  const std::string_view file = f.file;
  const std::string_view function = f.function;
  if (f.line != 0) {
    constexpr std::string_view sources = library_sources();  // worked out once, at compile time
    if (!sources.empty() && file.starts_with(sources)) return true;
    if (file.find("include/greenlet/") != std::string_view::npos) return true;
    if (file.find("/c++/") != std::string_view::npos) return true;  // libstdc++'s headers
    if (file.starts_with("../csu/") || file.starts_with("../sysdeps/") || file.starts_with("./nptl/")) return true;
  }
  if (function.starts_with("greenlet::") || function.starts_with("std::") || function.starts_with("__gnu_cxx::")) {
    return true;
  }
  // The C++ runtime's throw and the unwinder's search, at the newest end of an escape trace; the
  // call that records one (escape_trace.cpp), in a task's stack.
  if (function.starts_with("__cxa_") || function.starts_with("_Unwind_")) return true;
  if (function == "greenlet_call_recording_escape") return true;
  static constexpr std::string_view c_library_start[] = {"_start",
                                                         "__libc_start_main",
                                                         "__libc_start_main_impl",
                                                         "__libc_start_call_main",
                                                         "start_thread",
                                                         "clone",
                                                         "clone3",
                                                         "__clone",
                                                         "__clone3",
                                                         "execute_native_thread_routine"};
  return std::find(std::begin(c_library_start), std::end(c_library_start), function) != std::end(c_library_start);
}

// drop_plumbing(frames) drops the plumbing at both ends of a stack (oldest first); a stack that
// is all plumbing stays whole.
void drop_plumbing(stack_summary& frames) {
  auto first = std::find_if_not(frames.begin(), frames.end(), is_plumbing);
  if (first == frames.end()) return;
  auto last = std::find_if_not(frames.rbegin(), frames.rend(), is_plumbing).base();
  frames.erase(last, frames.end());
  frames.erase(frames.begin(), first);
}

}  // namespace

stack_summary escape_stack(const escape_trace& trace, std::size_t limit) {
  const std::span<const std::uintptr_t> pcs = trace.pcs();
  stack_summary frames;
  if (limit == 0) return frames;
  // Parts newest first (append_outer()), each a walk newest first; frames come out oldest first.
  for (auto end = pcs.end(); end != pcs.begin();) {
    const auto begin = std::find(std::make_reverse_iterator(end), pcs.rend(), std::uintptr_t{0}).base();
    if (begin != end) {
      stack_summary part = symbolize(&*begin, static_cast<std::size_t>(end - begin));
      if (std::any_of(part.begin(), part.end(), [](const stack_frame& f) { return !is_plumbing(f); })) {
        drop_plumbing(part);
        frames.insert(frames.end(), part.begin(), part.end());
      }
    }
    end = begin == pcs.begin() ? begin : begin - 1;
  }
  if (frames.size() > limit) frames.resize(limit);
  return frames;
}

}  // namespace detail

stack_summary greenlet::get_stack(std::size_t limit) const {
  detail::greenlet_impl* g = checked();
  detail::refuse_other_thread(g, "read the stack of");
  detail::thread_state& ts = detail::state();
  // (A greenlet whose thread has exited: dead, or that thread's main greenlet, whose stack is gone.)
  if (detail::owner_of(g) != &ts) return {};
  if (g->state != detail::run_state::active && !g->is_main) return {};
  if (limit == 0) return {};
  const std::unique_ptr<detail::raw_stack> stack = detail::walk_limits(g);
  if (g == ts.current) {
    detail::walk_current(*stack);
  } else {
    if (g->context == nullptr || !detail::room_to_read(g)) return {};  // (null: a shared greenlet yet to run)
    if (g->swapped_out()) {
      detail::read_swapped_out(ts, g, &detail::read_suspended, stack.get());
    } else {
      detail::read_suspended(ts, g, stack.get());
    }
  }
  stack_summary frames = detail::symbolize(stack->pcs, stack->count);
  detail::drop_plumbing(frames);
  if (frames.size() > limit) frames.erase(frames.begin(), frames.end() - static_cast<std::ptrdiff_t>(limit));
  return frames;
}

std::string format_frame(const stack_frame& f) {
  std::string line = "File \"" + f.file + "\"";
  if (f.line != 0) line += ", line " + std::to_string(f.line);
  line += ", in ";
  if (!f.function.empty()) {
    line += f.function;
  } else {
    char address[32];
    std::snprintf(address, sizeof address, "?? at %p", f.address);
    line += address;
  }
  return line;
}

std::string format_stack(const stack_summary& frames) {
  std::string text;
  for (const stack_frame& f : frames) {
    text += "  ";
    text += format_frame(f);
    text += '\n';
  }
  return text;
}

void print_stack(const stack_summary& frames, std::ostream& out) { out << format_stack(frames); }

void print_stack(const stack_summary& frames) { print_stack(frames, std::cerr); }

}  // namespace greenlet
