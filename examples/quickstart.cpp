// quickstart.cpp: the README's asyncio example, kept compiling and tested.
#include <cstdio>
#include <string>

#include <greenlet/asyncio.hpp>
namespace asyncio = greenlet::asyncio;

std::string fetch(int id) {
  asyncio::sleep(0.1);
  return "item " + std::to_string(id);
}  // plain function, awaits

int main() {
  asyncio::run([] {
    auto [a, b] = asyncio::gather([] { return fetch(1); }, [] { return fetch(2); });  // concurrently: 0.1 s
    std::printf("%s, %s\n", a.c_str(), b.c_str());
  });
}
