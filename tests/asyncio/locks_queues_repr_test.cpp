// locks_queues_repr_test.cpp: repr() of the locks and queues as CPython 3.12's asyncio prints them
// (people porting compare log lines). The CPython tests' assertions come first, method by method:
// test_locks.py's test_repr of each primitive (with its RGX_REPR, matched by rgx_extras()) and
// test_barrier; test_queues.py's test_repr, test_str and test_format. Python appends mock waiters
// to the private _waiters deque; here real tasks wait. The other Barrier tests' repr assertions are
// in cpython_locks_port_test.cpp, with the rest of those tests.
// Then whole lines, each with the Python it was checked against (3.12.1; 0x.. is the id).
#include <cstddef>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace locks_queues_repr_test {

using asyncio_test::virtual_time;

// run_in_task(fn) runs fn as IsolatedAsyncioTestCase runs a test: in a task of a fresh loop.
template <class F>
void run_in_task(F&& fn) {
  asyncio::run(std::forward<F>(fn), virtual_time());
}

// address_of(object) is the address as Python's hex(id(object)) and a repr print it ("0x7f..").
std::string address_of(const void* object) {
  std::ostringstream out;
  out << object;
  return out.str();
}

// rgx_extras(text) is test_locks.py's RGX_REPR.match(text).group('extras'), or "<no match>":
//   ^<(?P<class>.*?) object at (?P<address>.*?)\[(?P<extras>
//   (set|unset|locked|unlocked|filling|draining|resetting|broken)
//   (, value:\d)?(, waiters:\d+)?(, waiters:\d+\/\d+)?)\]>\Z
// Checked by hand rather than with <regex>, which GCC 12 warns about inside libstdc++ under the
// sanitizers. The extras hold no '[', so they start after the last one.
std::string rgx_extras(const std::string& text) {
  const std::string no_match = "<no match>";
  const std::size_t object_at = text.find(" object at ");
  const std::size_t open = text.rfind('[');
  if (text.rfind('<', 0) != 0 || object_at == std::string::npos || open == std::string::npos || open < object_at ||
      text.size() < open + 3 || text.compare(text.size() - 2, 2, "]>") != 0) {
    return no_match;
  }
  const std::string extras = text.substr(open + 1, text.size() - open - 3);
  std::size_t at = 0;
  const auto take = [&](const std::string& word) {
    if (extras.compare(at, word.size(), word) != 0) return false;
    at += word.size();
    return true;
  };
  // digits(min, max) takes min to max decimal digits.
  const auto digits = [&](std::size_t min, std::size_t max) {
    std::size_t n = 0;
    while (n < max && at < extras.size() && extras[at] >= '0' && extras[at] <= '9') ++at, ++n;
    return n >= min;
  };
  bool state = false;
  for (const char* word : {"set", "unset", "locked", "unlocked", "filling", "draining", "resetting", "broken"}) {
    // The first alternative that leads to a match: "unset" and "unlocked" are not prefixes of
    // another word, so the whole word must follow.
    const std::string w = word;
    if (extras.compare(0, w.size(), w) == 0 && (extras.size() == w.size() || extras[w.size()] == ',')) {
      at = w.size();
      state = true;
      break;
    }
  }
  if (!state) return no_match;
  const std::size_t before_value = at;
  if (take(", value:") && !digits(1, 1)) at = before_value;
  const std::size_t before_waiters = at;
  if (take(", waiters:") && !(digits(1, std::string::npos) && (at == extras.size() || extras[at] == ','))) {
    at = before_waiters;
  }
  const std::size_t before_parties = at;
  if (take(", waiters:") && !(digits(1, std::string::npos) && take("/") && digits(1, std::string::npos))) {
    at = before_parties;
  }
  return at == extras.size() ? extras : no_match;
}
bool rgx_match(const std::string& text) { return rgx_extras(text) != "<no match>"; }

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

using LocksQueuesRepr = greenlet_test::GreenletTest;

