// aiter_test.cpp: asynchronous iteration (aiter, anext) and async_generator.
// Cases follow CPython's Lib/test/test_asyncgen.py (AsyncGenAsyncioTest)
// and test_coroutines.py (CoroAsyncIOCompatTest / async for); each names
// its source where there is one.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::Guard;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using AiterTests = greenlet_test::GreenletTest;
using AsyncGenTests = greenlet_test::GreenletTest;
using Ints = std::vector<int>;
using Strings = std::vector<std::string>;

// An iterator whose anext() awaits and returns std::optional.
struct Countdown {
  int n;
  std::optional<int> anext() {
    asyncio::sleep(0.1);
    if (n == 0) return std::nullopt;
    return n--;
  }
};

// An iterator whose anext() throws StopAsyncIteration (the seed's Reader).
struct Throwing {
  int count = 0;
  Throwing& aiter() { return *this; }
  int anext() {
    asyncio::sleep(0);
    if (++count == 4) throw asyncio::StopAsyncIteration();
    return count;
  }
};

// An iterable whose aiter() makes a new iterator each time.
struct Iterable {
  int n;
  Countdown aiter() const { return Countdown{n}; }
};

// What aiter() takes, checked at compile time (an object without anext()
// failed deep inside aiter_range with a cascade of errors; it is now one
// error naming the missing anext()).
struct NoAnext {
  std::optional<int> readline();
};
struct AiterOfNoAnext {
  NoAnext aiter();
};
static_assert(asyncio::async_iterable<Countdown&>);
static_assert(asyncio::async_iterable<Countdown>);  // a temporary, kept by the range
static_assert(asyncio::async_iterable<Throwing&>);
static_assert(asyncio::async_iterable<const Iterable&>);  // through aiter()
static_assert(asyncio::async_iterable<asyncio::async_generator<int>&>);
static_assert(!asyncio::async_iterable<NoAnext&>);
static_assert(!asyncio::async_iterable<AiterOfNoAnext&>);
static_assert(!asyncio::async_iterable<const Countdown&>);  // anext() is not const
static_assert(!asyncio::async_iterator<NoAnext>);

// test_coroutines.py test_for_1 (async for over __anext__ returning values).
TEST_F(AiterTests, optional_anext) {
  Ints got = asyncio::run(
      [] {
        Countdown c{3};
        Ints out;
        for (int i : asyncio::aiter(c)) out.push_back(i);
        return out;
      },
      virtual_time());
  EXPECT_EQ(got, (Ints{3, 2, 1}));
}

// The seed's Reader: anext() raising StopAsyncIteration, through aiter().
TEST_F(AiterTests, stop_async_iteration) {
  Ints got = asyncio::run([] {
    Throwing t;
    Ints out;
    for (int i : asyncio::aiter(t)) out.push_back(i);
    return out;
  });
  EXPECT_EQ(got, (Ints{1, 2, 3}));
}

// __aiter__ returning a new iterator; a temporary source is kept alive.
TEST_F(AiterTests, aiter_returning_new_iterator_and_temporary) {
  Ints got = asyncio::run(
      [] {
        Ints out;
        Iterable it{2};
        for (int i : asyncio::aiter(it)) out.push_back(i);
        for (int i : asyncio::aiter(Iterable{1})) out.push_back(i);
        for (int i : asyncio::aiter(Countdown{2})) out.push_back(i);
        return out;
      },
      virtual_time());
  EXPECT_EQ(got, (Ints{2, 1, 1, 2, 1}));
}

// Each step suspends the iterating task: another task interleaves.
TEST_F(AiterTests, iteration_suspends) {
  Strings log;
  asyncio::run(
      [&] {
        auto other = asyncio::create_task([&] {
          for (int i = 0; i < 2; ++i) {
            asyncio::sleep(0.1);
            log.push_back("other");
          }
        });
        asyncio::sleep(0.05);
        for (int i : asyncio::aiter(Countdown{2})) log.push_back(std::to_string(i));
        asyncio::await(other);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"other", "2", "other", "1"}));
}

// anext(x) normalizes both protocols to std::optional.
TEST_F(AiterTests, anext_function) {
  asyncio::run(
      [] {
        Throwing t;
        EXPECT_EQ(asyncio::anext(t), 1);
        Countdown c{0};
        EXPECT_EQ(asyncio::anext(c), std::nullopt);
      },
      virtual_time());
}

