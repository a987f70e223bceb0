// escape_trace.cpp: call_recording_escape(), the traceback of an exception that leaves a call.
//
// A C++ exception carries no traceback, and by the time a catch handler runs, the frames it was
// thrown from are gone. But the C++ runtime throws in two phases: the first searches the stack
// for a handler, frame by frame, asking each frame's personality routine, and changes nothing;
// only the second unwinds. So a frame whose personality routine is ours is told, in the search,
// that an exception is about to leave the frames below it, while they are all still there: it
// walks them then (the unwinder's _Unwind_Backtrace, as get_stack() does) and lets the search go
// on. That frame is greenlet_call_recording_escape() below, written in assembly because C++ gives
// no way to choose a function's personality routine. It calls fn(arg) and keeps where to put the
// trace in its frame. A normal call pays for one more call; the walk is taken only by an
// exception no handler inside fn catches.
#include "fiber/escape_trace.hpp"

#include <unwind.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "fiber/thread_state.hpp"
#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/fiber/greenlet.hpp"

#if defined(__x86_64__) && defined(__ELF__)
#define GREENLET_RECORDS_ESCAPES 1
#endif

#if GREENLET_RECORDS_ESCAPES

extern "C" {
// greenlet_call_recording_escape(fn, arg, trace) calls fn(arg), with trace at 8 bytes above its
// stack pointer during the call: the unwinder gives the personality routine that stack pointer
// (_Unwind_GetCFA(): the canonical frame address of the frame it called, fn's). The DW.ref word is
// how compilers name a personality routine from position-independent code.
void greenlet_call_recording_escape(void (*fn)(void*), void* arg, greenlet::detail::escape_trace* trace);
_Unwind_Reason_Code greenlet_escape_personality(int version, _Unwind_Action actions, _Unwind_Exception_Class kind,
                                                _Unwind_Exception* exception, _Unwind_Context* frame) noexcept;
}

asm(R"(
    .text
    .p2align 4
    .globl greenlet_call_recording_escape
    .hidden greenlet_call_recording_escape
    .type greenlet_call_recording_escape, @function
greenlet_call_recording_escape:
    .cfi_startproc
    .cfi_personality 0x9b, DW.ref.greenlet_escape_personality
    endbr64
    subq $24, %rsp
    .cfi_def_cfa_offset 32
    movq %rdx, 8(%rsp)
    movq %rdi, %rax
    movq %rsi, %rdi
    call *%rax
    addq $24, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size greenlet_call_recording_escape, .-greenlet_call_recording_escape

    .hidden DW.ref.greenlet_escape_personality
    .weak DW.ref.greenlet_escape_personality
    .section .data.rel.local.DW.ref.greenlet_escape_personality,"awG",@progbits,DW.ref.greenlet_escape_personality,comdat
    .p2align 3
    .type DW.ref.greenlet_escape_personality, @object
    .size DW.ref.greenlet_escape_personality, 8
DW.ref.greenlet_escape_personality:
    .quad greenlet_escape_personality
    .text
)");

#endif

