// thread_pool.cpp: ThreadPoolExecutor. One mutex guards the queue, the
// thread list and the flags; work runs with it released. Workers drain the
// queue even after shutdown(), so no accepted call is lost.
#include "greenlet/concurrent/thread_pool.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>

#include "io/blocked_signals.hpp"

namespace greenlet::concurrent {

double Executor::detail_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace detail {

namespace {
std::atomic<int> pool_counter{0};
thread_local const thread_pool* current_pool = nullptr;
}  // namespace

// thread_pool is shared with its worker threads (each holds a reference),
// so a worker never touches a freed pool.
class thread_pool : public std::enable_shared_from_this<thread_pool> {
 public:
  thread_pool(std::size_t max_workers, std::string prefix, std::function<void()> initializer)
      : max_workers_(max_workers), prefix_(std::move(prefix)), initializer_(std::move(initializer)) {
    if (max_workers_ == 0) {
      std::size_t cores = std::thread::hardware_concurrency();
      max_workers_ = std::min<std::size_t>(32, (cores == 0 ? 1 : cores) + 4);
    }
    if (prefix_.empty()) prefix_ = "ThreadPoolExecutor-" + std::to_string(pool_counter.fetch_add(1));
  }

  // The last reference may be a worker's, when the executor was destroyed
  // from inside one of its own jobs: that worker cannot join itself.
  ~thread_pool() {
    for (auto& t : threads_) {
      if (t.joinable()) t.detach();
    }
    // Workers leave the queue empty (a call is queued only while the pool
    // has a worker); should any be left, they are cancelled, not leaked.
    work_item* left = take_all();
    while (left != nullptr) {
      work_item* next = left->next;
      left->cancel();
      left = next;
    }
  }

  void enqueue(std::unique_ptr<work_item> item) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!broken_.empty()) throw BrokenThreadPool(broken_);
    if (shutdown_) {
      throw RuntimeError(concurrent_errc::shutdown,
                         "cannot schedule new futures after shutdown: submit before shutdown() or make a new "
                         "executor");
    }
    // Start a worker when none is idle for it (this item counted), as Python's
    // _adjust_thread_count. Before the item is queued: a submit that throws
    // must leave nothing behind that a worker would run later.
    if (queued_ + 1 > idle_ && threads_.size() < max_workers_) start_worker();
    push(item.release());
    work_cv_.notify_one();
  }

  // start_worker() adds a worker thread (mutex_ held). One that cannot be
  // started (std::system_error, EAGAIN: out of threads or memory) fails the
  // submit only when the pool has no worker at all; otherwise the pool keeps
  // going with those it has and the call waits for one, as at max_workers.
  // (Python's submit() raises there, yet leaves the call queued to run
  // later: the caller is told it was refused and it runs all the same.)
  void start_worker() {
    const std::size_t index = threads_.size();
    const ::greenlet::detail::async_signals_blocked masked;  // the worker inherits it: see the header
    try {
      threads_.emplace_back([self = shared_from_this(), index] { self->work(index); });
    } catch (const std::system_error&) {
      if (threads_.empty()) throw;
    }
  }