// ---- test_locks.py ----

// rgx_extras() accepts what RGX_REPR accepts, and no more (re.match checked in Python 3.12).
TEST_F(LocksQueuesRepr, RgxReprMatcherAgreesWithTheRegex) {
  EXPECT_EQ(rgx_extras("<asyncio.locks.Lock object at 0x7f [unlocked]>"), "unlocked");
  EXPECT_EQ(rgx_extras("<X object at 0x7f [locked, waiters:12]>"), "locked, waiters:12");
  EXPECT_EQ(rgx_extras("<X object at 0x7f [unlocked, value:3, waiters:2]>"), "unlocked, value:3, waiters:2");
  EXPECT_EQ(rgx_extras("<X object at 0x7f [filling, waiters:2/5]>"), "filling, waiters:2/5");
  EXPECT_EQ(rgx_extras("<X object at 0x7f [broken]>"), "broken");
  EXPECT_FALSE(rgx_match("<X object at 0x7f [open]>"));
  EXPECT_FALSE(rgx_match("<X object at 0x7f [unlocked, value:12]>"));
  EXPECT_FALSE(rgx_match("<X object at 0x7f [locked, waiters:]>"));
  EXPECT_FALSE(rgx_match("<X object at 0x7f [locked, waiters:1/]>"));
  EXPECT_FALSE(rgx_match("<X object at 0x7f [locked]"));
  EXPECT_FALSE(rgx_match("<X at 0x7f [locked]>"));
  EXPECT_FALSE(rgx_match("<Queue at 0x7f maxsize=0>"));
}

// LockTests.test_repr
TEST_F(LocksQueuesRepr, LockTests_test_repr) {
  asyncio::Lock lock;
  run_in_task([&] {
    EXPECT_TRUE(ends_with(lock.repr(), "[unlocked]>")) << lock.repr();
    EXPECT_TRUE(rgx_match(lock.repr())) << lock.repr();

    lock.acquire();
    EXPECT_TRUE(ends_with(lock.repr(), "[locked]>")) << lock.repr();
    EXPECT_TRUE(rgx_match(lock.repr())) << lock.repr();
    lock.release();
  });
}

// EventTests.test_repr (ev._waiters.append(mock.Mock()) is a task waiting on the cleared event)
TEST_F(LocksQueuesRepr, EventTests_test_repr) {
  asyncio::Event ev;
  run_in_task([&] {
    EXPECT_TRUE(ends_with(ev.repr(), "[unset]>")) << ev.repr();
    EXPECT_EQ(rgx_extras(ev.repr()), "unset");

    ev.set();
    EXPECT_TRUE(ends_with(ev.repr(), "[set]>")) << ev.repr();
    EXPECT_TRUE(rgx_match(ev.repr())) << ev.repr();

    ev.clear();
    auto waiter = asyncio::create_task([&] { ev.wait(); });
    asyncio::sleep(0);
    EXPECT_TRUE(contains(ev.repr(), "waiters:1")) << ev.repr();
    EXPECT_TRUE(rgx_match(ev.repr())) << ev.repr();
    ev.set();
    asyncio::await(waiter);
  });
}

// ConditionTests.test_repr (each mock waiter is a task in cond.wait(), which it entered while the
// condition was free)
TEST_F(LocksQueuesRepr, ConditionTests_test_repr) {
  asyncio::Condition cond;
  run_in_task([&] {
    EXPECT_TRUE(contains(cond.repr(), "unlocked")) << cond.repr();
    EXPECT_TRUE(rgx_match(cond.repr())) << cond.repr();

    cond.acquire();
    EXPECT_TRUE(contains(cond.repr(), "locked")) << cond.repr();
    cond.release();

    auto wait_on_cond = [&] {
      std::lock_guard guard(cond);
      cond.wait();
    };
    std::vector<asyncio::Task<>> waiters;
    waiters.push_back(asyncio::create_task(wait_on_cond));
    asyncio::sleep(0);
    cond.acquire();
    EXPECT_TRUE(contains(cond.repr(), "waiters:1")) << cond.repr();
    EXPECT_TRUE(rgx_match(cond.repr())) << cond.repr();
    cond.release();

    waiters.push_back(asyncio::create_task(wait_on_cond));
    asyncio::sleep(0);
    cond.acquire();
    EXPECT_TRUE(contains(cond.repr(), "waiters:2")) << cond.repr();
    EXPECT_TRUE(rgx_match(cond.repr())) << cond.repr();

    cond.notify_all();
    cond.release();
    asyncio::gather(waiters);
  });
}

