// test_greenlet_support.hpp: helpers shared by the ports of greenlet's
// src/greenlet/tests/test_greenlet.py (greenlet_*_test.cpp): its SomeError,
// fmain() and send_exception(), and threading.Event.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "support/greenlet_test.hpp"

namespace greenlet_port {

// SomeError is the test module's `class SomeError(Exception)`.
struct SomeError : std::runtime_error {
  SomeError() : std::runtime_error("SomeError") {}
};

// KeyError stands for Python's builtin KeyError.
struct KeyError : std::runtime_error {
  KeyError() : std::runtime_error("KeyError") {}
};

// kind_of(e) names e's type, as Python's sys.exc_info()[0] does.
inline std::string kind_of(const std::exception_ptr& e) {
  if (!e) return "<none>";
  try {
    std::rethrow_exception(e);
  } catch (const SomeError&) {
    return "SomeError";
  } catch (const KeyError&) {
    return "KeyError";
  } catch (const greenlet::GreenletExit&) {
    return "GreenletExit";
  } catch (...) {
    return "<other>";
  }
}

// python_message(e) is the message Python's str(exc) would show:
// std::system_error::what() appends ": " and the error code's own text,
// which this removes.
inline std::string python_message(const std::system_error& e) {
  std::string what = e.what();
  const std::string suffix = ": " + e.code().message();
  if (what.size() >= suffix.size() && what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
    what.resize(what.size() - suffix.size());
  }
  return what;
}

// switch_up(args...) is `greenlet.getcurrent().parent.switch(*args)`.
template <class... Args>
greenlet::value switch_up(Args&&... args) {
  return greenlet::getcurrent().parent().switch_(std::forward<Args>(args)...);
}

// simple_test_events() runs TestGreenlet._do_simple_test's greenlet and
// returns the events it recorded; {0, 1, 2, 3, 4} when switching works.
inline std::vector<int> simple_test_events() {
  std::vector<int> lst;
  greenlet::greenlet g([&lst] {
    lst.push_back(1);
    switch_up();
    lst.push_back(3);
  });
  lst.push_back(0);
  g.switch_();
  lst.push_back(2);
  g.switch_();
  lst.push_back(4);
  return lst;
}

// fmain(seen) is the module's fmain: wait in the parent; whatever is raised
// there is recorded and re-raised; a plain resume raises SomeError.
inline void fmain(std::vector<std::string>* seen) {
  try {
    switch_up();
  } catch (...) {
    seen->push_back(kind_of(std::current_exception()));
    throw;
  }
  throw SomeError();
}

// send_exception(g, e) raises e in a new child of g, so that it propagates
// to g by the parent rules (the module's send_exception).
inline void send_exception(const greenlet::greenlet& g, std::exception_ptr e) {
  greenlet::greenlet g1([](std::exception_ptr exc) { std::rethrow_exception(exc); }, g);
  g1.switch_(std::move(e));
}

// Event is threading.Event: set() once, wait() until set.
class Event {
 public:
  void set() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      set_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return set_; });
  }
  bool is_set() {
    std::lock_guard<std::mutex> lock(mutex_);
    return set_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool set_ = false;
};

}  // namespace greenlet_port