// An exception from anext() other than StopAsyncIteration passes through.
TEST_F(AiterTests, exception_passes_through) {
  struct Failing {
    std::optional<int> anext() { throw TestError("read failed"); }
  };
  EXPECT_THROW(asyncio::run([] {
                 for (int i : asyncio::aiter(Failing{})) (void)i;
               }),
               TestError);
}

// ------------------------------------------------------ async_generator

// test_asyncgen.py test_async_gen_asyncio_01: a body that awaits and
// yields, consumed with async for.
TEST_F(AsyncGenTests, test_async_gen_asyncio_01) {
  Ints got = asyncio::run(
      [] {
        asyncio::async_generator<int> gen([](auto& co) {
          co.yield(1);
          asyncio::sleep(0.01);
          co.yield(2);
          asyncio::sleep(0.01);
        });
        Ints out;
        for (int i : asyncio::aiter(gen)) out.push_back(i);
        EXPECT_TRUE(gen.finished());
        EXPECT_EQ(gen.anext(), std::nullopt);  // stays exhausted
        return out;
      },
      virtual_time());
  EXPECT_EQ(got, (Ints{1, 2}));
}

// The body starts on the first anext(), not before, and runs only as far
// as each yield.
TEST_F(AsyncGenTests, lazy_start_and_step) {
  Strings log;
  asyncio::run([&] {
    asyncio::async_generator<int> gen([&](auto& co) {
      log.push_back("start");
      co.yield(1);
      log.push_back("after 1");
      co.yield(2);
      log.push_back("end");
    });
    asyncio::sleep(0);
    log.push_back("first anext");
    EXPECT_EQ(gen.anext(), 1);
    log.push_back("got 1");
    EXPECT_EQ(gen.anext(), 2);
    EXPECT_EQ(gen.anext(), std::nullopt);
  });
  EXPECT_EQ(log, (Strings{"first anext", "start", "got 1", "after 1", "end"}));
}

// Move-only values.
TEST_F(AsyncGenTests, move_only_values) {
  int sum = asyncio::run([] {
    int total = 0;
    for (auto& p : asyncio::aiter(asyncio::async_generator<std::unique_ptr<int>>([](auto& co) {
           for (int i = 1; i <= 3; ++i) co.yield(std::make_unique<int>(i));
         }))) {
      std::unique_ptr<int> mine = std::move(p);
      total += *mine;
    }
    return total;
  });
  EXPECT_EQ(sum, 6);
}

// test_asyncgen.py test_async_gen_asyncio_03 (exception in the body): it
// reaches the anext() that resumed it; the generator is then finished.
TEST_F(AsyncGenTests, exception_in_body) {
  asyncio::run([] {
    asyncio::async_generator<int> gen([](auto& co) {
      co.yield(1);
      throw TestError("boom");
    });
    EXPECT_EQ(gen.anext(), 1);
    EXPECT_THROW(gen.anext(), TestError);
    EXPECT_TRUE(gen.finished());
    EXPECT_EQ(gen.anext(), std::nullopt);
  });
}

// test_asyncgen.py test_async_gen_asyncio_anext_stopiteration (PEP 479 for
// async generators): StopAsyncIteration escaping the body is RuntimeError.
TEST_F(AsyncGenTests, stop_async_iteration_in_body_is_runtime_error) {
  asyncio::run([] {
    asyncio::async_generator<int> gen([](auto&) { throw asyncio::StopAsyncIteration(); });
    EXPECT_THROW(gen.anext(), asyncio::RuntimeError);
  });
}

// test_asyncgen.py test_async_gen_asyncio_aclose_06 / _07: aclose() raises
// GeneratorExit at the yield; the body's cleanup may await.
TEST_F(AsyncGenTests, aclose_runs_cleanup_that_awaits) {
  Strings log;
  asyncio::run(
      [&] {
        asyncio::async_generator<int> gen([&](auto& co) {
          struct cleanup {
            Strings& log;
            ~cleanup() {
              asyncio::sleep(0.01);  // a destructor that awaits
              log.push_back("cleaned");
            }
          } c{log};
          co.yield(1);
          co.yield(2);
        });
        EXPECT_EQ(gen.anext(), 1);
        gen.aclose();
        log.push_back("closed");
        EXPECT_TRUE(gen.finished());
        gen.aclose();  // nothing to do
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"cleaned", "closed"}));
}

