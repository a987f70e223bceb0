// The loop's default executor (run_in_executor(nullptr), to_thread()):
// replaced by set_default_executor() while a call submits to it, and used
// after shutdown_default_executor().
#include <atomic>
#include <memory>
#include <string>
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

// expect_refused_after_shutdown(call) checks that call throws asyncio's "Executor shutdown has
// been called" RuntimeError.
template <class F>
void expect_refused_after_shutdown(F call, const char* what) {
  try {
    call();
    ADD_FAILURE() << what << " was accepted after shutdown_default_executor()";
  } catch (const concurrent::RuntimeError& e) {
    EXPECT_EQ(e.condition(), concurrent::concurrent_errc::shutdown) << what;
    EXPECT_NE(std::string(e.what()).find("Executor shutdown has been called"), std::string::npos)
        << what << ": " << e.what();
  }
}

// After shutdown_default_executor(), run_in_executor(nullptr) and to_thread()
// raise asyncio's RuntimeError('Executor shutdown has been called'), even
// once another default executor is set (they silently made a new pool). A
// second shutdown_default_executor() does nothing. A new loop starts afresh.
TEST_F(DefaultExecutor, RunInExecutorAfterShutdownIsRefused) {
  std::atomic<int> ran{0};
  {
    asyncio::event_loop loop;
    EXPECT_EQ(loop.run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 1; })); }), 1);
    asyncio::shutdown_default_executor(loop);
    loop.run_until_complete([&] {
      expect_refused_after_shutdown([&] { loop.run_in_executor(nullptr, [&] { ++ran; }); }, "run_in_executor(nullptr)");
      expect_refused_after_shutdown([&] { asyncio::to_thread([&] { ++ran; }); }, "to_thread()");
      asyncio::set_default_executor(loop, std::make_shared<concurrent::ThreadPoolExecutor>(1));
      expect_refused_after_shutdown([&] { loop.run_in_executor(nullptr, [&] { ++ran; }); },
                                    "run_in_executor(nullptr) with a new default executor");
    });
    asyncio::shutdown_default_executor(loop);  // again: nothing to do
    loop.close();
  }
  EXPECT_EQ(ran.load(), 0);
  asyncio::event_loop fresh;
  EXPECT_EQ(fresh.run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 3; })); }), 3);
  fresh.close();
}

// The same for a loop that never had a default executor: asyncio sets the flag regardless.
TEST_F(DefaultExecutor, RunInExecutorAfterShutdownWithoutAnExecutorIsRefused) {
  asyncio::event_loop loop;
  asyncio::shutdown_default_executor(loop);
  loop.run_until_complete([&] {
    expect_refused_after_shutdown([&] { loop.run_in_executor(nullptr, [] {}); }, "run_in_executor(nullptr)");
  });
  loop.close();
}

}  // namespace
