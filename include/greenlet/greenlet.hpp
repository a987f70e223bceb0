// greenlet.hpp: the fiber layer, Python's greenlet in C++.
//
//   greenlet::greenlet gr1, gr2;
//   gr1 = greenlet::greenlet([&] { puts("1"); gr2.switch_(); puts("2"); gr2.switch_(); });
//   gr2 = greenlet::greenlet([&] { puts("3"); gr1.switch_(); puts("4"); });
//   gr1.switch_();  // prints 1 3 2 4
#pragma once

#include "greenlet/errors.hpp"
#include "greenlet/fiber/context.hpp"
#include "greenlet/fiber/greenlet.hpp"
#include "greenlet/fiber/value.hpp"
