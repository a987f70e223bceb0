// context.cpp: where a greenlet's context variables live: in its object,
// so switching costs nothing and each greenlet sees its own. A generator
// body's greenlet is the exception: it has none (see context_holder()).
#include <atomic>

#include "fiber/thread_state.hpp"
#include "greenlet/fiber/context.hpp"

namespace greenlet {

namespace detail {

namespace {

// context_holder(g) is the greenlet whose context g reads and sets: g itself,
// unless g is a generator's body (marked by greenlet_impl::generator while
// the generator can run it). A Python generator frame has no context of its
// own: its body uses the context of whoever resumes it, which is the body's
// parent (resume() makes it so; a nested generator's resumer is the outer
// body, which resolves in turn). This costs a generator step nothing; a
// context access pays one load per generator nested.
greenlet_impl* context_holder(greenlet_impl* g) noexcept {
  while (g->generator != nullptr && g->parent != nullptr) g = g->parent;
  return g;
}

}  // namespace

context_ptr current_context() { return context_holder(state().current)->context_vars; }

void set_current_context(context_ptr context) { context_holder(state().current)->context_vars = std::move(context); }

std::uint64_t next_context_var_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace detail

context greenlet::gr_context() const { return context(checked()->context_vars); }

void greenlet::set_gr_context(const context& ctx) { checked()->context_vars = ctx.data(); }

}  // namespace greenlet
