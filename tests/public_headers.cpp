// public_headers.cpp: every public header in one file, compiled with the
// warnings users turn on in their own builds (tests/CMakeLists.txt), so a
// header that would warn there (-Wshadow did) fails this build instead.
// Each header on its own is checked by the examples' consumer builds.
#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>
#include <greenlet/generator.hpp>
#include <greenlet/greenlet.hpp>
#include <greenlet/io.hpp>
