// future.cpp: concurrent::Future's shared state, the error category and the
// blocking-call guard.
#include "greenlet/concurrent/future.hpp"

#include <cxxabi.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "concurrent/timeouts.hpp"
#include "greenlet/detail/future_state.hpp"
#include "greenlet/detail/loop_core.hpp"

namespace greenlet::concurrent {

namespace {

class concurrent_category : public std::error_category {
 public:
  const char* name() const noexcept override { return "greenlet.concurrent"; }
  std::string message(int code) const override {
    switch (static_cast<concurrent_errc>(code)) {
      case concurrent_errc::shutdown: return "cannot schedule new futures after shutdown";
      case concurrent_errc::broken_pool: return "the pool is broken";
      case concurrent_errc::blocking_in_loop: return "blocking call inside an event-loop task";
      case concurrent_errc::remote_error: return "the function raised in a worker process";
      case concurrent_errc::unknown_function: return "no process function of that name";
      case concurrent_errc::unexpected_state: return "Future in unexpected state";
    }
    return "unknown concurrent error";
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const concurrent_category instance;
  return instance;
}

namespace detail {

void waiter::notify(std::size_t index, bool index_raised) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    finished.push_back(index);
    raised = raised || index_raised;
    wake = ready();
  }
  if (wake) cv.notify_all();
}

void check_not_in_task(const char* what) {
  ::greenlet::asyncio::detail::loop_core* loop = ::greenlet::asyncio::detail::running_loop();
  if (loop != nullptr && loop->current_task != nullptr) {
    throw RuntimeError(concurrent_errc::blocking_in_loop,
                       std::string(what) +
                           " would block the event loop's thread from inside a task: await "
                           "asyncio::wrap_future(f), or run the blocking code with "
                           "loop.run_in_executor() / asyncio::to_thread()");
  }
}

std::string demangle(const char* mangled) {
  int status = 0;
  char* text = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  const std::string full = status == 0 && text != nullptr ? text : mangled;
  std::free(text);
  // Python shows the class name alone: drop namespaces and enclosing classes
  // (the last "::" outside <...> and "(anonymous namespace)") and template
  // arguments: ns::Outer<a::B>::Inner<int> is Inner.
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i < full.size(); ++i) {
    const char c = full[i];
    if (c == '<' || c == '(') {
      ++depth;
    } else if (c == '>' || c == ')') {
      --depth;
    } else if (depth == 0 && c == ':' && i + 1 < full.size() && full[i + 1] == ':') {
      start = i + 2;
      ++i;
    }
  }
  std::string name = full.substr(start);
  if (const std::size_t angle = name.find('<'); angle != std::string::npos) name.resize(angle);
  return name;
}

std::string describe_error(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return demangle(typeid(x).name()) + ": " + x.what();
  } catch (...) {
  }
  return ::greenlet::describe_exception(e);
}

namespace {

// report_callback_error(f) is Python's "exception calling callback for
// <Future ...>" log record, with the exception's class and message in place
// of its traceback. Called inside the catch block; throws nothing.
void report_callback_error(const future_core& f) noexcept {
  try {
    std::fprintf(stderr, "exception calling callback for %s\n%s\n", f.repr().c_str(),
                 describe_error(std::current_exception()).c_str());
  } catch (...) {
    std::fputs("exception calling callback for a concurrent future (and no memory to describe it)\n", stderr);
  }
}

}  // namespace

bool future_core::cancel() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (state_ == status::running || state_ == status::finished) return false;
  if (state_ == status::cancelled) return true;
  return finish(lock, status::cancelled);
}

bool future_core::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ == status::cancelled;
}

bool future_core::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ == status::running;
}

bool future_core::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ == status::cancelled || state_ == status::finished;
}

bool future_core::raised() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ == status::finished && error_ != nullptr;
}