// SemaphoreTests.test_repr (each mock waiter is a task in acquire())
TEST_F(LocksQueuesRepr, SemaphoreTests_test_repr) {
  asyncio::Semaphore sem;
  run_in_task([&] {
    EXPECT_TRUE(ends_with(sem.repr(), "[unlocked, value:1]>")) << sem.repr();
    EXPECT_TRUE(rgx_match(sem.repr())) << sem.repr();

    sem.acquire();
    EXPECT_TRUE(ends_with(sem.repr(), "[locked]>")) << sem.repr();
    EXPECT_FALSE(contains(sem.repr(), "waiters")) << sem.repr();
    EXPECT_TRUE(rgx_match(sem.repr())) << sem.repr();

    auto acquire_and_release = [&] { std::lock_guard guard(sem); };
    std::vector<asyncio::Task<>> waiters;
    waiters.push_back(asyncio::create_task(acquire_and_release));
    asyncio::sleep(0);
    EXPECT_TRUE(contains(sem.repr(), "waiters:1")) << sem.repr();
    EXPECT_TRUE(rgx_match(sem.repr())) << sem.repr();

    waiters.push_back(asyncio::create_task(acquire_and_release));
    asyncio::sleep(0);
    EXPECT_TRUE(contains(sem.repr(), "waiters:2")) << sem.repr();
    EXPECT_TRUE(rgx_match(sem.repr())) << sem.repr();

    sem.release();
    asyncio::gather(waiters);
  });
}

// BarrierTests.test_barrier's repr assertions ("filling"; `await barrier` does not compile here)
TEST_F(LocksQueuesRepr, BarrierTests_test_barrier) {
  asyncio::Barrier barrier(5);
  EXPECT_TRUE(contains(barrier.repr(), "filling")) << barrier.repr();
}

// BarrierTests.test_repr
TEST_F(LocksQueuesRepr, BarrierTests_test_repr) {
  const std::size_t n = 5;
  asyncio::Barrier barrier(n);
  run_in_task([&] {
    EXPECT_TRUE(rgx_match(barrier.repr())) << barrier.repr();
    EXPECT_TRUE(contains(barrier.repr(), "filling")) << barrier.repr();

    std::vector<asyncio::Task<>> waiters;
    auto wait = [&] { barrier.wait(); };
    const std::size_t incr = 2;
    for (std::size_t i = 0; i < incr; ++i) waiters.push_back(asyncio::create_task(wait));
    asyncio::sleep(0);
    EXPECT_TRUE(rgx_match(barrier.repr())) << barrier.repr();
    EXPECT_TRUE(contains(barrier.repr(), "waiters:" + std::to_string(incr) + "/" + std::to_string(n)))
        << barrier.repr();
    EXPECT_TRUE(contains(barrier.repr(), "filling")) << barrier.repr();

    // Create the missing waiters.
    for (std::size_t i = barrier.n_waiting(); i < barrier.parties(); ++i) waiters.push_back(asyncio::create_task(wait));
    asyncio::sleep(0);
    EXPECT_TRUE(rgx_match(barrier.repr())) << barrier.repr();
    EXPECT_TRUE(contains(barrier.repr(), "draining")) << barrier.repr();

    // Add a part of waiters, and reset.
    for (std::size_t i = 0; i < incr; ++i) waiters.push_back(asyncio::create_task(wait));
    asyncio::sleep(0);
    barrier.reset();
    EXPECT_TRUE(rgx_match(barrier.repr())) << barrier.repr();
    EXPECT_TRUE(contains(barrier.repr(), "resetting")) << barrier.repr();

    // Add a part of waiters again, and abort.
    for (std::size_t i = 0; i < incr; ++i) waiters.push_back(asyncio::create_task(wait));
    asyncio::sleep(0);
    barrier.abort();
    EXPECT_TRUE(rgx_match(barrier.repr())) << barrier.repr();
    EXPECT_TRUE(contains(barrier.repr(), "broken")) << barrier.repr();
    EXPECT_TRUE(barrier.broken());

    asyncio::gather(asyncio::return_exceptions, waiters);
  });
}

