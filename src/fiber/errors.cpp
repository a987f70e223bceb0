#include "greenlet/errors.hpp"

#include <string>

namespace greenlet {

namespace {

class greenlet_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "greenlet"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::wrong_thread: return "greenlet belongs to another thread";
      case errc::thread_exited: return "greenlet's thread has exited";
      case errc::cyclic_parent: return "cyclic parent chain";
      case errc::main_parent: return "a main greenlet has no parent";
      case errc::empty_handle: return "empty greenlet handle";
      case errc::bad_value_access: return "value holds another type";
      case errc::bad_arguments: return "bad arguments";
      case errc::greenlet_exit: return "GreenletExit";
      case errc::stack_exhausted: return "no memory for a fiber stack";
      case errc::context_entered: return "context already entered";
      case errc::token_other_context: return "token made in another context";
      case errc::resume_locked: return "greenlet resumed only by its owner";
      case errc::token_used: return "token already used";
      case errc::token_other_var: return "token made by another context variable";
      case errc::context_replaced: return "context replaced inside run()";
    }
    return "unknown greenlet error";
  }
};

}  // namespace

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

const std::error_category& category() noexcept {
  static const greenlet_category instance;
  return instance;
}

}  // namespace greenlet
