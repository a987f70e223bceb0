// The loop's default executor (run_in_executor(nullptr), to_thread()):
// replaced by set_default_executor() while a call submits to it.
#include <atomic>
#include <memory>
#include <utility>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

class DefaultExecutor : public greenlet_test::GreenletTest {};

// recording_executor runs each call inline and says whether one arrived after the last
// shared_ptr to it was dropped. The test owns its storage (the deleter only records), so
// "used after its last reference" is checked without touching freed memory.
class recording_executor final : public concurrent::Executor {
 public:
  void shutdown(bool, bool) override {}
  std::atomic<bool> released{false};
  std::atomic<int> calls_after_release{0};
  std::atomic<int> calls{0};

 protected:
  void enqueue(std::unique_ptr<concurrent::detail::work_item> item) override {
    if (released) ++calls_after_release;
    ++calls;
    item.release()->run();
  }
};

// replacing_call is a function whose first move (inside run_in_executor(), after it looked
// up the default executor and before it submits) replaces the loop's default executor, as
// set_default_executor() on another thread may at that moment.
struct replacing_call {
  asyncio::event_loop* loop;
  std::shared_ptr<concurrent::Executor> replacement;
  replacing_call(asyncio::event_loop* l, std::shared_ptr<concurrent::Executor> r)
      : loop(l), replacement(std::move(r)) {}
  replacing_call(replacing_call&& other) noexcept : loop(other.loop), replacement(std::move(other.replacement)) {
    if (replacement) asyncio::set_default_executor(*loop, std::exchange(replacement, nullptr));
  }
  int operator()() const { return 7; }
};

// run_in_executor(nullptr) used the default executor through a raw reference taken under the
// registry's lock: set_default_executor() dropping the registry's (last) reference meanwhile
// freed the executor the call then submitted to (ASan: heap-use-after-free in
// Executor::detail_enqueue). The call now holds its own reference until the job is in.
TEST_F(DefaultExecutor, ReplacedWhileSubmittingStaysAliveUntilTheJobIsIn) {
  recording_executor storage;
  auto first = std::shared_ptr<concurrent::Executor>(&storage, [](concurrent::Executor* e) {
    static_cast<recording_executor*>(e)->released = true;  // storage is the test's: only record
  });
  recording_executor second_storage;
  auto second = std::shared_ptr<concurrent::Executor>(&second_storage, [](concurrent::Executor*) {});
  asyncio::event_loop loop;
  asyncio::set_default_executor(loop, std::move(first));  // the registry holds its only reference
  int got = loop.run_until_complete(
      [&] { return asyncio::await(loop.run_in_executor(nullptr, replacing_call(&loop, second))); });
  EXPECT_EQ(got, 7);
  EXPECT_EQ(storage.calls.load(), 1);
  EXPECT_EQ(storage.calls_after_release.load(), 0) << "the default executor was used after its last reference went";
  EXPECT_TRUE(storage.released.load());
  loop.close();
}

}  // namespace
