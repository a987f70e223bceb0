// symbolize.cpp: names, files and lines for code addresses.
//
// GCC's libbacktrace (libgcc's libbacktrace.a and backtrace.h, found by CMakeLists.txt, which
// then defines GREENLET_HAVE_LIBBACKTRACE) reads the symbol tables and DWARF line tables of the
// executable and of every shared library loaded, static functions and inlined calls included.
// Without it, dladdr() names only what the dynamic symbol table holds (an executable's own
// functions only when linked with -rdynamic).
#include "fiber/symbolize.hpp"

#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#if defined(GREENLET_HAVE_LIBBACKTRACE)
#include <backtrace.h>
#endif

namespace greenlet::detail {
namespace {

// demangled(name) is a C++ symbol as source spells it; other names as they are.
std::string demangled(const char* name) {
  if (name == nullptr) return {};
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* readable = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (readable == nullptr) return name;
  std::string text(readable);
  std::free(readable);
  return text;
}

// from_dynamic_symbols(pc) names the frame at pc by dladdr(): the dynamic symbol, and the binary.
stack_frame from_dynamic_symbols(std::uintptr_t pc) {
  stack_frame frame;
  frame.address = reinterpret_cast<const void*>(pc);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(pc), &info) != 0) {
    frame.function = demangled(info.dli_sname);
    if (info.dli_fname != nullptr) frame.file = info.dli_fname;
  }
  return frame;
}

#if defined(GREENLET_HAVE_LIBBACKTRACE)

void ignore_error(void*, const char*, int) noexcept {}

// The process's libbacktrace state: made once, never freed (libbacktrace cannot free one), its
// memory mmap'd by libbacktrace and its tables read lazily, at the first lookup in each binary.
backtrace_state* process_state() noexcept {
  static backtrace_state* const state = backtrace_create_state(nullptr, /*threaded=*/1, &ignore_error, nullptr);
  return state;
}

// The frames one address expands to, innermost first, and whether a lookup failed.
struct lookup {
  std::uintptr_t pc;
  std::vector<stack_frame>* out;
  bool failed = false;
};

int add_line(void* data, std::uintptr_t, const char* file, int line, const char* function) noexcept {
  auto& l = *static_cast<lookup*>(data);
  if (file == nullptr && function == nullptr) return 0;  // no debug information for it
  try {
    stack_frame frame;
    frame.address = reinterpret_cast<const void*>(l.pc);
    frame.function = demangled(function);
    if (file != nullptr) frame.file = file;
    frame.line = line > 0 ? static_cast<unsigned>(line) : 0;
    l.out->push_back(std::move(frame));
  } catch (...) {
    l.failed = true;
    return 1;
  }
  return 0;
}

void add_symbol(void* data, std::uintptr_t, const char* symbol, std::uintptr_t, std::uintptr_t) noexcept {
  auto& l = *static_cast<lookup*>(data);
  if (symbol == nullptr) return;
  try {
    l.out->back().function = demangled(symbol);
  } catch (...) {
    l.failed = true;
  }
}

// add_frames(pc, out) appends the frames at pc, innermost first.
void add_frames(std::uintptr_t pc, std::vector<stack_frame>& out) {
  backtrace_state* state = process_state();
  const std::size_t before = out.size();
  if (state != nullptr) {
    lookup l{pc, &out};
    backtrace_pcinfo(state, pc, &add_line, &ignore_error, &l);
    if (l.failed) throw std::bad_alloc();
  }
  if (out.size() == before) {
    // No line table for it: the symbol table's name, and the binary's path from dladdr().
    out.push_back(from_dynamic_symbols(pc));
  } else if (!out.back().function.empty()) {
    return;
  }
  // The outermost function at pc unnamed (no debug information, or a line table without the
  // function's description, as -g1 leaves some template instances): the symbol table names it.
  if (state != nullptr) {
    lookup l{pc, &out};
    backtrace_syminfo(state, pc, &add_symbol, &ignore_error, &l);
    if (l.failed) throw std::bad_alloc();
  }
}

#else

void add_frames(std::uintptr_t pc, std::vector<stack_frame>& out) { out.push_back(from_dynamic_symbols(pc)); }

#endif

}  // namespace

stack_summary symbolize(const std::uintptr_t* pcs, std::size_t count) {
  stack_summary frames;
  frames.reserve(count);
  for (std::size_t i = 0; i < count; ++i) add_frames(pcs[i], frames);
  std::reverse(frames.begin(), frames.end());
  return frames;
}

}  // namespace greenlet::detail
