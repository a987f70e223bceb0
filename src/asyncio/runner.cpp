// runner.cpp: asyncio::Runner's loop, made lazily and ended as asyncio::run() ends its own.
#include "greenlet/asyncio/runner.hpp"

#include "greenlet/asyncio/errors.hpp"

namespace greenlet::asyncio {

event_loop& Runner::get_loop() {
  if (closed_) {
    throw RuntimeError(asyncio_errc::loop_closed, "Runner is closed: make a new asyncio::Runner to run more");
  }
  if (loop_ == nullptr) {
    loop_ = new_event_loop(opts_);
    set_event_loop(loop_);
    context_.emplace(::greenlet::copy_context());
  }
  return *loop_;
}

void Runner::check_can_run() const {
  if (detail::running_loop() != nullptr) {
    throw RuntimeError(asyncio_errc::loop_running,
                       "Runner.run() cannot be called from a running event loop: await instead");
  }
}

void Runner::close() noexcept {
  if (closed_) return;
  closed_ = true;
  if (loop_ == nullptr) return;
  if (loop_->is_running()) {
    // Called from inside run(): Python's Runner.close() would fail there
    // too. The loop ends when run() returns and the last handle goes.
    return;
  }
  detail::finish_run(*loop_);
  context_.reset();
  // loop_ is kept, closed, until the runner goes: get_loop() handed out a reference to it, which
  // Python's `loop = runner.get_loop()` would keep usable (loop.is_closed()) after close().
}

}  // namespace greenlet::asyncio
