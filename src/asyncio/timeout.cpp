// timeout.cpp: asyncio.Timeout's rules (Lib/asyncio/timeouts.py). The
// deadline cancels the task; on leaving, the cancellation becomes
// TimeoutError only if uncancel() brings the task's cancel count back to
// what it was on entry, so an outer scope or a real cancel() is not
// mistaken for this scope's timeout.
#include "greenlet/asyncio/timeout.hpp"

namespace greenlet::asyncio {

namespace {}  // namespace

Timeout::Timeout(std::optional<double> when)
    : task_(&detail::awaiting_task()), cancelling_at_entry_(task_->cancelling()) {
  detail::retain(task_->future());
  reschedule(when);
}

Timeout::~Timeout() {
  cancel_timer();
  detail::release(task_->future());
}

void Timeout::cancel_timer() noexcept {
  if (timer_ == nullptr) return;
  task_->loop->cancel_node(timer_);
  detail::release(timer_);
  timer_ = nullptr;
}

void Timeout::reschedule(std::optional<double> when) {
  if (state_ != state::entered) {
    throw RuntimeError(asyncio_errc::invalid_state, "Timeout::reschedule() after the deadline or the scope's end");
  }
  when_ = when;
  cancel_timer();
  if (!when) return;
  detail::loop_core* loop = task_->loop;
  auto on_timeout = [this] {
    // This callback is the timer: drop our reference to it, nothing is
    // left to cancel.
    detail::callback_node* self = timer_;
    timer_ = nullptr;
    task_->cancel("");
    state_ = state::expiring;
    detail::release(self);
  };
  // A deadline already past fires on the next iteration, as asyncio does.
  detail::callback_node* node = *when <= loop->time() ? loop->call_soon(on_timeout) : loop->call_at(*when, on_timeout);
  detail::retain(node);
  timer_ = node;
}

void Timeout::exit(std::exception_ptr error) {
  if (state_ == state::exited || state_ == state::expired) return;
  cancel_timer();
  if (state_ == state::expiring) {
    state_ = state::expired;
    if (task_->uncancel() <= cancelling_at_entry_ && detail::is_cancellation(error)) {
      throw TimeoutError("the asyncio::timeout() deadline passed");
    }
    return;
  }
  state_ = state::exited;
}

}  // namespace greenlet::asyncio
