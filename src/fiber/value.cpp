#include "greenlet/fiber/value.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace greenlet::detail {

namespace {

std::string type_name(const std::type_info& type) {
  if (type == typeid(void)) return "nothing";
  if (type == typeid(std::string)) return "std::string";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                   &std::free);
  return status == 0 && demangled ? demangled.get() : type.name();
}

}  // namespace

void throw_bad_value_access(const std::type_info* held, const std::type_info& wanted) {
  throw bad_value_access("greenlet::value holds " + type_name(held ? *held : typeid(void)) + ", not " +
                         type_name(wanted) +
                         ": get<T>() must name the type the other side passed to switch_() or "
                         "returned (several values arrive as std::tuple)");
}

const std::type_info& held_exit_type(const std::exception_ptr& e) noexcept {
  const GreenletExit* exit = exception_object<const GreenletExit>(e);
  return exit != nullptr ? typeid(*exit) : typeid(GreenletExit);
}

}  // namespace greenlet::detail
