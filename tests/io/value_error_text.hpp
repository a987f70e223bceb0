// value_error_text.hpp: what a call refuses with. Tests of argument checks
// compare the message, since it is what tells the user what to do.
#pragma once

#include <greenlet/asyncio.hpp>

#include <string>

namespace io_test {

// The what() of the ValueError `call` throws, or "(no ValueError)" if it
// throws none, so that a test expecting a message fails naming the cause.
template <class Call>
std::string value_error_text(Call call) {
  try {
    call();
  } catch (const greenlet::asyncio::ValueError& e) {
    return e.what();
  }
  return "(no ValueError)";
}

}  // namespace io_test
