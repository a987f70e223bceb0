// wait.cpp: wait() and as_completed(). Both register one waiter on every
// future; a finishing future pushes its index and wakes the waiter.
#include "greenlet/concurrent/wait.hpp"

#include <chrono>

#include "concurrent/timeouts.hpp"

namespace greenlet::concurrent::detail {

namespace {

using clock = std::chrono::steady_clock;

double now() { return std::chrono::duration<double>(clock::now().time_since_epoch()).count(); }

bool failed(future_core* f) {
  try {
    return f->exception(0) != nullptr;
  } catch (...) {
    return false;  // cancelled: not an exception for FIRST_EXCEPTION
  }
}

bool satisfied(const std::vector<future_core*>& fs, const std::vector<bool>& flags, return_when when) {
  std::size_t done = 0;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    if (!flags[i]) continue;
    ++done;
    if (when == return_when::FIRST_COMPLETED) return true;
    if (when == return_when::FIRST_EXCEPTION && failed(fs[i])) return true;
  }
  return done == fs.size();
}

}  // namespace

std::vector<bool> wait_indices(const std::vector<future_core*>& fs, std::optional<double> timeout, return_when when) {
  timeout = effective_timeout(timeout);
  std::vector<bool> flags(fs.size());
  for (std::size_t i = 0; i < fs.size(); ++i) flags[i] = fs[i]->done();
  if (satisfied(fs, flags, when) || (timeout && *timeout == 0)) return flags;
  check_not_in_task("concurrent::wait()");

  auto w = std::make_shared<waiter>();
  for (std::size_t i = 0; i < fs.size(); ++i) {
    if (!flags[i]) fs[i]->add_waiter(w, i);
  }
  const double deadline = timeout ? now() + *timeout : 0;
  {
    std::unique_lock<std::mutex> lock(w->mutex);
    for (;;) {
      for (std::size_t i : w->finished) flags[i] = true;
      w->finished.clear();
      if (satisfied(fs, flags, when)) break;
      if (timeout) {
        double left = deadline - now();
        if (left <= 0) break;
        w->cv.wait_for(lock, std::chrono::duration<double>(left));
      } else {
        w->cv.wait(lock);
      }
    }
  }
  for (future_core* f : fs) f->remove_waiter(w.get());
  // A future may have finished after the last wake-up: report what is true now.
  for (std::size_t i = 0; i < fs.size(); ++i) flags[i] = flags[i] || fs[i]->done();
  return flags;
}

completion_queue::completion_queue(std::vector<std::shared_ptr<future_core>> fs, std::optional<double> timeout)
    : fs_(std::move(fs)), waiter_(std::make_shared<waiter>()) {
  timeout = effective_timeout(timeout);
  if (timeout) deadline_ = now() + *timeout;
  for (std::size_t i = 0; i < fs_.size(); ++i) fs_[i]->add_waiter(waiter_, i);
}

completion_queue::~completion_queue() {
  for (auto& f : fs_) f->remove_waiter(waiter_.get());
}

std::optional<std::size_t> completion_queue::next() {
  if (handed_out_ == fs_.size()) return std::nullopt;
  std::unique_lock<std::mutex> lock(waiter_->mutex);
  if (waiter_->finished.size() <= handed_out_) {
    lock.unlock();
    check_not_in_task("concurrent::as_completed()");
    lock.lock();
  }
  auto ready = [this] { return waiter_->finished.size() > handed_out_; };
  if (!deadline_) {
    waiter_->cv.wait(lock, ready);
  } else {
    double left = *deadline_ - now();
    if (!waiter_->cv.wait_for(lock, std::chrono::duration<double>(left > 0 ? left : 0), ready)) {
      throw TimeoutError(std::to_string(fs_.size() - handed_out_) + " (of " + std::to_string(fs_.size()) +
                         ") futures unfinished");
    }
  }
  return waiter_->finished[handed_out_++];
}

}  // namespace greenlet::concurrent::detail
