// report_recorder.hpp: record_reports(loop, reports) makes the loop's
// exception handler append each report's message to `reports`.
#pragma once

#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>

namespace concurrent_test {

inline void record_reports(greenlet::asyncio::event_loop& loop, std::vector<std::string>& reports) {
  loop.set_exception_handler([&reports](greenlet::asyncio::event_loop*, const greenlet::asyncio::exception_context& c) {
    reports.push_back(c.message);
  });
}

}  // namespace concurrent_test