  void shutdown(bool wait, bool cancel_futures) {
    work_item* cancelled = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
      if (cancel_futures) cancelled = take_all();
      work_cv_.notify_all();
    }
    // Cancel outside the lock: done callbacks may call back into the pool.
    while (cancelled != nullptr) {
      work_item* next = cancelled->next;
      cancelled->cancel();
      cancelled = next;
    }
    if (!wait) return;
    if (current_pool == this) {
      throw RuntimeError(concurrent_errc::shutdown,
                         "shutdown(wait=true) from one of the pool's own workers would wait for itself: "
                         "use shutdown(false)");
    }
    // The first caller to get here joins the workers; a later or concurrent
    // one waits until it has, so that every shutdown(wait=true) returns after
    // the work is done, as Python's (each call joins every thread). Before,
    // it found the list already taken and returned at once.
    std::unique_lock<std::mutex> lock(mutex_);
    if (joining_) {
      joined_cv_.wait(lock, [this] { return joined_; });
      return;
    }
    joining_ = true;
    std::vector<std::thread> threads;
    threads.swap(threads_);  // none is added after shutdown_
    lock.unlock();
    for (auto& t : threads) t.join();
    lock.lock();
    joined_ = true;
    joined_cv_.notify_all();
  }

  std::size_t max_workers() const noexcept { return max_workers_; }

 private:
  void work(std::size_t index) {
    current_pool = this;
    std::string name = prefix_ + "_" + std::to_string(index);
    if (name.size() > 15) name.erase(0, name.size() - 15);  // the kernel keeps 15 characters
    pthread_setname_np(pthread_self(), name.c_str());
    if (initializer_) {
      try {
        initializer_();
      } catch (...) {
        break_pool(std::current_exception());
        return;
      }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      work_cv_.wait(lock, [this] { return head_ != nullptr || shutdown_ || !broken_.empty(); });
      --idle_;
      if (head_ == nullptr) return;  // shut down (or broken) and drained
      work_item* item = pop();
      lock.unlock();
      item->run();  // disposes of the item: its captures die in this thread, before the next wait
      lock.lock();
    }
  }

  // break_pool(error) is Python's _initializer_failed: it reports the
  // initializer's exception (Python logs "Exception in initializer:" and the
  // traceback), breaks the pool and fails what is queued. The message names
  // the exception, so a caller who sees only BrokenThreadPool learns why.
  void break_pool(const std::exception_ptr& error) {
    const std::string what = describe_error(error);
    std::fprintf(stderr, "Exception in initializer:\n%s\n", what.c_str());
    work_item* pending = nullptr;
    std::string message;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (broken_.empty()) {
        broken_ =
            "A thread initializer failed, the thread pool is not usable anymore (the initializer raised " + what + ")";
      }
      message = broken_;  // a copy: read outside the lock
      pending = take_all();
      work_cv_.notify_all();
    }
    while (pending != nullptr) {
      work_item* next = pending->next;
      pending->fail(std::make_exception_ptr(BrokenThreadPool(message)));
      pending = next;
    }
  }

  // The queue is intrusive (work_item::next), FIFO; all three under mutex_.
  void push(work_item* item) noexcept {
    item->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = item;
    } else {
      head_ = item;
    }
    tail_ = item;
    ++queued_;
  }
  work_item* pop() noexcept {
    work_item* item = head_;
    head_ = item->next;
    if (head_ == nullptr) tail_ = nullptr;
    --queued_;
    return item;
  }
  work_item* take_all() noexcept {
    work_item* all = head_;
    head_ = tail_ = nullptr;
    queued_ = 0;
    return all;
  }

  std::mutex mutex_;
  std::condition_variable work_cv_;
  work_item* head_ = nullptr;
  work_item* tail_ = nullptr;
  std::size_t queued_ = 0;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool shutdown_ = false;
  bool joining_ = false;  // a shutdown(wait=true) is joining the workers
  bool joined_ = false;   // and has joined them all
  std::condition_variable joined_cv_;
  std::string broken_;
  std::size_t max_workers_;
  std::string prefix_;
  std::function<void()> initializer_;
};

}  // namespace detail

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix,
                                       std::function<void()> initializer)
    : impl_(std::make_shared<detail::thread_pool>(max_workers, std::move(thread_name_prefix), std::move(initializer))) {
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  // Python's __exit__: wait for the workers. Not checked against running in
  // a task: a destructor cannot throw, and waiting is what it promises.
  try {
    impl_->shutdown(true, false);
  } catch (...) {
    // From a worker of this pool: its threads finish and release the pool.
  }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  if (wait) detail::check_not_in_task("ThreadPoolExecutor::shutdown(wait=true)");
  impl_->shutdown(wait, cancel_futures);
}

std::size_t ThreadPoolExecutor::max_workers() const noexcept { return impl_->max_workers(); }

void ThreadPoolExecutor::enqueue(std::unique_ptr<detail::work_item> item) { impl_->enqueue(std::move(item)); }

}  // namespace greenlet::concurrent
