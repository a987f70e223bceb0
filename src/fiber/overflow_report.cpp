// overflow_report.cpp: turns a fault in a greenlet's guard page into a
// readable report instead of a bare "Segmentation fault".
//
// The handler runs on an alternate signal stack (the overflowed stack has no
// room left), says which greenlet overflowed, how big its stack is and how to
// give it more, then restores the previous handler and returns, so the fault
// repeats and ends the process as it would have (or reaches the previous
// handler: a sanitizer's, a crash reporter's).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "fiber/report_labels.hpp"
#include "fiber/thread_state.hpp"

namespace greenlet::detail {

namespace {

struct sigaction previous_action;
std::once_flag install_once;
constexpr std::size_t signal_stack_size = 64 * 1024;
// How far below a stack's limit a fault still counts as its overflow: a big
// frame can jump over the guard page itself.
constexpr std::size_t overflow_reach = 256 * 1024;

bool hit_below(const greenlet_impl* g, const char* addr) {
  if (g == nullptr || g->stack_limit == nullptr) return false;  // main: not ours to report
  const char* limit = static_cast<const char*>(g->stack_limit);
  return addr < limit && addr + overflow_reach >= limit;
}

void write_all(const char* text, std::size_t n) {
  while (n > 0) {
    ssize_t written = ::write(STDERR_FILENO, text, n);
    if (written <= 0) return;
    text += written;
    n -= static_cast<std::size_t>(written);
  }
}

void on_fault(int signal, siginfo_t* info, void* context) {
  thread_state* ts = tls_state;
  const char* addr = static_cast<const char*>(info->si_addr);
  if (ts != nullptr && hit_below(ts->current, addr)) {
    // No allocation here: the labels are written into these buffers, on the
    // alternate signal stack.
    const greenlet_impl* g = ts->current;
    char label[320];
    write_greenlet_label(g, label, sizeof label);
    char advice[384];
    write_stack_advice(g, g->stack_size * 4, g->stack_opts.guard_page, advice, sizeof advice);
    char report[1024];
    int n = std::snprintf(report, sizeof report,
                          "\ngreenlet: stack overflow in %s: its %sstack is %zu bytes%s.\n"
                          "%s"
                          "  Deep recursion or large local arrays on a greenlet's stack cause this.\n",
                          label, g->shared_stack ? "(shared) " : "", g->stack_size,
                          g->stack_opts.guard_page ? " (guard page hit)" : "", advice);
    if (n > 0) write_all(report, static_cast<std::size_t>(n) < sizeof report ? n : sizeof report - 1);
  }
  // Hand the fault to whoever had it before us; returning re-runs the
  // faulting instruction under that handler.
  ::sigaction(SIGSEGV, &previous_action, nullptr);
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction != nullptr) previous_action.sa_sigaction(signal, info, context);
  } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
    previous_action.sa_handler(signal);
  }
}

}  // namespace

void install_overflow_reporter(thread_state& ts) {
  // Each thread needs its own alternate stack; keep one already installed
  // (a sanitizer runtime installs its own).
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) != 0) {
    void* memory = std::malloc(signal_stack_size);
    if (memory != nullptr) {
      stack_t alt{};
      alt.ss_sp = memory;
      alt.ss_size = signal_stack_size;
      if (::sigaltstack(&alt, nullptr) == 0) {
        ts.signal_stack = memory;
      } else {
        std::free(memory);
      }
    }
  }
  std::call_once(install_once, [] {
    struct sigaction action {};
    action.sa_sigaction = &on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGSEGV, &action, &previous_action);
  });
}

void remove_overflow_reporter(thread_state& ts) noexcept {
  if (ts.signal_stack == nullptr) return;
  stack_t disable{};
  disable.ss_flags = SS_DISABLE;
  ::sigaltstack(&disable, nullptr);
  std::free(ts.signal_stack);
  ts.signal_stack = nullptr;
}

}  // namespace greenlet::detail