namespace greenlet::detail {
namespace {

// A walk's addresses, on the stack of the exception's search (an exception may be out of memory).
struct escape_walk {
  static constexpr std::size_t capacity = 128;
  std::uintptr_t pcs[capacity];
  std::size_t count = 0;
  std::size_t skip = 0;        // the walk's own frames
  std::uintptr_t stop_at = 0;  // the stack pointer of greenlet_call_recording_escape()'s call
};

_Unwind_Reason_Code collect_escape_frame(_Unwind_Context* frame, void* data) noexcept {
  auto& walk = *static_cast<escape_walk*>(data);
  int before_instruction = 0;
  const std::uintptr_t ip = _Unwind_GetIPInfo(frame, &before_instruction);
  if (ip == 0 || _Unwind_GetCFA(frame) >= walk.stop_at) return _URC_END_OF_STACK;
  if (walk.skip > 0) {
    --walk.skip;
    return _URC_NO_REASON;
  }
  walk.pcs[walk.count++] = before_instruction != 0 ? ip : ip - 1;  // the call, as in get_stack()
  return walk.count == escape_walk::capacity ? _URC_END_OF_STACK : _URC_NO_REASON;
}

// room_to_walk() says whether the running stack has room for the unwinder's walk, below the
// search's own frames: an exception thrown near a greenlet's stack limit unwinds without a trace
// rather than overflow into the guard page.
bool room_to_walk() noexcept {
  const thread_state* ts = tls_state;
  const greenlet_impl* g = ts != nullptr ? ts->current : nullptr;
  if (g == nullptr || g->is_main || g->stack_limit == nullptr) return true;  // the thread's own stack
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  const auto limit = reinterpret_cast<std::uintptr_t>(g->stack_limit);
  return here > limit && here - limit >= ::greenlet::greenlet::stack_read_room;
}

// new_block(count) is a block for escape_trace::adopt() with room for count addresses, its count
// set; null without memory (malloc(): the search of an exception must not throw).
std::uintptr_t* new_block(std::size_t count) noexcept {
  auto* block = static_cast<std::uintptr_t*>(std::malloc((count + 1) * sizeof(std::uintptr_t)));
  if (block != nullptr) block[0] = count;
  return block;
}

// record_escape(frame) walks the stack from here to the frame of greenlet_call_recording_escape()
// whose personality routine the search just called, and gives the addresses to that call's trace.
[[gnu::noinline]] void record_escape(_Unwind_Context* frame) noexcept {
  const std::uintptr_t call_sp = _Unwind_GetCFA(frame);
  auto* trace = *reinterpret_cast<escape_trace* const*>(call_sp + 8);
  if (trace == nullptr || !room_to_walk()) return;
  escape_walk walk;
  walk.skip = 2;  // this function and the personality routine
  walk.stop_at = call_sp;
  _Unwind_Backtrace(&collect_escape_frame, &walk);
  if (walk.count == 0) return;
  std::uintptr_t* const block = new_block(walk.count);
  if (block == nullptr) return;
  std::copy(walk.pcs, walk.pcs + walk.count, block + 1);
  trace->adopt(block);
}

}  // namespace

void call_recording_escape(void (*fn)(void*), void* arg, escape_trace& trace) {
#if GREENLET_RECORDS_ESCAPES
  greenlet_call_recording_escape(fn, arg, &trace);
#else
  (void)trace;
  fn(arg);
#endif
}

escape_trace copy_of(const escape_trace& trace) noexcept {
  escape_trace copy;
  const std::span<const std::uintptr_t> pcs = trace.pcs();
  if (pcs.empty()) return copy;
  std::uintptr_t* const block = new_block(pcs.size());
  if (block == nullptr) return copy;
  std::copy(pcs.begin(), pcs.end(), block + 1);
  copy.adopt(block);
  return copy;
}

void append_outer(escape_trace& inner, const escape_trace& outer) noexcept {
  const std::span<const std::uintptr_t> newer = inner.pcs();
  const std::span<const std::uintptr_t> older = outer.pcs();
  if (older.empty()) return;
  std::uintptr_t* const block = new_block(newer.size() + 1 + older.size());
  if (block == nullptr) return;
  std::uintptr_t* at = block + 1;
  if (!newer.empty()) at = std::copy(newer.begin(), newer.end(), at);
  *at++ = 0;  // where one recorded part ends (no frame is at address 0)
  std::copy(older.begin(), older.end(), at);
  inner.adopt(block);
}

}  // namespace greenlet::detail

#if GREENLET_RECORDS_ESCAPES
// The search phase asks, the cleanup phase (and a forced unwind) is told to go on: the frame has
// nothing to clean up and catches nothing.
extern "C" _Unwind_Reason_Code greenlet_escape_personality(int version, _Unwind_Action actions, _Unwind_Exception_Class,
                                                           _Unwind_Exception*, _Unwind_Context* frame) noexcept {
  if (version == 1 && (actions & _UA_SEARCH_PHASE) != 0) greenlet::detail::record_escape(frame);
  return _URC_CONTINUE_UNWIND;
}
#endif
