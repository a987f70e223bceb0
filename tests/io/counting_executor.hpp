// counting_executor.hpp: a thread pool that counts the jobs given to it, so that a name-lookup test
// can see whether a lookup went to the default executor (a name) or not (a numeric host, a loop's
// resolver).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

#include <greenlet/asyncio/executor.hpp>

namespace io_test {

class counting_executor : public greenlet::concurrent::ThreadPoolExecutor {
 public:
  explicit counting_executor(std::size_t workers = 1) : ThreadPoolExecutor(workers, "lookup-test") {}
  std::atomic<int> submitted{0};

 protected:
  void enqueue(std::unique_ptr<greenlet::concurrent::detail::work_item> item) override {
    ++submitted;
    ThreadPoolExecutor::enqueue(std::move(item));
  }
};

}  // namespace io_test
