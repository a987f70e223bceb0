// cpython_test_protocols.hpp: test_events.py's MyBaseProto and MyProto, as the protocol ports
// (tests/io/cpython_events_protocol_port_test.cpp, cpython_events_protocol_ssl_port_test.cpp) use them.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

namespace cpython_test_protocols {

namespace asyncio = greenlet::asyncio;

// MyBaseProto / MyProto are test_events.py's: the states a connection goes through, the bytes
// it got; MyProto sends an HTTP/1.0 request once connected.
struct MyBaseProto : asyncio::Protocol {
  asyncio::Transport transport;
  std::string state = "INITIAL";
  std::size_t nbytes = 0;
  std::optional<asyncio::Future<void>> connected;
  std::optional<asyncio::Future<void>> done;

  MyBaseProto() = default;
  explicit MyBaseProto(asyncio::event_loop& loop) : connected(loop.create_future()), done(loop.create_future()) {}

  void connection_made(asyncio::Transport& t) override {
    transport = t;
    EXPECT_EQ("INITIAL", state);
    state = "CONNECTED";
    if (connected) connected->set_result();
  }
  void data_received(std::string_view data) override {
    EXPECT_EQ("CONNECTED", state);
    nbytes += data.size();
  }
  bool eof_received() override {
    EXPECT_EQ("CONNECTED", state);
    state = "EOF";
    return false;
  }
  void connection_lost(std::exception_ptr) override {
    EXPECT_TRUE(state == "CONNECTED" || state == "EOF") << state;
    state = "CLOSED";
    if (done) done->set_result();
  }
};

struct MyProto : MyBaseProto {
  using MyBaseProto::MyBaseProto;
  void connection_made(asyncio::Transport& t) override {
    MyBaseProto::connection_made(t);
    t.write("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
  }
};

}  // namespace cpython_test_protocols