// ---- test_queues.py ----

// QueueBasicTests._test_repr_or_str(fn, expect_id)
template <class Fn>
void check_queue_repr_or_str(Fn fn, bool expect_id) {
  run_in_task([&] {
    {
      asyncio::Queue<int> q;
      EXPECT_EQ(fn(q).rfind("<Queue", 0), 0u) << fn(q);
      EXPECT_EQ(contains(fn(q), address_of(&q)), expect_id) << fn(q);
    }
    {
      // getters
      asyncio::Queue<int> q;
      auto getter = asyncio::create_task([&] { return q.get(); });
      asyncio::sleep(0);
      EXPECT_TRUE(contains(fn(q), "_getters[1]")) << fn(q);
      q.put_nowait(0);
      EXPECT_EQ(asyncio::await(getter), 0);
    }
    {
      // putters
      asyncio::Queue<int> q(1);
      q.put_nowait(1);
      auto putter = asyncio::create_task([&] { q.put(2); });
      asyncio::sleep(0);
      EXPECT_TRUE(contains(fn(q), "_putters[1]")) << fn(q);
      q.get_nowait();
      asyncio::await(putter);
      EXPECT_TRUE(putter.done());
    }
    asyncio::Queue<int> q;
    q.put_nowait(1);
    EXPECT_TRUE(contains(fn(q), "_queue=[1]")) << fn(q);
  });
}

// QueueBasicTests.test_repr
TEST_F(LocksQueuesRepr, QueueBasicTests_test_repr) {
  check_queue_repr_or_str([](const asyncio::Queue<int>& q) { return q.repr(); }, true);
}

// QueueBasicTests.test_str
TEST_F(LocksQueuesRepr, QueueBasicTests_test_str) {
  check_queue_repr_or_str([](const asyncio::Queue<int>& q) { return q.str(); }, false);
}

// _QueueJoinTestMixin.test_format, for Queue, LifoQueue and PriorityQueue: q._format() is what
// str() shows after the name; `q._unfinished_tasks = 2` is two items put and taken.
template <class Q>
void check_queue_format(const std::string& name) {
  Q q;
  EXPECT_EQ(q.str(), "<" + name + " maxsize=0>");
  run_in_task([&] {
    q.put_nowait(1);
    q.put_nowait(2);
    q.get_nowait();
    q.get_nowait();
  });
  EXPECT_EQ(q.str(), "<" + name + " maxsize=0 tasks=2>");
}

TEST_F(LocksQueuesRepr, QueueJoinTests_test_format) { check_queue_format<asyncio::Queue<int>>("Queue"); }
TEST_F(LocksQueuesRepr, LifoQueueJoinTests_test_format) { check_queue_format<asyncio::LifoQueue<int>>("LifoQueue"); }
TEST_F(LocksQueuesRepr, PriorityQueueJoinTests_test_format) {
  check_queue_format<asyncio::PriorityQueue<int>>("PriorityQueue");
}

// ---- whole lines ----

