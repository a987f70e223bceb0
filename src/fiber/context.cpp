// context.cpp: where a greenlet's context variables live: in its object,
// so switching costs nothing and each greenlet sees its own. A generator
// body's greenlet is the exception: it has none (see context_holder()).
#include <atomic>
#include <string>
#include <utility>

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

context_ptr current_context() { return context_holder(state().current)->context_vars.vars; }

void set_current_context(context_ptr context) {
  context_holder(state().current)->context_vars.vars = std::move(context);
}

std::uint64_t current_context_id() {
  context_slot& slot = context_holder(state().current)->context_vars;
  if (slot.id == 0) slot.id = next_context_id();
  return slot.id;
}

context_slot exchange_current_context(context_slot slot) {
  return std::exchange(context_holder(state().current)->context_vars, std::move(slot));
}

bool leave_context(std::uint64_t id, context_slot& outer, context_ptr& vars) noexcept {
  context_slot& slot = context_holder(tls_state->current)->context_vars;
  if (slot.id != id) return false;
  vars = std::exchange(slot, std::move(outer)).vars;
  return true;
}

std::uint64_t next_context_var_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t next_context_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void throw_context_entered() {
  throw error(errc::context_entered,
              "cannot enter context: it is already entered (its run() has not returned, in this greenlet or "
              "another); run a copy instead: auto inner = ctx; inner.run(fn)");
}

void throw_context_replaced() {
  throw error(errc::context_replaced,
              "cannot exit context: the greenlet's context was replaced inside run() (set_gr_context() on the "
              "running greenlet); the greenlet keeps that context, and the context object the values it had "
              "when run() began");
}

void throw_token_other_context(const std::string& var_name) {
  throw error(errc::token_other_context, "reset(): the token of context_var '" + var_name +
                                             "' was created in a different context (another context::run(), "
                                             "greenlet, task or loop callback); reset it where set() made it");
}

void throw_token_used(const std::string& var_name) {
  throw error(errc::token_used, "reset(): the token given to context_var '" + var_name +
                                    "' has already been used once; each set() gives a token for one reset()");
}

void throw_token_other_var(const std::string& var_name) {
  throw error(errc::token_other_var, "reset(): the token given to context_var '" + var_name +
                                         "' was created by a different context_var; reset it with the variable "
                                         "whose set() made it");
}

}  // namespace detail

// Another live thread's greenlet may run and replace its context meanwhile
// (Python refuses one running there; here it may start running any time).
context greenlet::gr_context() const {
  detail::greenlet_impl* self = checked();
  detail::refuse_other_thread(self, "read the context (gr_context()) of");
  return context(self->context_vars.vars);
}

// The greenlet runs in a copy of ctx: a context of its own, with ctx's values.
void greenlet::set_gr_context(const context& ctx) {
  detail::greenlet_impl* self = checked();
  detail::refuse_other_thread(self, "set the context (set_gr_context()) of");
  self->context_vars = {ctx.data(), 0};
}

}  // namespace greenlet
