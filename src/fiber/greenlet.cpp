// greenlet.cpp: the methods of the greenlet handle.
#include "greenlet/fiber/greenlet.hpp"

#include <atomic>
#include <string>

#include "fiber/thread_state.hpp"

namespace greenlet {

namespace {

std::atomic<std::size_t> default_stack_bytes{128 * 1024};

}  // namespace

namespace detail {

void refuse_other_thread(const greenlet_impl* g, const char* what) {
  thread_state* owner = owner_of(g);
  if (owner == nullptr || owner == tls_state) return;
  throw error(errc::wrong_thread, std::string("cannot ") + what +
                                      " a greenlet of another thread, which may change it meanwhile: do it on "
                                      "the greenlet's own thread (hand work there with call_soon_threadsafe())");
}

}  // namespace detail

void greenlet::throw_empty() {
  throw error(errc::empty_handle, "this greenlet handle is empty: assign it a greenlet(run) before using it");
}

greenlet greenlet::getcurrent() {
  detail::thread_state& ts = detail::state();
  if (ts.has_mail.load(std::memory_order_acquire)) [[unlikely]] {
    ts.process_mail();
  }
  detail::retain(ts.current);
  return from_impl(ts.current);
}

void greenlet::throw_not_callable(const char* what) {
  throw error(errc::bad_arguments,
              std::string("greenlet(run): run is ") + what + ", which cannot be called: give it a function to run");
}

value greenlet::throw_() { return throw_(std::make_exception_ptr(GreenletExit())); }

value greenlet::throw_(std::exception_ptr e) {
  detail::greenlet_impl* target = checked();
  if (!e) e = std::make_exception_ptr(GreenletExit());
  return detail::throw_to(detail::state(), target, std::move(e));
}

bool greenlet::is_main() const { return checked()->is_main; }

greenlet greenlet::parent() const {
  detail::greenlet_impl* self = checked();
  if (self->is_main) return greenlet();
  // Its thread may re-parent it meanwhile and free the old parent before
  // this retains it.
  detail::refuse_other_thread(self, "read the parent of");
  detail::greenlet_impl* p = self->parent;
  if (p == nullptr) return greenlet();
  detail::retain(p);
  return from_impl(p);
}

void greenlet::set_parent(const greenlet& new_parent) {
  detail::greenlet_impl* self = checked();
  if (self->is_main) {
    throw error(errc::main_parent, "cannot set the parent of a main greenlet");
  }
  detail::greenlet_impl* p = new_parent.checked();
  detail::thread_state* here = detail::tls_state;
  if (detail::owner_of(p) != detail::owner_of(self) || detail::owner_of(self) != here) {
    throw error(errc::wrong_thread, "parent cannot be on a different thread");
  }
  for (detail::greenlet_impl* g = p; g != nullptr; g = g->parent) {
    if (g == self) throw error(errc::cyclic_parent, "cyclic parent chain");
  }
  detail::retain(p);
  ++here->reparents;
  detail::greenlet_impl* old = std::exchange(self->parent, p);
  if (old != nullptr) detail::release(old);
}

std::uint64_t greenlet::id() const { return checked()->id; }
const std::string& greenlet::name() const { return checked()->name; }
void greenlet::set_name(std::string name) { checked()->name = std::move(name); }
std::size_t greenlet::stack_size() const { return checked()->stack_size; }

std::size_t default_stack_size() noexcept { return default_stack_bytes.load(std::memory_order_relaxed); }

void set_default_stack_size(std::size_t bytes) {
  if (bytes < 16 * 1024) {
    throw error(errc::bad_arguments, "set_default_stack_size: a greenlet stack needs at least 16 KiB");
  }
  default_stack_bytes.store(detail::round_to_pages(bytes), std::memory_order_relaxed);
}

namespace debug {

std::vector<greenlet> live_greenlets() {
  std::vector<greenlet> out;
  detail::thread_state* ts = detail::tls_state;
  if (ts == nullptr) return out;
  for (detail::greenlet_impl* g = ts->registry_head; g != nullptr; g = g->registry_next) {
    // Only greenlets someone still refers to: making a handle to one whose
    // last handle is gone would bring it back from the dead. (On g's own
    // thread the count cannot fall to zero meanwhile: other threads' releases
    // are mailed here.)
    if (detail::reference_count(g) > 0) {
      detail::retain(g);
      out.push_back(greenlet::from_impl(g));
    }
  }
  return out;
}

std::size_t live_count() noexcept {
  detail::thread_state* ts = detail::tls_state;
  return ts == nullptr ? 0 : ts->live;
}

pooled_stack_counts pooled_stacks() noexcept {
  detail::thread_state* ts = detail::tls_state;
  if (ts == nullptr) return {};
  return {ts->stacks.pooled_warm(), ts->stacks.pooled_cold(), ts->stacks.warm_budget()};
}

cached_object_bytes cached_objects() noexcept {
  detail::thread_state* ts = detail::tls_state;
  if (ts == nullptr) return {};
  return {ts->objects.held_bytes(), ts->objects.budget()};
}

}  // namespace debug

}  // namespace greenlet
