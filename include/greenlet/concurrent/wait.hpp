// concurrent/wait.hpp: wait() and as_completed() over concurrent futures.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include "greenlet/concurrent/future.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::concurrent {

// return_when chooses when wait() returns, as Python's constants.
enum class return_when { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
// FIRST_COMPLETED makes wait() return as soon as any future is done. A constant: any thread.
inline constexpr return_when FIRST_COMPLETED = return_when::FIRST_COMPLETED;
// FIRST_EXCEPTION makes wait() return when any future raises, or when all are done if none does.
// A constant: any thread.
inline constexpr return_when FIRST_EXCEPTION = return_when::FIRST_EXCEPTION;
// ALL_COMPLETED makes wait() return only when every future is done, the default. A constant: any
// thread.
inline constexpr return_when ALL_COMPLETED = return_when::ALL_COMPLETED;

namespace detail {

// drop_repeats(fs) removes the entries of fs that list again a future listed
// earlier (the same state), keeping the first listing of each in order, as
// Python's wait() and as_completed() make a set of their futures. Returns a
// flag per original entry, true for a dropped repeat; empty (and nothing
// allocated for few futures) when none repeats.
std::vector<bool> drop_repeats(std::vector<future_core*>& fs);

// wait_indices() blocks until the condition holds or the timeout passes and
// returns which of fs are done (a flag per future).
std::vector<bool> wait_indices(const std::vector<future_core*>& fs, std::optional<double> timeout, return_when when);

// wait_counters are totals since the process started, for the tests that
// check that wait() and as_completed() do work linear in their futures:
// `examined` counts wait()'s steps over futures (a look at one future's state,
// or at one completion it was told of), `wakeups` the times a blocked wait()
// or as_completed() woke and checked its condition. Thread-safe; throws nothing.
struct wait_counters {
  std::size_t examined = 0;
  std::size_t wakeups = 0;
};
wait_counters wait_counters_now() noexcept;

// completion_queue hands out the indices of fs in the order they finish, and
// lets go of each future as it hands it out.
class completion_queue {
 public:
  completion_queue(std::vector<std::shared_ptr<future_core>> fs, std::optional<double> timeout);
  ~completion_queue();
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;
  // next() is the next finished index, nullopt when all were handed out;
  // TimeoutError once the deadline passes with futures still pending.
  std::optional<std::size_t> next();

 private:
  std::vector<std::shared_ptr<future_core>> fs_;
  std::shared_ptr<waiter> waiter_;
  std::size_t handed_out_ = 0;
  std::optional<double> deadline_;
};

}  // namespace detail

// DoneAndNotDone is what wait() returns: the futures split in two, each in
// the order given, each future once. A plain struct: not synchronized (the
// futures in it are).
template <class T>
struct DoneAndNotDone {
  // done holds the futures that were done when wait() returned.
  std::vector<Future<T>> done;
  // not_done holds the futures still pending when wait() returned.
  std::vector<Future<T>> not_done;
};

// wait(fs, timeout, return_when) blocks until the condition holds (all done,
// the first done, or the first to raise) or the timeout passes; it never
// throws TimeoutError. A future listed several times (handles sharing one
// state) counts once and is reported once, where first listed: Python's
// wait() takes a set. RuntimeError inside an event-loop task if it would
// block: use asyncio::wait over wrap_future()s there. Otherwise throws only
// std::bad_alloc. Thread-safe; blocks the calling thread.
template <class T>
DoneAndNotDone<T> wait(const std::vector<Future<T>>& fs, std::optional<double> timeout = std::nullopt,
                       return_when when = ALL_COMPLETED) {
  std::vector<detail::future_core*> cores;
  cores.reserve(fs.size());
  for (const auto& f : fs) cores.push_back(f.state().get());
  const std::vector<bool> repeated = detail::drop_repeats(cores);
  std::vector<bool> flags = detail::wait_indices(cores, timeout, when);
  DoneAndNotDone<T> out;
  for (std::size_t i = 0, kept = 0; i < fs.size(); ++i) {
    if (!repeated.empty() && repeated[i]) continue;
    (flags[kept++] ? out.done : out.not_done).push_back(fs[i]);
  }
  return out;
}

// as_completed(fs, timeout) is a range over fs in the order they finish:
//   for (auto& f : concurrent::as_completed(futures)) use(f.result());
// A future listed several times is yielded once (Python's as_completed()
// takes a set). Advancing blocks; it throws TimeoutError once timeout
// seconds (counted from the call) pass with futures still pending. One
// thread at a time per range (the futures may finish on any thread). The
// range keeps a future only until it yields it: the iterator then holds it
// until the next step, and a result lives on only if the caller keeps a copy.
template <class T>
class as_completed_range {
 public:
  // as_completed_range(fs, timeout) registers a waiter on each future and, with a timeout in
  // seconds, fixes the deadline from now. Throws std::bad_alloc only. A range is used by one thread
  // at a time (the futures themselves may finish on any thread).
  as_completed_range(std::vector<Future<T>> fs, std::optional<double> timeout)
      : fs_(distinct(std::move(fs))), queue_(cores(fs_), timeout) {}

