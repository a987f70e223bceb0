// errors.hpp: every exception type of the fiber layer, in one place.
#pragma once

// Every layer reports through exceptions, and a greenlet's end (GreenletExit)
// unwinds its stack with one: there is no exception-free mode.
#if !defined(__cpp_exceptions) && !defined(__EXCEPTIONS)
#error "greenlet needs C++ exceptions: build without -fno-exceptions"
#endif
// A value crossing a switch is checked against the type it is read as
// (greenlet::value::get<T>(), typeid), and error reports name types: said
// here once rather than as a typeid error deep in a header.
#if !defined(__cpp_rtti) && !defined(__GXX_RTTI)
#error "greenlet needs run-time type information: build without -fno-rtti"
#endif

#include <exception>
#include <string>
#include <system_error>

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

// errc names the ways the library reports misuse; each exception carries one as
// its std::error_code, in greenlet::category().
enum class errc {
  wrong_thread = 1,  // switch/throw/parent across threads
  thread_exited,     // the greenlet's thread has exited
  cyclic_parent,     // set_parent() would make a cycle
  main_parent,       // the main greenlet has no parent to set
  empty_handle,      // operation on a default-constructed greenlet handle
  bad_value_access,  // value::get<T>() with the wrong T
  bad_arguments,     // switch_() arguments do not fit run's parameters
  greenlet_exit,     // GreenletExit
  stack_exhausted,   // no memory or mappings left for a fiber stack
  // context::run() of a context already entered (Python's RuntimeError "cannot enter context")
  context_entered,
  // context_var::reset() with a token made in another context (Python's ValueError "was created
  // in a different Context")
  token_other_context,
  resume_locked,  // switch/throw into a greenlet only its owner resumes (a waiting asyncio task's)
  // context_var::reset() with a token already used once (Python's RuntimeError "has already been
  // used once")
  token_used,
  // context_var::reset() with a token made by another context_var (Python's ValueError "was created
  // by a different ContextVar")
  token_other_var,
  // context::run() returning after fn replaced the greenlet's context (set_gr_context()): Python's
  // RuntimeError "cannot exit context: thread state references a different context object"
  context_replaced,
};

}  // namespace greenlet

// Makes the enum convert implicitly to std::error_code. A trait: nothing to throw, any thread.
template <>
struct std::is_error_code_enum<greenlet::errc> : std::true_type {};

namespace greenlet {

// category() is the std::error_category of errc. Throws nothing; any thread (a
// function-local static).
const std::error_category& category() noexcept;

// make_error_code(e) wraps an errc in a std::error_code of category(), so the enum converts
// implicitly. Throws nothing; any thread.
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

// describe_exception(e) is e's what() (or a placeholder for null or for
// exceptions not derived from std::exception), for reports. Throws only
// std::bad_alloc; any thread.
std::string describe_exception(const std::exception_ptr& e);

// error is Python's greenlet.error: a misuse of the fiber API, such as a
// switch into another thread's greenlet. The message says how to fix it.
class error : public std::system_error {
 public:
  // error(code, what) makes the exception with the given errc and message. Throws std::bad_alloc if
  // copying the message fails. Exception objects are not synchronized: share one between threads
  // only read-only.
  error(errc code, const std::string& what) : error(make_error_code(code), what) {}
  // what() is the message alone (std::system_error would append the code's).
  const char* what() const noexcept override { return what_.c_str(); }

 protected:
  // error(code, what) is for subclasses with codes of their own category (asyncio, concurrent).
  // Throws std::bad_alloc only.
  error(std::error_code code, const std::string& what) : std::system_error(code, what), what_(what) {}

 private:
  std::string what_;
};

// bad_value_access is thrown by value::get<T>() when the value holds another
// type (or nothing). It is a greenlet::error.
// Exception objects are not synchronized: share one between threads only read-only.
class bad_value_access : public error {
 public:
  // bad_value_access(what) makes the exception (code errc::bad_value_access). Throws std::bad_alloc
  // only.
  explicit bad_value_access(const std::string& what) : error(errc::bad_value_access, what) {}
};

// GreenletExit is thrown into a greenlet to kill it: by throw_() with no
// argument, and when the last handle to a suspended greenlet goes away. One
// that escapes run() is not raised in the parent: the parent's switch_()
// returns it as a value, as in Python.
//
// It is deliberately *not* a greenlet::error: `catch (greenlet::error&)` around
// a switch must not swallow a kill.
// Exception objects are not synchronized: share one between threads only read-only.
class GreenletExit : public std::system_error {
 public:
  // GreenletExit() is GreenletExit("GreenletExit"). Throws std::bad_alloc only.
  GreenletExit() : GreenletExit("GreenletExit") {}
  // GreenletExit(what) makes the exception (code errc::greenlet_exit) with the given text; the
  // default constructor uses "GreenletExit". Throws std::bad_alloc only.
  explicit GreenletExit(const std::string& what)
      : std::system_error(make_error_code(errc::greenlet_exit), what), what_(what) {}
  // what() is the text given to the constructor. Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

}  // namespace greenlet

#pragma GCC visibility pop
