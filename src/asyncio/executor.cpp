// executor.cpp: the default executor of each loop, for run_in_executor(nullptr).
// The registry is keyed by loop and guarded by a mutex: loops on several
// threads make and retire their executors concurrently.
#include "greenlet/asyncio/executor.hpp"

#include <functional>
#include <map>
#include <thread>

namespace greenlet::asyncio::detail {

namespace {

struct registry {
  std::mutex mutex;
  // A std::map holds no memory while empty: no allocation outlives the
  // loops that use it.
  std::map<const loop_core*, std::shared_ptr<::greenlet::concurrent::Executor>> executors;
};

registry& executors() {
  static registry instance;
  return instance;
}

std::shared_ptr<::greenlet::concurrent::Executor> take(const loop_core* loop) {
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.executors.find(loop);
  if (it == r.executors.end()) return nullptr;
  auto executor = std::move(it->second);
  r.executors.erase(it);
  return executor;
}

}  // namespace

bool on_loop_thread(const loop_core* loop) noexcept {
  // loop_core records its owner as this hash of the thread id.
  return loop->owner_thread_id == std::hash<std::thread::id>()(std::this_thread::get_id());
}

::greenlet::concurrent::Executor& default_executor(loop_core* loop) {
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& slot = r.executors[loop];
  if (!slot) slot = std::make_shared<::greenlet::concurrent::ThreadPoolExecutor>(0, "asyncio");
  return *slot;
}

void shutdown_default_executor(loop_core* loop) noexcept {
  auto executor = take(loop);
  if (!executor) return;
  try {
    executor->shutdown(true);
  } catch (...) {
    loop->report({"error while shutting down the default executor", std::current_exception(), ""});
  }
}

}  // namespace greenlet::asyncio::detail

namespace greenlet::asyncio {

void set_default_executor(event_loop& loop, std::shared_ptr<::greenlet::concurrent::Executor> executor) {
  auto previous = detail::take(loop.core());
  {
    detail::registry& r = detail::executors();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.executors[loop.core()] = std::move(executor);
  }
  // Python drops the old one without shutting it down; its owner may still use it.
}

void shutdown_default_executor(event_loop& loop) {
  auto executor = detail::take(loop.core());
  if (executor) executor->shutdown(true);
}

}  // namespace greenlet::asyncio
