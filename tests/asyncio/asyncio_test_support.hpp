// asyncio_test_support.hpp: helpers shared by the ports of CPython's
// Lib/test/test_asyncio: a virtual-time loop, run_briefly(), an exception
// handler that records what reaches it, cancel_message_of(), and TestError.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <greenlet/asyncio.hpp>

#include "support/greenlet_test.hpp"

namespace asyncio_test {

// virtual_time() are loop options whose clock jumps to the next timer, so
// that timeouts run instantly and loop.time() is exact (test_utils.TestLoop).
inline greenlet::asyncio::event_loop::options virtual_time() {
  greenlet::asyncio::event_loop::options opts;
  opts.virtual_time = true;
  return opts;
}

// run_briefly(loop) runs the callbacks ready now, and those they make ready
// on the way, for one iteration (test_utils.run_briefly).
inline void run_briefly(greenlet::asyncio::event_loop& loop) {
  loop.call_soon([&loop] { loop.stop(); });
  loop.run_forever();
}

// what_of(e) is e's what(), or "" for null.
inline std::string what_of(const std::exception_ptr& e) {
  if (!e) return "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

// stamp(what) is what plus the running loop's time in tenths, as the Python
// twins of the cancellation tests print it ("inner cancelled t=1").
inline std::string stamp(const std::string& what) {
  const double tenths = greenlet::asyncio::get_running_loop().time() / 0.1;
  return what + " t=" + std::to_string(static_cast<long>(tenths + 0.5));
}

// error_log records what reaches a loop's exception handler. Declare it
// before the loop: the handler refers to it.
struct error_log {
  std::vector<std::string> messages;
  std::vector<std::string> whats;
  std::vector<std::string> sources;
  std::vector<std::exception_ptr> exceptions;

  void attach(greenlet::asyncio::event_loop& loop) {
    loop.set_exception_handler([this](greenlet::asyncio::event_loop*, const greenlet::asyncio::exception_context& c) {
      messages.push_back(c.message);
      whats.push_back(what_of(c.exception));
      sources.push_back(c.source);
      exceptions.push_back(c.exception);
    });
  }
};

// TestError is the tests' own exception, like ZeroDivisionError in CPython's.
// cancel_message_of(fn) runs fn and returns the message of the CancelledError it throws (fails if it
// throws none): Python's `with assertRaises(CancelledError) as cm` then cm.exception.args.
template <class F>
std::string cancel_message_of(F&& fn) {
  try {
    fn();
  } catch (const greenlet::asyncio::CancelledError& e) {
    return e.message();
  }
  ADD_FAILURE() << "no CancelledError";
  return "<none>";
}

class TestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Boom is ZeroDivisionError, with its message.
struct Boom : std::runtime_error {
  Boom() : std::runtime_error("division by zero") {}
};

// Guard records "~name" in a log when destroyed: proof a stack unwound.
struct Guard {
  Guard(std::vector<std::string>& log, std::string name) : log(log), name(std::move(name)) {}
  std::vector<std::string>& log;
  std::string name;
  ~Guard() { log.push_back("~" + name); }
};

}  // namespace asyncio_test
