// smoke_test.cpp: the seed's greenlet example and the basic contract.
#include <string>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using Smoke = greenlet_test::GreenletTest;

TEST_F(Smoke, SeedExamplePrintsOneThreeTwoFour) {
  std::vector<int> printed;
  greenlet::greenlet gr1, gr2;
  gr1 = greenlet::greenlet([&] {
    printed.push_back(1);
    gr2.switch_();
    printed.push_back(2);
    gr2.switch_();
  });
  gr2 = greenlet::greenlet([&] {
    printed.push_back(3);
    gr1.switch_();
    printed.push_back(4);
  });
  gr1.switch_();
  EXPECT_EQ(printed, (std::vector<int>{1, 3, 2, 4}));
  EXPECT_TRUE(gr2.dead());
  EXPECT_FALSE(gr1.dead());  // suspended in its second switch_(); killed when released
}

}  // namespace
