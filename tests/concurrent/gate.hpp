// gate.hpp: a one-shot gate for the concurrent tests: workers wait() until
// the test release()s them, so a test controls what runs when.
#pragma once

#include <condition_variable>
#include <mutex>

namespace concurrent_test {

struct gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      open = true;
    }
    cv.notify_all();
  }
};

}  // namespace concurrent_test