// lock = asyncio.Lock(); print(repr(lock)); await lock.acquire(); print(repr(lock))
// ts = [asyncio.create_task(lock.acquire()) for _ in range(2)]; await asyncio.sleep(0); print(repr(lock))
// lock.release(); print(repr(lock)); await asyncio.sleep(0); print(repr(lock))
//   <asyncio.locks.Lock object at 0x.. [unlocked]>
//   <asyncio.locks.Lock object at 0x.. [locked]>
//   <asyncio.locks.Lock object at 0x.. [locked, waiters:2]>
//   <asyncio.locks.Lock object at 0x.. [unlocked, waiters:2]>   the first is woken, its task not run yet
//   <asyncio.locks.Lock object at 0x.. [locked, waiters:1]>
TEST_F(LocksQueuesRepr, LockLines) {
  asyncio::Lock lock;
  const std::string head = "<asyncio.locks.Lock object at " + address_of(&lock) + " ";
  run_in_task([&] {
    EXPECT_EQ(lock.repr(), head + "[unlocked]>");
    lock.acquire();
    EXPECT_EQ(lock.repr(), head + "[locked]>");
    auto take_and_free = [&] { std::lock_guard guard(lock); };
    std::vector tasks{asyncio::create_task(take_and_free), asyncio::create_task(take_and_free)};
    asyncio::sleep(0);
    EXPECT_EQ(lock.repr(), head + "[locked, waiters:2]>");
    lock.release();
    EXPECT_EQ(lock.repr(), head + "[unlocked, waiters:2]>");
    asyncio::gather(tasks);
    EXPECT_EQ(lock.repr(), head + "[unlocked]>");
  });
}

// ev = asyncio.Event(); t = asyncio.create_task(ev.wait()); await asyncio.sleep(0); print(repr(ev))
// ev.set(); print(repr(ev)); await asyncio.sleep(0); print(repr(ev))
//   <asyncio.locks.Event object at 0x.. [unset, waiters:1]>
//   <asyncio.locks.Event object at 0x.. [set, waiters:1]>
//   <asyncio.locks.Event object at 0x.. [set]>
TEST_F(LocksQueuesRepr, EventLines) {
  asyncio::Event ev;
  const std::string head = "<asyncio.locks.Event object at " + address_of(&ev) + " ";
  run_in_task([&] {
    auto t = asyncio::create_task([&] { ev.wait(); });
    asyncio::sleep(0);
    EXPECT_EQ(ev.repr(), head + "[unset, waiters:1]>");
    ev.set();
    EXPECT_EQ(ev.repr(), head + "[set, waiters:1]>");
    asyncio::sleep(0);
    EXPECT_EQ(ev.repr(), head + "[set]>");
    asyncio::await(t);
  });
}

// cond = asyncio.Condition(); two tasks `async with cond: await cond.wait()`; await cond.acquire()
// print(repr(cond)); cond.notify_all(); print(repr(cond)); cond.release(); (tasks end) print(repr(cond))
//   <asyncio.locks.Condition object at 0x.. [locked, waiters:2]>
//   <asyncio.locks.Condition object at 0x.. [locked, waiters:2]>   notified, their tasks not run yet
//   <asyncio.locks.Condition object at 0x.. [unlocked]>
TEST_F(LocksQueuesRepr, ConditionLines) {
  asyncio::Condition cond;
  const std::string head = "<asyncio.locks.Condition object at " + address_of(&cond) + " ";
  run_in_task([&] {
    auto wait_on_cond = [&] {
      std::lock_guard guard(cond);
      cond.wait();
    };
    std::vector tasks{asyncio::create_task(wait_on_cond), asyncio::create_task(wait_on_cond)};
    asyncio::sleep(0);
    EXPECT_EQ(cond.repr(), head + "[unlocked, waiters:2]>");
    cond.acquire();
    EXPECT_EQ(cond.repr(), head + "[locked, waiters:2]>");
    cond.notify_all();
    EXPECT_EQ(cond.repr(), head + "[locked, waiters:2]>");
    cond.release();
    asyncio::gather(tasks);
    EXPECT_EQ(cond.repr(), head + "[unlocked]>");
  });
}

