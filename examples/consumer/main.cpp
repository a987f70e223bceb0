// consumer/main.cpp: a program built against greenlet-cpp from outside.
#include <cstdio>

#include <greenlet/asyncio.hpp>
#include <greenlet/greenlet.hpp>
#include <greenlet/version.hpp>

int main() {
  greenlet::greenlet child([](int x) { return x * 2; });
  const int doubled = child.switch_(21).get<int>();
  const int slept = greenlet::asyncio::run([] { return greenlet::asyncio::sleep(0.001, 7); });
  std::printf("greenlet-cpp %s: %d %d\n", GREENLET_VERSION_STRING, doubled, slept);
  return doubled == 42 && slept == 7 ? 0 : 1;
}
