// Stress: 8 loops on 8 threads hand callbacks to each other through
// call_soon_threadsafe() and run_coroutine_threadsafe(); every one must be
// delivered exactly once. GREENLET_STRESS_MESSAGES overrides the total.
#include <atomic>
#include <cstdlib>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

constexpr int kLoops = 8;

long message_count() {
  const char* text = std::getenv("GREENLET_STRESS_MESSAGES");
  return text != nullptr ? std::atol(text) : 1'000'000;
}

class Stress : public greenlet_test::GreenletTest {};

TEST_F(Stress, EightLoopsHandOffCallbacksExactlyOnce) {
  const long total = message_count();
  const long per_loop = total / kLoops;
  const long sent_total = per_loop * kLoops;
  std::vector<std::shared_ptr<asyncio::event_loop>> loops(kLoops);
  std::unique_ptr<std::atomic<unsigned char>[]> counts(new std::atomic<unsigned char>[sent_total]);
  for (long i = 0; i < sent_total; ++i) counts[i].store(0, std::memory_order_relaxed);
  // Odd ids go through run_coroutine_threadsafe; their futures are checked.
  std::vector<concurrent::Future<long>> futures(static_cast<std::size_t>(sent_total));
  std::atomic<long> received{0};
  std::latch ready(kLoops);

  auto deliver = [&](long id) {
    counts[id].fetch_add(1, std::memory_order_relaxed);
    if (received.fetch_add(1, std::memory_order_acq_rel) + 1 == sent_total) {
      for (auto& l : loops) l->call_soon_threadsafe([l = l.get()] { l->stop(); });
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < kLoops; ++i) {
    threads.emplace_back([&, i] {
      asyncio::event_loop::options opts;
      opts.task_stack.guard_page = false;
      loops[i] = asyncio::new_event_loop(opts);
      asyncio::event_loop& loop = *loops[i];
      ready.arrive_and_wait();  // every loop exists before anyone sends
      asyncio::event_loop::external_work_guard keep(loop);
      auto sender = loop.create_task([&, i] {
        for (long k = 0; k < per_loop; ++k) {
          const long id = i * per_loop + k;
          asyncio::event_loop& dest = *loops[(i + 1 + k % (kLoops - 1)) % kLoops];
          if (id % 2 == 0) {
            dest.call_soon_threadsafe([&deliver, id] { deliver(id); });
          } else {
            futures[static_cast<std::size_t>(id)] = asyncio::run_coroutine_threadsafe(
                [&deliver, id] {
                  deliver(id);
                  return id;
                },
                dest);
          }
          if (k % 512 == 511) asyncio::sleep(0);  // let this loop serve its inbox
        }
      });
      loop.run_forever();
      EXPECT_TRUE(sender.done());
      loop.close();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(received.load(), sent_total);
  long wrong = 0;
  for (long id = 0; id < sent_total; ++id) wrong += counts[id].load() != 1 ? 1 : 0;
  EXPECT_EQ(wrong, 0) << "messages not delivered exactly once";
  long bad_results = 0;
  for (long id = 1; id < sent_total; id += 2) {
    auto& f = futures[static_cast<std::size_t>(id)];
    bad_results += (f.done() && !f.cancelled() && f.result(0) == id) ? 0 : 1;
  }
  EXPECT_EQ(bad_results, 0) << "run_coroutine_threadsafe futures without their result";
  loops.clear();
}

}  // namespace
