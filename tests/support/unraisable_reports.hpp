// unraisable_reports.hpp: collects the contexts of what reaches greenlet's
// unraisable hook during a test, and puts the previous hook back after it.
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <greenlet/greenlet.hpp>

namespace greenlet_test {

// unraisable_reports collects what reaches the unraisable hook while it lives.
struct unraisable_reports {
  std::vector<std::string> seen;
  greenlet::unraisable_hook previous;
  unraisable_reports() {
    previous = greenlet::set_unraisable_hook(
        [this](std::exception_ptr, std::string_view context) { seen.emplace_back(context); });
  }
  ~unraisable_reports() { greenlet::set_unraisable_hook(std::move(previous)); }
  unraisable_reports(const unraisable_reports&) = delete;
  unraisable_reports& operator=(const unraisable_reports&) = delete;
};

}  // namespace greenlet_test
