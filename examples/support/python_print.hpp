// python_print.hpp: print(...) as Python prints, for the seed's twins:
// arguments joined by spaces, a newline, nullptr shown as None.
#pragma once

#include <cstdlib>
#include <iostream>
#include <string>

namespace example {

inline void print_one(std::ostream& out, std::nullptr_t) { out << "None"; }
template <class T>
void print_one(std::ostream& out, const T& value) {
  out << value;
}

template <class... Ts>
void print(const Ts&... values) {
  bool first = true;
  ((std::cout << (first ? "" : " "), print_one(std::cout, values), first = false), ...);
  std::cout << std::endl;
}

// seconds(s) scales the seed's sleeps: the golden-output tests set
// GREENLET_EXAMPLE_TIME_SCALE=0.01 so the programs run in milliseconds.
inline double seconds(double s) {
  static const double scale = [] {
    const char* text = std::getenv("GREENLET_EXAMPLE_TIME_SCALE");
    return text != nullptr ? std::atof(text) : 1.0;
  }();
  return s * scale;
}

}  // namespace example
