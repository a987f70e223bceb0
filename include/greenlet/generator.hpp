// generator.hpp: the generator layer, Python's generators on greenlets.
//
//   greenlet::generator<int> count([](auto& co) {
//     for (int i = 0; i < 3; ++i) co.yield(i);
//   });
//   for (int i : count) std::printf("%d\n", i);  // prints 0 1 2
#pragma once

#include "greenlet/generator/errors.hpp"
#include "greenlet/generator/generator.hpp"
#include "greenlet/greenlet.hpp"