// test_asyncgen.py test_async_gen_asyncio_aclose_10 (ignoring
// GeneratorExit): yielding while being closed is a RuntimeError.
TEST_F(AsyncGenTests, aclose_yield_is_runtime_error) {
  asyncio::run([] {
    asyncio::async_generator<int> gen([](auto& co) {
      try {
        co.yield(1);
      } catch (const greenlet::GeneratorExit&) {
        co.yield(2);
      }
    });
    EXPECT_EQ(gen.anext(), 1);
    EXPECT_THROW(gen.aclose(), asyncio::RuntimeError);
    EXPECT_TRUE(gen.finished());
  });
}

// aclose() of an unstarted generator finishes it without running the body.
TEST_F(AsyncGenTests, aclose_unstarted) {
  bool ran = false;
  asyncio::run([&] {
    asyncio::async_generator<int> gen([&](auto& co) {
      ran = true;
      co.yield(1);
    });
    gen.aclose();
    EXPECT_EQ(gen.anext(), std::nullopt);
  });
  EXPECT_FALSE(ran);
}

// Breaking out of async for and dropping the generator finalizes it: its
// body unwinds in its own task (GeneratorExit at the yield), as asyncio's
// finalizer hook schedules aclose().
TEST_F(AsyncGenTests, destroyed_while_suspended_unwinds_body) {
  Strings log;
  asyncio::run([&] {
    {
      asyncio::async_generator<int> gen([&](auto& co) {
        Guard g{log, "body"};
        for (int i = 0;; ++i) co.yield(i);
      });
      for (int i : asyncio::aiter(gen)) {
        if (i == 2) break;
      }
    }
    log.push_back("dropped");
    asyncio::sleep(0);
    asyncio::sleep(0);
  });
  EXPECT_EQ(log, (Strings{"dropped", "~body"}));
}

// test_asyncgen.py test_async_gen_asyncio_cancel (the consumer task is
// cancelled while the body awaits): the body gets CancelledError there.
TEST_F(AsyncGenTests, consumer_cancelled_while_body_awaits) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  asyncio::async_generator<int> gen([&](auto& co) {
    co.yield(1);
    try {
      asyncio::sleep(10);
    } catch (const asyncio::CancelledError&) {
      log.push_back("body cancelled");
      throw;
    }
    co.yield(2);
  });
  auto consumer = loop.create_task([&] {
    for (int i : asyncio::aiter(gen)) log.push_back(std::to_string(i));
  });
  loop.call_later(1, [&] { consumer.cancel(); });
  EXPECT_THROW(loop.run_until_complete(consumer), asyncio::CancelledError);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"1", "body cancelled"}));
  EXPECT_TRUE(gen.finished());
}

// test_asyncgen.py test_asyncgen_nonstarted_hooks_are_cancellable's
// sibling: two tasks in anext() at once is "already running".
TEST_F(AsyncGenTests, concurrent_anext_is_runtime_error) {
  asyncio::run(
      [] {
        asyncio::async_generator<int> gen([](auto& co) {
          asyncio::sleep(0.01);
          co.yield(1);
        });
        auto first = asyncio::create_task([&] { return gen.anext(); });
        asyncio::sleep(0);
        EXPECT_THROW(gen.anext(), asyncio::RuntimeError);
        EXPECT_EQ(asyncio::await(first), 1);
      },
      virtual_time());
}

// A generator that ends normally after a yield: the next anext() is
// nullopt and the body's locals are gone.
TEST_F(AsyncGenTests, return_after_yields) {
  Strings log;
  asyncio::run([&] {
    asyncio::async_generator<std::string> gen([&](auto& co) {
      Guard g{log, "body"};
      co.yield("a");
    });
    EXPECT_EQ(gen.anext(), "a");
    EXPECT_EQ(gen.anext(), std::nullopt);
    log.push_back("end");
  });
  EXPECT_EQ(log, (Strings{"~body", "end"}));
}

}  // namespace