// A Condition on a Lock of its own shows that lock's state (asyncio.Condition(lock)).
TEST_F(LocksQueuesRepr, ConditionShowsItsLock) {
  asyncio::Lock lock;
  asyncio::Condition cond(lock);
  run_in_task([&] {
    lock.acquire();
    EXPECT_TRUE(ends_with(cond.repr(), " [locked]>")) << cond.repr();
    lock.release();
    EXPECT_TRUE(ends_with(cond.repr(), " [unlocked]>")) << cond.repr();
  });
}

// sem = asyncio.Semaphore(); await sem.acquire(); two tasks `async with sem: pass`
// await asyncio.sleep(0); print(repr(sem)); sem.release(); print(repr(sem))
//   <asyncio.locks.Semaphore object at 0x.. [locked, waiters:2]>
//   <asyncio.locks.Semaphore object at 0x.. [locked, waiters:2]>   the unit went to the first
// print(repr(asyncio.Semaphore(3)), repr(asyncio.Semaphore(0)), repr(asyncio.BoundedSemaphore(2)))
//   <asyncio.locks.Semaphore object at 0x.. [unlocked, value:3]>
//   <asyncio.locks.Semaphore object at 0x.. [locked]>
//   <asyncio.locks.BoundedSemaphore object at 0x.. [unlocked, value:2]>
TEST_F(LocksQueuesRepr, SemaphoreLines) {
  asyncio::Semaphore sem;
  const std::string head = "<asyncio.locks.Semaphore object at " + address_of(&sem) + " ";
  run_in_task([&] {
    sem.acquire();
    auto take_and_free = [&] { std::lock_guard guard(sem); };
    std::vector tasks{asyncio::create_task(take_and_free), asyncio::create_task(take_and_free)};
    asyncio::sleep(0);
    EXPECT_EQ(sem.repr(), head + "[locked, waiters:2]>");
    sem.release();
    EXPECT_EQ(sem.repr(), head + "[locked, waiters:2]>");
    asyncio::gather(tasks);
    EXPECT_EQ(sem.repr(), head + "[unlocked, value:1]>");
  });
  asyncio::Semaphore three(3), zero(0);
  asyncio::BoundedSemaphore bounded(2);
  EXPECT_EQ(three.repr(), "<asyncio.locks.Semaphore object at " + address_of(&three) + " [unlocked, value:3]>");
  EXPECT_EQ(zero.repr(), "<asyncio.locks.Semaphore object at " + address_of(&zero) + " [locked]>");
  EXPECT_EQ(bounded.repr(),
            "<asyncio.locks.BoundedSemaphore object at " + address_of(&bounded) + " [unlocked, value:2]>");
}

// b = asyncio.Barrier(3); print(repr(b)); two tasks wait; print(repr(b)); a third; print(repr(b))
// (all leave) print(repr(b)); await b.abort(); print(repr(b)); await b.reset(); print(repr(b))
//   <asyncio.locks.Barrier object at 0x.. [filling, waiters:0/3]>
//   <asyncio.locks.Barrier object at 0x.. [filling, waiters:2/3]>
//   <asyncio.locks.Barrier object at 0x.. [draining, waiters:0/3]>
//   <asyncio.locks.Barrier object at 0x.. [filling, waiters:0/3]>
//   <asyncio.locks.Barrier object at 0x.. [broken]>
//   <asyncio.locks.Barrier object at 0x.. [filling, waiters:0/3]>
TEST_F(LocksQueuesRepr, BarrierLines) {
  asyncio::Barrier b(3);
  const std::string head = "<asyncio.locks.Barrier object at " + address_of(&b) + " ";
  run_in_task([&] {
    EXPECT_EQ(b.repr(), head + "[filling, waiters:0/3]>");
    auto wait = [&] { b.wait(); };
    std::vector tasks{asyncio::create_task(wait), asyncio::create_task(wait)};
    asyncio::sleep(0);
    EXPECT_EQ(b.repr(), head + "[filling, waiters:2/3]>");
    tasks.push_back(asyncio::create_task(wait));
    asyncio::sleep(0);
    EXPECT_EQ(b.repr(), head + "[draining, waiters:0/3]>");
    asyncio::gather(tasks);
    EXPECT_EQ(b.repr(), head + "[filling, waiters:0/3]>");
    b.abort();
    EXPECT_EQ(b.repr(), head + "[broken]>");
    b.reset();
    EXPECT_EQ(b.repr(), head + "[filling, waiters:0/3]>");
  });
}

