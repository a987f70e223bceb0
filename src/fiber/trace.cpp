// trace.cpp: settrace/gettrace and the hook for exceptions with nowhere to go.
#include <cstdio>
#include <mutex>
#include <new>
#include <string>

#include "fiber/thread_state.hpp"

namespace greenlet {

namespace {

std::mutex& hook_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Never destroyed: static destructors that run after it would have been
// (made before its first use) may still report, as greenlets work there too.
// Placement, not a heap object: nothing to count as a leak.
unraisable_hook& hook() {
  alignas(unraisable_hook) static unsigned char storage[sizeof(unraisable_hook)];
  static unraisable_hook* h = new (storage) unraisable_hook;
  return *h;
}

}  // namespace

trace_function settrace(trace_function f) {
  detail::thread_state& ts = detail::state();
  trace_function old = std::move(ts.trace);
  // Thread exit's kills are never traced (see ~thread_state()).
  if (ts.exiting) f = nullptr;
  ts.trace = std::move(f);
  ts.tracing = static_cast<bool>(ts.trace);
  if (ts.tracing) ts.pending |= detail::pending_work::bookkeeping;  // every switch takes the slow path
  return old;
}

trace_function gettrace() { return detail::state().trace; }

unraisable_hook set_unraisable_hook(unraisable_hook h) {
  std::lock_guard<std::mutex> lock(hook_mutex());
  unraisable_hook old = std::move(hook());
  hook() = std::move(h);
  return old;
}

void report_unraisable(std::exception_ptr error, std::string_view context) noexcept {
  unraisable_hook h;
  {
    std::lock_guard<std::mutex> lock(hook_mutex());
    try {
      h = hook();
    } catch (...) {
    }
  }
  if (h) {
    try {
      h(error, context);
      return;
    } catch (...) {
      // A hook that throws falls back to the default report.
    }
  }
  const int context_size = static_cast<int>(context.size());
  if (!error) {
    // A report with no exception (a greenlet leaked): the context says it all.
    std::fprintf(stderr, "greenlet: %.*s\n", context_size, context.data());
    return;
  }
  std::string what = describe_exception(error);
  std::fprintf(stderr, "greenlet: exception ignored in %.*s: %s\n", context_size, context.data(), what.c_str());
}

namespace detail {

void report_unraisable(std::exception_ptr error, const std::string& context) noexcept {
  ::greenlet::report_unraisable(std::move(error), context);
}

void call_trace(thread_state& ts, greenlet_impl* origin, greenlet_impl* target) noexcept {
  // Copy the function: it may call settrace() itself.
  trace_function f = ts.trace;
  if (!f) return;
  const char* event = ts.transfer_error ? "throw" : "switch";
  // The handles borrow the references the caller holds on origin and target
  // and give them back unreleased: the caller drops them once the switch's
  // bookkeeping is done (a release here could kill origin in its middle).
  greenlet o = greenlet::from_impl(origin);
  greenlet t = greenlet::from_impl(target);
  // The trace function may itself switch away and back: keep what this
  // switch carries out of the way meanwhile (Python's g_switch_finish does too).
  value carried_value = std::move(ts.transfer_value);
  std::exception_ptr carried_error = std::move(ts.transfer_error);
  ts.transfer_error = nullptr;
  try {
    f(event, o, t);
  } catch (...) {
    ts.trace = nullptr;
    ts.tracing = false;
    carried_value.reset();
    carried_error = std::current_exception();
  }
  ts.transfer_value = std::move(carried_value);
  ts.transfer_error = std::move(carried_error);
  o.detach();
  t.detach();
}

}  // namespace detail
}  // namespace greenlet
