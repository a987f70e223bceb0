// echo_line.hpp: the server handler several I/O tests start: it echoes one
// line back and closes the connection.
#pragma once

#include <greenlet/asyncio.hpp>

namespace io_test {

inline void echo_line(greenlet::asyncio::StreamReader r, greenlet::asyncio::StreamWriter w) {
  w.write(r.readline());
  w.drain();
  w.close();
}

}  // namespace io_test