  // iterator is the range's input iterator: each ++ blocks until the next future finishes. One
  // thread at a time; throws what operator++() throws.
  class iterator {
   public:
    // value_type is Future<T>. A type alias: nothing to throw, any thread.
    using value_type = Future<T>;
    // difference_type is std::ptrdiff_t, as input iterators require.
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    // iterator(range) starts iterating and blocks until the first future finishes. Throws as
    // operator++().
    explicit iterator(as_completed_range* range) : range_(range) { ++*this; }
    // operator*() is the future that finished last. Throws nothing; must not be called at the end.
    const Future<T>& operator*() const { return current_; }
    // operator->() points at the future that finished last, as operator*().
    const Future<T>* operator->() const { return &current_; }
    // operator++() blocks until the next future finishes and moves to it, or to the end once all were
    // handed out. Throws TimeoutError once the deadline passes with futures pending, and RuntimeError
    // (blocking_in_loop) if it would block inside an event-loop task. One thread at a time.
    iterator& operator++() {
      std::optional<std::size_t> index = range_->queue_.next();
      if (index) {
        // The range lets go of what it yielded, as Python's generator does
        // (bpo-14406): a result lives as long as the caller keeps its future.
        current_ = std::move(range_->fs_[*index]);
      } else {
        range_ = nullptr;
      }
      return *this;
    }
    // operator++(int) is ++it, for input-iterator use; returns nothing. Throws as ++it.
    void operator++(int) { ++*this; }
    // operator==(it, std::default_sentinel) is true once every future was handed out. Throws nothing.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.range_ == nullptr; }

   private:
    as_completed_range* range_ = nullptr;
    Future<T> current_{std::shared_ptr<detail::future_value<T>>()};
  };

  // begin() blocks until the first future finishes and returns an iterator at it. Throws as
  // iterator::operator++(); one thread at a time.
  iterator begin() { return iterator(this); }
  // end() is the std::default_sentinel_t that iterators reach after the last future. Throws nothing.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  // distinct(fs) is fs without the repeated listings of a future.
  static std::vector<Future<T>> distinct(std::vector<Future<T>> fs) {
    std::vector<detail::future_core*> states;
    states.reserve(fs.size());
    for (const auto& f : fs) states.push_back(f.state().get());
    const std::vector<bool> repeated = detail::drop_repeats(states);
    if (!repeated.empty()) {
      std::size_t kept = 0;
      for (std::size_t i = 0; i < fs.size(); ++i) {
        if (!repeated[i]) fs[kept++] = std::move(fs[i]);
      }
      fs.erase(fs.begin() + static_cast<std::ptrdiff_t>(kept), fs.end());
    }
    return fs;
  }
  static std::vector<std::shared_ptr<detail::future_core>> cores(const std::vector<Future<T>>& fs) {
    std::vector<std::shared_ptr<detail::future_core>> out;
    out.reserve(fs.size());
    for (const auto& f : fs) out.push_back(f.state());
    return out;
  }
  std::vector<Future<T>> fs_;
  detail::completion_queue queue_;
};

// as_completed(fs, timeout) is the range over fs in the order they finish (see as_completed_range):
// advancing blocks, TimeoutError once timeout seconds from this call pass with futures pending,
// RuntimeError (blocking_in_loop) if it would block inside an event-loop task. Any thread; the
// range it returns is used by one thread at a time.
template <class T>
as_completed_range<T> as_completed(std::vector<Future<T>> fs, std::optional<double> timeout = std::nullopt) {
  return as_completed_range<T>(std::move(fs), timeout);
}

}  // namespace greenlet::concurrent

#pragma GCC visibility pop
