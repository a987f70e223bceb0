// genlet.hpp: greenlet's test_generator*.py build their generators (genlets)
// on one class and yield through a module-level Yield(); the ports share it.
#pragma once

#include <greenlet/generator.hpp>

namespace generator_test {

using genlet = greenlet::generator<int>;

// Yield(value) is the Python module's Yield: yield from the innermost genlet.
inline void Yield(int value) { genlet::yield(value); }

}  // namespace generator_test
