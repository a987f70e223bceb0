// generator/errors.hpp: the exception types of the generator layer.
//
// Python spells them StopIteration, GeneratorExit, and TypeError/ValueError/
// RuntimeError for misuse; here the misuse cases share generator_error and
// are told apart by their error code, in generator_category().
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "greenlet/fiber/value.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

// generator_errc names each way a generator reports the end of its run or a
// misuse; every exception of this layer carries one as its std::error_code.
enum class generator_errc {
  stop_iteration = 1,       // StopIteration: the generator returned
  already_finished,         // StopIteration: resumed after it had finished
  generator_exit,           // GeneratorExit: close() was called
  just_started,             // send(value) to an unstarted generator (Python's TypeError)
  already_executing,        // resumed while it runs (Python's ValueError)
  ignored_generator_exit,   // it yielded after close() (Python's RuntimeError)
  raised_stop_iteration,    // StopIteration escaped the body (PEP 479's RuntimeError)
  yield_outside_generator,  // yield with no running generator of that type
  foreign_switch,           // the body switched away without yielding or returning
  no_return_value,          // return_value() before the generator returned
  empty_generator,          // use of a default-constructed or moved-from generator
  null_exception,           // throw_() given a null exception_ptr (Python's TypeError)
};

namespace detail {

class generator_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "greenlet.generator"; }
  std::string message(int code) const override {
    switch (static_cast<generator_errc>(code)) {
      case generator_errc::stop_iteration: return "the generator returned";
      case generator_errc::already_finished: return "the generator had already finished";
      case generator_errc::generator_exit: return "the generator was closed";
      case generator_errc::just_started: return "start it with next() or send() first";
      case generator_errc::already_executing:
        return "a generator cannot be resumed while it runs, e.g. from its own body";
      case generator_errc::ignored_generator_exit:
        return "on GeneratorExit a generator must return or throw, not yield";
      case generator_errc::raised_stop_iteration: return "catch StopIteration inside the generator, or return instead";
      case generator_errc::yield_outside_generator: return "yield only from a generator's body, or code it calls";
      case generator_errc::foreign_switch: return "a generator's body must leave by yield or return, not switch_()";
      case generator_errc::no_return_value: return "the generator has not returned a value";
      case generator_errc::empty_generator: return "the generator is empty (default-constructed or moved from)";
      case generator_errc::null_exception: return "give throw_() an exception object, or an exception_ptr holding one";
    }
    return "unknown generator error";
  }
};

}  // namespace detail

// generator_category() is the std::error_category of generator_errc. Throws nothing; any thread (a
// function-local static).
inline const std::error_category& generator_category() noexcept {
  static const detail::generator_category_impl category;
  return category;
}

// make_error_code(e) wraps a generator_errc in a std::error_code of generator_category(), so the
// enum converts implicitly. Throws nothing; any thread.
inline std::error_code make_error_code(generator_errc e) noexcept {
  return {static_cast<int>(e), generator_category()};
}

// generator_error is a misuse of a generator: send(value) to an unstarted one,
// resuming a running one, yielding after close(), yield outside a generator.
// Its code() says which; what() starts with Python's message, e.g.
// "generator already executing". It is not a greenlet::error, whose codes
// belong to the fiber layer.
// Exception objects are not synchronized: share one between threads only read-only.
class generator_error : public std::system_error {
 public:
  // generator_error(code, what) makes the exception for misuse `code` with message `what`. Throws
  // std::bad_alloc if copying the message fails. Exception objects are not synchronized: share one
  // between threads only read-only.
  generator_error(generator_errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
};

// StopIteration is thrown by next(), send() and throw_() when the generator
// returns instead of yielding, and when it had already finished. value() is
// what the body returned (Python's StopIteration.value): e.value().get<R>()
// for a generator<Y, S, R>; it is empty for void and for an already finished
// generator (code() is then generator_errc::already_finished).
// Exception objects are not synchronized: share one between threads only read-only.
class StopIteration : public std::system_error {
 public:
  // StopIteration() carries no value (a void generator's return). Throws nothing beyond
  // std::system_error's constructor (std::bad_alloc).
  StopIteration() : std::system_error(make_error_code(generator_errc::stop_iteration), "StopIteration") {}
  // StopIteration(v) carries the shared return value v (may be null). Throws std::bad_alloc only.
  explicit StopIteration(std::shared_ptr<const ::greenlet::value> v)
      : std::system_error(make_error_code(generator_errc::stop_iteration), "StopIteration"), value_(std::move(v)) {}
  // StopIteration(code, what) makes a StopIteration with another code (already_finished) and message,
  // carrying no value. Throws std::bad_alloc if copying the message fails.
  StopIteration(generator_errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}

  // value() is the returned value; an empty greenlet::value when none. Throws nothing; read-only,
  // so any thread.
  const ::greenlet::value& value() const noexcept {
    static const ::greenlet::value none{};
    return value_ ? *value_ : none;
  }

 private:
  std::shared_ptr<const ::greenlet::value> value_;
};

// GeneratorExit is raised at the suspended yield by close(), and so when an
// unfinished generator is destroyed. A body may catch it to clean up, then
// must return or throw; yielding again makes close() throw generator_error
// (ignored_generator_exit). As Python's GeneratorExit derives from
// BaseException, this one is neither a greenlet::error nor a
// generator_error: `catch (greenlet::error&)` does not swallow a close.
// Exception objects are not synchronized: share one between threads only read-only.
class GeneratorExit : public std::system_error {
 public:
  // GeneratorExit() makes the exception (code generator_errc::generator_exit). Throws std::bad_alloc
  // only.
  GeneratorExit() : std::system_error(make_error_code(generator_errc::generator_exit), "GeneratorExit") {}
};

}  // namespace greenlet

// Makes the enum convert implicitly to std::error_code. A trait: nothing to throw, any thread.
template <>
struct std::is_error_code_enum<greenlet::generator_errc> : std::true_type {};

#pragma GCC visibility pop