bool future_core::set_running_or_notify_cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == status::cancelled) return false;
  if (state_ != status::pending) {
    // Python raises RuntimeError here, not InvalidStateError: an executor
    // calling it twice (or on a future someone else finished) is a bug.
    throw RuntimeError(concurrent_errc::unexpected_state,
                       std::string("Future in unexpected state: set_running_or_notify_cancel() on a ") +
                           (state_ == status::running ? "running" : "finished") + " future");
  }
  state_ = status::running;
  return true;
}

void future_core::set_exception(std::exception_ptr error) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (state_ == status::cancelled || state_ == status::finished) {
    throw ::greenlet::asyncio::InvalidStateError("set_exception() on a concurrent future that is already done");
  }
  error_ = std::move(error);
  finish(lock, status::finished);
}

bool future_core::finish(std::unique_lock<std::mutex>& lock, status new_status) {
  state_ = new_status;
  const bool raised = new_status == status::finished && error_ != nullptr;
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(callbacks_);
  std::vector<std::pair<std::shared_ptr<waiter>, std::size_t>> waiters;
  waiters.swap(waiters_);
  // Keep this state alive while its callbacks run, even if a callback drops
  // the last outside handle.
  std::shared_ptr<future_core> self = weak_from_this().lock();
  cv_.notify_all();
  lock.unlock();
  for (auto& [w, index] : waiters) w->notify(index, raised);
  for (auto& fn : callbacks) {
    try {
      fn();
    } catch (...) {
      report_callback_error(*this);
    }
  }
  return true;
}

bool future_core::wait_done(std::optional<double> timeout, const char* what) {
  const double seconds = wait_seconds(timeout);
  std::unique_lock<std::mutex> lock(mutex_);
  auto finished = [this] { return state_ == status::cancelled || state_ == status::finished; };
  if (finished()) return true;
  if (seconds == 0) return false;  // a poll never blocks
  lock.unlock();
  check_not_in_task(what);
  lock.lock();
  if (std::isinf(seconds)) {
    cv_.wait(lock, finished);
    return true;
  }
  return cv_.wait_for(lock, std::chrono::duration<double>(seconds), finished);
}

void future_core::wait_result(std::optional<double> timeout) {
  if (!wait_done(timeout, "concurrent::Future::result()")) throw TimeoutError();
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == status::cancelled) throw CancelledError();
  if (error_) std::rethrow_exception(error_);
}

std::exception_ptr future_core::exception(std::optional<double> timeout) {
  if (!wait_done(timeout, "concurrent::Future::exception()")) throw TimeoutError();
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == status::cancelled) throw CancelledError();
  return error_;
}

void future_core::add_done_callback(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ != status::cancelled && state_ != status::finished) {
      callbacks_.push_back(std::move(fn));
      return;
    }
  }
  try {
    fn();
  } catch (...) {
    report_callback_error(*this);
  }
}

void future_core::add_waiter(const std::shared_ptr<waiter>& w, std::size_t index) {
  bool raised = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ != status::cancelled && state_ != status::finished) {
      waiters_.emplace_back(w, index);
      return;
    }
    raised = state_ == status::finished && error_ != nullptr;
  }
  w->notify(index, raised);
}

void future_core::remove_waiter(const waiter* w) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(waiters_, [w](const auto& entry) { return entry.first.get() == w; });
}

std::string future_core::repr() const {
  std::ostringstream out;
  out << "<Future at " << ::greenlet::asyncio::detail::address_repr(this) << " state=";
  std::lock_guard<std::mutex> lock(mutex_);
  switch (state_) {
    case status::pending: out << "pending"; break;
    case status::running: out << "running"; break;
    case status::cancelled: out << "cancelled"; break;
    case status::finished:
      if (error_) {
        std::string raised = "exception";
        try {
          std::rethrow_exception(error_);
        } catch (const std::exception& e) {
          raised = demangle(typeid(e).name());
        } catch (...) {
        }
        out << "finished raised " << raised;
      } else {
        out << "finished returned " << result_type();
      }
      break;
  }
  out << ">";
  return out.str();
}

}  // namespace detail

}  // namespace greenlet::concurrent
