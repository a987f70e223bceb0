// expect: greenlet needs run-time type information: build without -fno-rtti
// flags: -fno-rtti
// A program built without RTTI is told so at the first include, not by a
// typeid error inside greenlet::value.
#include <greenlet/greenlet.hpp>

int main() { return 0; }
