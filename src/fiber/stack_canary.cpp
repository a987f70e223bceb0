// stack_canary.cpp: the report for an overflowed unguarded stack.
#include "greenlet/detail/stack_canary.hpp"

#include "fiber/report_labels.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace greenlet::detail {

// The labels and advice are here, not in a file of their own, because a
// shared-library build compiles this file into the white-box tests too.
void write_greenlet_label(const greenlet_impl* g, char* out, std::size_t size) noexcept {
  const auto id = static_cast<unsigned long long>(g->id);
  const char* name = g->name.c_str();
  const bool named = name[0] != '\0';
  if (g->role != nullptr) {
    char what[256];
    g->role->role_ops->describe(g->role, what, sizeof what);
    std::snprintf(out, size, "%s (greenlet #%llu)", what, id);
  } else if (g->generator != nullptr) {
    std::snprintf(out, size, "a generator's body (greenlet #%llu%s%s%s)", id, named ? " \"" : "", name,
                  named ? "\"" : "");
  } else {
    std::snprintf(out, size, "greenlet #%llu%s%s%s", id, named ? " \"" : "", name, named ? "\"" : "");
  }
}

void write_stack_advice(const greenlet_impl* g, std::size_t bigger, bool guarded, char* out,
                        std::size_t size) noexcept {
  const char* guard = guarded ? "" : ", .guard_page = false";
  if (g->role != nullptr) {
    g->role->role_ops->advise_stack(g->role, bigger, guarded, out, size);
  } else if (g->generator != nullptr) {
    std::snprintf(out, size, "  Give it a bigger one: generator(body, greenlet::stack_options{.size = %zu%s}).\n",
                  bigger, guard);
  } else {
    std::snprintf(out, size,
                  "  Give it a bigger one: greenlet(run, parent, greenlet::stack_options{.size = %zu%s}),\n"
                  "  or for every greenlet made without a size: greenlet::set_default_stack_size(%zu).\n",
                  bigger, guard, bigger);
  }
}

std::string stack_canary_report(const greenlet_impl* g) {
  const std::size_t bigger = g->stack_size * 4;
  char label[320];
  write_greenlet_label(g, label, sizeof label);
  char advice[384];
  write_stack_advice(g, bigger, /*guarded=*/false, advice, sizeof advice);
  char text[1280];
  std::snprintf(text, sizeof text,
                "greenlet: stack overflow in %s: the canary at the bottom of its unguarded "
                "%zu-byte stack was overwritten, so memory below that stack (another greenlet's frames) is "
                "corrupt.\n"
                "%s"
                "  Or give it a guarded stack, which stops at the overflow itself: the same without "
                ".guard_page = false (each guarded stack costs two kernel mappings of vm.max_map_count).\n"
                "  Deep recursion or large local arrays cause this.\n",
                label, g->stack_size, advice);
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
