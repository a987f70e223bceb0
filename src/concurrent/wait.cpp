// wait.cpp: wait() and as_completed(). Both register one waiter on every
// pending future; a finishing future pushes its index and, once the waiter's
// condition holds, wakes it.
#include "greenlet/concurrent/wait.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <unordered_set>

#include "concurrent/timeouts.hpp"

namespace greenlet::concurrent::detail {

namespace {

using clock = std::chrono::steady_clock;

double now() { return std::chrono::duration<double>(clock::now().time_since_epoch()).count(); }

std::atomic<std::size_t> examined_total{0};
std::atomic<std::size_t> wakeups_total{0};

// count adds one call's work to the totals once, on the way out, so that
// concurrent wait()s do not share a cache line per step.
struct count {
  std::size_t examined = 0;
  std::size_t wakeups = 0;
  count() = default;
  count(const count&) = delete;
  count& operator=(const count&) = delete;
  ~count() {
    examined_total.fetch_add(examined, std::memory_order_relaxed);
    wakeups_total.fetch_add(wakeups, std::memory_order_relaxed);
  }
};

// removing takes w off every future of fs however wait_indices() leaves
// (check_not_in_task() and add_waiter() may throw), so none outlives the call.
struct removing {
  const std::vector<future_core*>& fs;
  const waiter* w;
  ~removing() {
    for (future_core* f : fs) f->remove_waiter(w);
  }
};

}  // namespace

std::vector<bool> drop_repeats(std::vector<future_core*>& fs) {
  // Few futures: compare pairs, allocating nothing when none repeats (the
  // common case). Many: a hash set, so that N futures cost O(N).
  constexpr std::size_t pairwise_limit = 16;
  std::vector<bool> repeated;
  auto mark = [&](std::size_t i) {
    if (repeated.empty()) repeated.resize(fs.size());
    repeated[i] = true;
  };
  if (fs.size() <= pairwise_limit) {
    for (std::size_t i = 1; i < fs.size(); ++i) {
      const auto here = fs.begin() + static_cast<std::ptrdiff_t>(i);
      if (std::find(fs.begin(), here, fs[i]) != here) mark(i);
    }
  } else {
    std::unordered_set<const future_core*> seen;
    seen.reserve(fs.size());
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (!seen.insert(fs[i]).second) mark(i);
    }
  }
  if (!repeated.empty()) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (!repeated[i]) fs[kept++] = fs[i];
    }
    fs.resize(kept);
  }
  return repeated;
}

wait_counters wait_counters_now() noexcept {
  return {examined_total.load(std::memory_order_relaxed), wakeups_total.load(std::memory_order_relaxed)};
}

// Python's wait() scans the futures once, then installs a waiter that counts
// completions (_FirstCompletedWaiter, _AllCompletedWaiter) and is set only
// when its condition holds. The same here: one scan, then each completion is
// O(1) in the finishing thread (waiter::notify), and this thread wakes once.
// Cancelled futures count as done, never as raised, for FIRST_EXCEPTION.
std::vector<bool> wait_indices(const std::vector<future_core*>& fs, std::optional<double> timeout, return_when when) {
  const double seconds = wait_seconds(timeout);
  count work;
  std::vector<bool> flags(fs.size());
  std::size_t pending = 0;
  bool raised = false;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    ++work.examined;
    flags[i] = fs[i]->done();
    if (!flags[i]) {
      ++pending;
    } else if (when == return_when::FIRST_EXCEPTION && !raised) {
      raised = fs[i]->raised();
    }
  }
  // Futures may finish while wait() looks at them and after its condition
  // held: report what is true on the way out. Else the one scan could list as
  // not done a future that finished before another it lists as done (the
  // scan, unlike Python's, does not hold every future's lock at once).
  auto report_now = [&] {
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (flags[i]) continue;
      ++work.examined;
      flags[i] = fs[i]->done();
    }
  };
  const bool holds = pending == 0 || (when == return_when::FIRST_COMPLETED && pending < fs.size()) || raised;
  if (holds || seconds == 0) {
    report_now();
    return flags;
  }
  check_not_in_task("concurrent::wait()");

  auto w = std::make_shared<waiter>();
  // FIRST_COMPLETED: the first completion; otherwise all of the pending ones
  // (wait() gives each future once: see drop_repeats()), or for FIRST_EXCEPTION
  // the first to raise. A future finishing after the scan but before its
  // add_waiter() notifies at once from add_waiter(), so it is counted too.
  w->wake_after = when == return_when::FIRST_COMPLETED ? 1 : pending;
  w->wake_on_raise = when == return_when::FIRST_EXCEPTION;
  w->finished.reserve(pending);  // notify() then never allocates
  {
    removing guard{fs, w.get()};
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (!flags[i]) fs[i]->add_waiter(w, i);
    }
    std::unique_lock<std::mutex> lock(w->mutex);
    auto ready = [&] {
      ++work.wakeups;
      return w->ready();
    };
    if (std::isinf(seconds)) {
      w->cv.wait(lock, ready);
    } else {
      w->cv.wait_for(lock, std::chrono::duration<double>(seconds), ready);
    }
    for (std::size_t i : w->finished) {
      ++work.examined;
      flags[i] = true;
    }
    --work.wakeups;  // the first check was not a wake-up
  }
  report_now();
  return flags;
}

completion_queue::completion_queue(std::vector<std::shared_ptr<future_core>> fs, std::optional<double> timeout)
    : fs_(std::move(fs)), waiter_(std::make_shared<waiter>()) {
  const double seconds = wait_seconds(timeout);
  if (!std::isinf(seconds)) deadline_ = now() + seconds;
  waiter_->finished.reserve(fs_.size());  // notify() then never allocates
  for (std::size_t i = 0; i < fs_.size(); ++i) fs_[i]->add_waiter(waiter_, i);
}

completion_queue::~completion_queue() {
  for (auto& f : fs_) {
    if (f) f->remove_waiter(waiter_.get());  // null: handed out, done, the waiter long gone from it
  }
}

std::optional<std::size_t> completion_queue::next() {
  if (handed_out_ == fs_.size()) return std::nullopt;
  std::unique_lock<std::mutex> lock(waiter_->mutex);
  if (waiter_->finished.size() <= handed_out_) {
    lock.unlock();
    check_not_in_task("concurrent::as_completed()");
    lock.lock();
  }
  std::size_t checks = 0;
  auto ready = [this, &checks] {
    ++checks;
    return waiter_->finished.size() > handed_out_;
  };
  bool got = true;
  if (!deadline_) {
    waiter_->cv.wait(lock, ready);
  } else {
    double left = *deadline_ - now();
    got = waiter_->cv.wait_for(lock, std::chrono::duration<double>(left > 0 ? left : 0), ready);
  }
  wakeups_total.fetch_add(checks - 1, std::memory_order_relaxed);
  if (!got) {
    throw TimeoutError(std::to_string(fs_.size() - handed_out_) + " (of " + std::to_string(fs_.size()) +
                       ") futures unfinished");
  }
  const std::size_t index = waiter_->finished[handed_out_++];
  lock.unlock();
  // Done, so it dropped its waiters (this one included) as it finished.
  fs_[index].reset();
  return index;
}

}  // namespace greenlet::concurrent::detail
