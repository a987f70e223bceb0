// context.cpp: where a greenlet's context variables live: in its object,
// so switching costs nothing and each greenlet sees its own.
#include <atomic>

#include "fiber/thread_state.hpp"
#include "greenlet/fiber/context.hpp"

namespace greenlet {

namespace detail {

context_ptr current_context() { return state().current->context_vars; }

void set_current_context(context_ptr context) { state().current->context_vars = std::move(context); }

std::uint64_t next_context_var_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace detail

context greenlet::gr_context() const { return context(checked()->context_vars); }

void greenlet::set_gr_context(const context& ctx) { checked()->context_vars = ctx.data(); }

}  // namespace greenlet