// q = asyncio.Queue(5); q.put_nowait(1); q.put_nowait(2); print(repr(q), str(q))
//   <Queue at 0x.. maxsize=5 _queue=[1, 2] tasks=2> <Queue maxsize=5 _queue=[1, 2] tasks=2>
// q = asyncio.Queue(); q.put_nowait('a'); q.put_nowait("it's"); print(q)
//   <Queue maxsize=0 _queue=['a', "it's"] tasks=2>
// put and get three items: <Queue maxsize=0 tasks=3>
TEST_F(LocksQueuesRepr, QueueLines) {
  asyncio::Queue<int> q(5);
  EXPECT_EQ(q.repr(), "<Queue at " + address_of(&q) + " maxsize=5>");
  EXPECT_EQ(q.str(), "<Queue maxsize=5>");
  asyncio::Queue<std::string> words;
  asyncio::Queue<int> done;
  run_in_task([&] {
    q.put_nowait(1);
    q.put_nowait(2);
    words.put_nowait("a");
    words.put_nowait("it's");
    for (int i = 0; i < 3; ++i) done.put_nowait(i);
    for (int i = 0; i < 3; ++i) done.get_nowait();
  });
  EXPECT_EQ(q.repr(), "<Queue at " + address_of(&q) + " maxsize=5 _queue=[1, 2] tasks=2>");
  EXPECT_EQ(q.str(), "<Queue maxsize=5 _queue=[1, 2] tasks=2>");
  EXPECT_EQ(words.str(), "<Queue maxsize=0 _queue=['a', \"it's\"] tasks=2>");
  EXPECT_EQ(done.str(), "<Queue maxsize=0 tasks=3>");
}

// The items in the order asyncio's list(self._queue) has them: heapq's list for a PriorityQueue,
// the push order for a LifoQueue (the next out is the last).
// pq = asyncio.PriorityQueue(); for i in [3, 1, 2]: pq.put_nowait(i)
//   <PriorityQueue maxsize=0 _queue=[1, 3, 2] tasks=3>
// for i in [5, 1, 4, 2, 3, 0, 6]: pq.put_nowait(i)  then  pq.get_nowait()
//   <PriorityQueue maxsize=0 _queue=[1, 2, 4, 5, 3, 6] tasks=7>
// lq = asyncio.LifoQueue(); for i in [1, 3, 2]: lq.put_nowait(i)
//   <LifoQueue maxsize=0 _queue=[1, 3, 2] tasks=3>
TEST_F(LocksQueuesRepr, PriorityAndLifoQueueLines) {
  asyncio::PriorityQueue<int> pq, pq7;
  asyncio::LifoQueue<int> lq;
  run_in_task([&] {
    for (int i : {3, 1, 2}) pq.put_nowait(i);
    for (int i : {5, 1, 4, 2, 3, 0, 6}) pq7.put_nowait(i);
    pq7.get_nowait();
    for (int i : {1, 3, 2}) lq.put_nowait(i);
  });
  EXPECT_EQ(pq.str(), "<PriorityQueue maxsize=0 _queue=[1, 3, 2] tasks=3>");
  EXPECT_EQ(pq.repr(), "<PriorityQueue at " + address_of(&pq) + " maxsize=0 _queue=[1, 3, 2] tasks=3>");
  EXPECT_EQ(pq7.str(), "<PriorityQueue maxsize=0 _queue=[1, 2, 4, 5, 3, 6] tasks=7>");
  EXPECT_EQ(lq.str(), "<LifoQueue maxsize=0 _queue=[1, 3, 2] tasks=3>");
}

