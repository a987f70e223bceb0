// What concurrent reports about exceptions it cannot hand to anyone: a done
// callback that throws, a thread pool initializer that throws. Python logs
// the traceback, whose last line names the class and the message; the C++
// reports carry that line.
#include <stdexcept>
#include <string>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

class ConcurrentErrorReports : public greenlet_test::GreenletTest {};

// test_future.py's callback tests: Python logs "exception calling callback
// for <Future ...>" and the traceback ending in "ValueError: doh!". The
// report said which future, not what was thrown.
TEST_F(ConcurrentErrorReports, ThrowingDoneCallbackReportsTheException) {
  concurrent::Future<int> f;
  f.add_done_callback([](const concurrent::Future<int>&) { throw std::invalid_argument("doh!"); });
  testing::internal::CaptureStderr();
  f.set_result(5);  // the callback runs here
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("exception calling callback for <Future at"), std::string::npos) << err;
  EXPECT_NE(err.find("invalid_argument: doh!"), std::string::npos) << err;
  EXPECT_EQ(f.result(), 5);

  // Added to a done future, it runs at once: the same report.
  testing::internal::CaptureStderr();
  f.add_done_callback([](const concurrent::Future<int>&) { throw std::out_of_range("late"); });
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("out_of_range: late"), std::string::npos) << err;

  // Not derived from std::exception: said so.
  testing::internal::CaptureStderr();
  f.add_done_callback([](const concurrent::Future<int>&) { throw 42; });
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not derived from std::exception"), std::string::npos) << err;
}

// test_thread_pool.py's initializer tests: Python logs "Exception in
// initializer:" and the traceback; the pool is broken. The exception was
// swallowed: BrokenThreadPool said an initializer failed, not why.
TEST_F(ConcurrentErrorReports, FailingInitializerIsReportedAndNamedInBrokenThreadPool) {
  testing::internal::CaptureStderr();
  std::string message;
  {
    concurrent::ThreadPoolExecutor pool(1, "", [] { throw std::runtime_error("init failed"); });
    auto f = pool.submit([] { return 1; });
    try {
      f.result();
      ADD_FAILURE() << "the job ran";
    } catch (const concurrent::BrokenThreadPool& e) {
      message = e.what();
    }
    try {
      pool.submit([] { return 1; });
      ADD_FAILURE() << "submit() to a broken pool";
    } catch (const concurrent::BrokenThreadPool& e) {
      EXPECT_EQ(std::string(e.what()), message);
    }
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Exception in initializer:\nruntime_error: init failed\n"), std::string::npos) << err;
  EXPECT_NE(message.find("A thread initializer failed, the thread pool is not usable anymore"), std::string::npos)
      << message;
  EXPECT_NE(message.find("runtime_error: init failed"), std::string::npos) << message;
}

}  // namespace
