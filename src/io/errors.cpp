// errors.cpp: io_category(), the error category of the stream layer.
#include "greenlet/io/errors.hpp"

namespace greenlet::asyncio {

namespace {

class io_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "asyncio.io"; }
  std::string message(int code) const override {
    switch (static_cast<io_errc>(code)) {
      case io_errc::incomplete_read: return "incomplete read";
      case io_errc::limit_overrun: return "limit overrun";
      case io_errc::unknown_host: return "unknown host";
    }
    return "unknown I/O error";
  }
};

}  // namespace

const std::error_category& io_category() noexcept {
  static const io_category_impl instance;
  return instance;
}

}  // namespace greenlet::asyncio
