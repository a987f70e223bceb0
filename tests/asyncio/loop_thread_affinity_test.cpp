// loop_thread_affinity_test.cpp: a loop belongs to the thread that made it.
// Its tasks are that thread's greenlets, and killing one unwinds its stack
// into the task's state and the loop; so while that thread lives, close() on
// another thread is refused, and dropping the loop there leaves the closing
// to the owner (it closed the loop there, and the owner later unwound a task
// into freed memory: ASan's heap-use-after-free). Once the owner has exited
// (its tasks killed), any thread may close the loop, but not run it, even a
// thread that got the owner's recycled std::thread::id (it was taken for the
// owner).
#include <gtest/gtest.h>

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <greenlet/asyncio.hpp>

#include "concurrent/gate.hpp"
#include "support/process_stats.hpp"

namespace asyncio = greenlet::asyncio;

namespace {

using concurrent_test::gate;  // a one-shot signal between two threads

// owner_thread makes a loop on a thread of its own with one task suspended
// in a long sleep; the task's stack holds an object that records which
// thread unwound it. The thread then waits for release() before it exits,
// dropping its own reference to the loop if it still has it.
class owner_thread {
 public:
  owner_thread() {
    thread_ = std::thread([this] {
      id_ = std::this_thread::get_id();
      loop_ = asyncio::new_event_loop();
      loop_->create_task([this] {
        sentinel s{this};
        asyncio::sleep(1000);
      });
      loop_->run_until_complete([] { asyncio::sleep(0); });
      ready_.release();
      release_.wait();
      if (close_on_release_) loop_->close();
      loop_.reset();
    });
    ready_.wait();
  }
  ~owner_thread() { join(); }

  // take() moves the loop out: the owner no longer holds it.
  std::shared_ptr<asyncio::event_loop> take() { return std::move(loop_); }
  std::shared_ptr<asyncio::event_loop>& loop() { return loop_; }
  // release() lets the thread exit (closing the loop first if close is set)
  // and joins it.
  void release(bool close = false) {
    close_on_release_ = close;
    release_.release();
    join();
  }
  std::thread::id id() const { return id_; }
  bool unwound_on_owner() const { return unwound_ == id_; }
  bool unwound() const { return unwound_ != std::thread::id(); }

 private:
  struct sentinel {
    owner_thread* self;
    ~sentinel() { self->unwound_ = std::this_thread::get_id(); }
  };
  void join() {
    if (!thread_.joinable()) return;
    release_.release();
    thread_.join();
  }

  std::thread thread_;
  std::thread::id id_;
  std::thread::id unwound_;
  std::shared_ptr<asyncio::event_loop> loop_;
  gate ready_;
  gate release_;
  bool close_on_release_ = false;
};

// unraisable_capture records what reaches greenlet's unraisable hook.
class unraisable_capture {
 public:
  unraisable_capture()
      : previous_(greenlet::set_unraisable_hook([this](std::exception_ptr, std::string_view context) {
          std::lock_guard<std::mutex> lock(mutex_);
          reports_.emplace_back(context);
        })) {}
  ~unraisable_capture() { greenlet::set_unraisable_hook(std::move(previous_)); }
  std::vector<std::string> reports() {
    std::lock_guard<std::mutex> lock(mutex_);
    return reports_;
  }

 private:
  greenlet::unraisable_hook previous_;
  std::mutex mutex_;
  std::vector<std::string> reports_;
};

template <class F>
void expect_wrong_loop(F&& f, const std::string& says) {
  try {
    f();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::wrong_loop) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(LoopThreadAffinity, CloseFromAnotherThreadIsRefusedWhileTheOwnerLives) {
  owner_thread owner;
  expect_wrong_loop([&] { owner.loop()->close(); }, "close the loop on its own thread");
  EXPECT_FALSE(owner.loop()->is_closed());
  EXPECT_FALSE(owner.unwound());
  owner.release(/*close=*/true);
  EXPECT_TRUE(owner.unwound_on_owner());
}

TEST(LoopThreadAffinity, DroppedOnAnotherThreadIsClosedByTheOwnerAtItsExit) {
  unraisable_capture capture;
  owner_thread owner;
  owner.take().reset();  // the last reference
  ASSERT_EQ(capture.reports().size(), 1u);
  EXPECT_NE(capture.reports()[0].find("close() the loop on its own thread"), std::string::npos) << capture.reports()[0];
  EXPECT_FALSE(owner.unwound());  // the task still waits on its thread
  owner.release();
  EXPECT_TRUE(owner.unwound_on_owner());
}

TEST(LoopThreadAffinity, OnceTheOwnerExitedAnyThreadMayCloseButNotRun) {
  owner_thread owner;
  std::shared_ptr<asyncio::event_loop> loop = owner.take();
  owner.release();
  EXPECT_TRUE(owner.unwound_on_owner());  // its exit killed the task
  expect_wrong_loop([&] { loop->run_until_complete([] {}); }, "another thread");
  loop->close();
  EXPECT_TRUE(loop->is_closed());
}

TEST(LoopThreadAffinity, OnceTheOwnerExitedAnyThreadMayDropIt) {
  unraisable_capture capture;
  owner_thread owner;
  std::shared_ptr<asyncio::event_loop> loop = owner.take();
  owner.release();
  loop.reset();
  EXPECT_TRUE(owner.unwound_on_owner());
  EXPECT_TRUE(capture.reports().empty());
}

TEST(LoopThreadAffinity, IdleLoopDroppedOnAnotherThreadIsFreedThere) {
  unraisable_capture capture;
  const int fds_before = greenlet_test::open_fd_count();
  std::shared_ptr<asyncio::event_loop> loop;
  gate made, release;
  std::thread owner([&] {
    loop = asyncio::new_event_loop();
    loop->call_soon([] {});  // never run: dropped with the loop
    made.release();
    release.wait();
  });
  made.wait();
  loop.reset();                                           // the owner still lives, but nothing of it uses the loop
  EXPECT_EQ(greenlet_test::open_fd_count(), fds_before);  // epoll and eventfd closed
  EXPECT_TRUE(capture.reports().empty());
  release.release();
  owner.join();
}

// pthread ids are recycled: a thread started after the owner was joined
// often gets its id. Such a thread must still be refused; threads are tried
// until one gets the id (glibc reuses the exited thread's descriptor at once).
TEST(LoopThreadAffinity, ThreadWithTheOwnersRecycledIdIsNotTheOwner) {
  std::shared_ptr<asyncio::event_loop> loop;
  std::thread::id owner_id;
  std::thread owner([&] {
    owner_id = std::this_thread::get_id();
    loop = asyncio::new_event_loop();
  });
  owner.join();
  bool reused = false;
  for (int attempt = 0; attempt < 100 && !reused; ++attempt) {
    std::thread other([&] {
      reused = std::this_thread::get_id() == owner_id;
      expect_wrong_loop([&] { loop->run_until_complete([] {}); }, "another thread");
    });
    other.join();
  }
  EXPECT_TRUE(reused) << "no thread got the owner's id: the check above was not put to the test";
  loop->close();
}

}  // namespace
