// stack_canary.cpp: the report for an overflowed unguarded stack.
#include "greenlet/detail/stack_canary.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace greenlet::detail {

std::string stack_canary_report(const greenlet_impl* g) {
  const std::size_t bigger = g->stack_size * 4;
  char text[768];
  std::snprintf(text, sizeof text,
                "greenlet: stack overflow in greenlet #%llu%s%s%s: the canary at the bottom of its unguarded "
                "%zu-byte stack was overwritten, so memory below that stack (another greenlet's frames) is "
                "corrupt.\n"
                "  Give it a bigger stack: greenlet(run, parent, greenlet::stack_options{.size = %zu, "
                ".guard_page = false}),\n"
                "  or a guarded one, which stops at the overflow itself: stack_options{.size = %zu} "
                "(guard_page defaults to true; each guarded stack costs two kernel mappings of vm.max_map_count).\n"
                "  For asyncio tasks set event_loop::options::task_stack. Deep recursion or large local arrays "
                "cause this.\n",
                static_cast<unsigned long long>(g->id), g->name.empty() ? "" : " \"", g->name.c_str(),
                g->name.empty() ? "" : "\"", g->stack_size, bigger, bigger);
  return text;
}

namespace {

[[noreturn]] void write_and_abort(const char* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t written = ::write(STDERR_FILENO, p, n);
    if (written <= 0) break;
    p += written;
    n -= static_cast<std::size_t>(written);
  }
  std::abort();
}

[[noreturn]] void write_fallback_and_abort() noexcept {
  static const char fallback[] = "\ngreenlet: stack overflow (broken stack canary)\n";
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, fallback, sizeof fallback - 1);
  std::abort();
}

}  // namespace

void stack_canary_broken(const greenlet_impl* g) noexcept {
  // Formatting allocates; memory is corrupt, but below the greenlet's stack,
  // not in the heap, and the report is worth the risk.
  std::string report;
  try {
    report = stack_canary_report(g);
    report.insert(report.begin(), '\n');
  } catch (...) {
    write_fallback_and_abort();
  }
  write_and_abort(report.data(), report.size());
}

void stack_canary_broken_at_release(std::size_t stack_size) noexcept {
  char text[512];
  std::snprintf(text, sizeof text,
                "\ngreenlet: stack overflow: a finished greenlet's unguarded %zu-byte stack has lost its "
                "canary, so memory below it (another greenlet's frames) is corrupt. Give it a bigger "
                "stack (stack_options{.size = %zu, .guard_page = false}) or a guarded one "
                "(stack_options{.size = %zu}).\n",
                stack_size, stack_size * 4, stack_size * 4);
  write_and_abort(text, std::strlen(text));
}

}  // namespace greenlet::detail
