// expect: greenlet needs C\+\+ exceptions: build without -fno-exceptions
// flags: -fno-exceptions
// A program built without exceptions is told so at the first include, not by
// errors deep inside the headers.
#include <greenlet/greenlet.hpp>

int main() { return 0; }
