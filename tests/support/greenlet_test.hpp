// greenlet_test.hpp: the fixture every greenlet test uses. It fails a test
// that leaves a greenlet of this thread alive or memory allocated through
// operator new (counted by tests/support/allocation_counter.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include <greenlet/greenlet.hpp>

namespace greenlet_test {

// live_allocations() is operator new calls minus operator delete calls.
long live_allocations() noexcept;

class GreenletTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

 private:
  std::size_t greenlets_before_ = 0;
  long allocations_before_ = 0;
};

// describe() lists greenlets for failure messages: id, name, state.
std::string describe(const std::vector<greenlet::greenlet>& greenlets);

}  // namespace greenlet_test