// q = asyncio.Queue(); two tasks in q.get(); await asyncio.sleep(0); print(q)
// q.put_nowait(7); print(q); await asyncio.sleep(0); print(q)
//   <Queue maxsize=0 _getters[2]>
//   <Queue maxsize=0 _queue=[7] _getters[1] tasks=1>   the woken getter left the deque at once
//   <Queue maxsize=0 _getters[1] tasks=1>
// q = asyncio.Queue(1); q.put_nowait(1); a task in q.put(2); await asyncio.sleep(0); print(q)
// q.get_nowait(); print(q); await the putter; print(q)
//   <Queue maxsize=1 _queue=[1] _putters[1] tasks=1>
//   <Queue maxsize=1 tasks=1>
//   <Queue maxsize=1 _queue=[2] tasks=2>
TEST_F(LocksQueuesRepr, QueueWaiterLines) {
  asyncio::Queue<int> q;
  asyncio::Queue<int> bounded(1);
  run_in_task([&] {
    auto get = [&] { return q.get(); };
    std::vector getters{asyncio::create_task(get), asyncio::create_task(get)};
    asyncio::sleep(0);
    EXPECT_EQ(q.str(), "<Queue maxsize=0 _getters[2]>");
    q.put_nowait(7);
    EXPECT_EQ(q.str(), "<Queue maxsize=0 _queue=[7] _getters[1] tasks=1>");
    asyncio::sleep(0);
    EXPECT_EQ(q.str(), "<Queue maxsize=0 _getters[1] tasks=1>");
    q.put_nowait(8);
    asyncio::gather(getters);
    EXPECT_EQ(q.str(), "<Queue maxsize=0 tasks=2>");

    bounded.put_nowait(1);
    auto putter = asyncio::create_task([&] { bounded.put(2); });
    asyncio::sleep(0);
    EXPECT_EQ(bounded.str(), "<Queue maxsize=1 _queue=[1] _putters[1] tasks=1>");
    bounded.get_nowait();
    EXPECT_EQ(bounded.str(), "<Queue maxsize=1 tasks=1>");
    asyncio::await(putter);
    EXPECT_EQ(bounded.str(), "<Queue maxsize=1 _queue=[2] tasks=2>");
  });
}

// A subclass prints its own name, as type(self).__name__:
// class JobQueue(asyncio.Queue): pass; print(JobQueue())   <JobQueue maxsize=0>
class JobQueue : public asyncio::Queue<int> {};

TEST_F(LocksQueuesRepr, QueueSubclassShowsItsName) {
  JobQueue q;
  EXPECT_EQ(q.str(), "<JobQueue maxsize=0>");
  EXPECT_EQ(q.repr(), "<JobQueue at " + address_of(&q) + " maxsize=0>");
}

// C++ only: an item type without operator<< prints "<value>" per item, as Future::repr() prints
// such a result; the listing stops after 15 items (an ExceptionGroup's bound) and counts the rest.
struct opaque_job {
  int id;
};

TEST_F(LocksQueuesRepr, ItemsWithoutTextAndLongQueues) {
  asyncio::Queue<opaque_job> jobs;
  asyncio::Queue<int> many;
  run_in_task([&] {
    jobs.put_nowait({1});
    jobs.put_nowait({2});
    for (int i = 0; i < 20; ++i) many.put_nowait(i);
  });
  EXPECT_EQ(jobs.str(), "<Queue maxsize=0 _queue=[<value>, <value>] tasks=2>");
  EXPECT_EQ(many.str(),
            "<Queue maxsize=0 _queue=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, ... and 5 more] tasks=20>");
}

}  // namespace locks_queues_repr_test
