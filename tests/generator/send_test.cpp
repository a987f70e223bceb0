// send_test.cpp: next() and send(), PEP 342's generator.send(), and the
// seed's producer/consumer as a recorded event sequence.
#include <optional>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using Send = greenlet_test::GreenletTest;
using echo_t = greenlet::generator<std::string, int>;

// echo yields what it was sent, "None" for next().
echo_t echo(std::vector<std::string>& log) {
  return echo_t([&log](echo_t::context& co) {
    std::optional<int> got = co.yield("start");
    while (true) {
      log.push_back(got ? std::to_string(*got) : "None");
      got = co.yield(got ? std::to_string(*got) : "None");
    }
  });
}

TEST_F(Send, NextAndSendResumeThePendingYield) {
  std::vector<std::string> log;
  echo_t g = echo(log);
  EXPECT_FALSE(g.started());
  EXPECT_EQ(g.next(), "start");
  EXPECT_TRUE(g.started());
  EXPECT_TRUE(g.suspended());
  EXPECT_EQ(g.send(7), "7");
  EXPECT_EQ(g.next(), "None");
  EXPECT_EQ(g.send(std::nullopt), "None");
  EXPECT_EQ(g.send(), "None");
  EXPECT_EQ(log, (std::vector<std::string>{"7", "None", "None", "None"}));
}

TEST_F(Send, SendNoneStartsIt) {
  std::vector<std::string> log;
  echo_t a = echo(log);
  EXPECT_EQ(a.send(std::nullopt), "start");
  echo_t b = echo(log);
  EXPECT_EQ(b.send(), "start");
  EXPECT_TRUE(log.empty());
}

// Python: TypeError("can't send non-None value to a just-started generator").
TEST_F(Send, ValueToJustStartedGeneratorThrows) {
  std::vector<std::string> log;
  echo_t g = echo(log);
  try {
    g.send(1);
    ADD_FAILURE() << "send(1) to an unstarted generator did not throw";
  } catch (const greenlet::generator_error& e) {
    EXPECT_EQ(e.code(), greenlet::generator_errc::just_started);
    EXPECT_NE(std::string(e.what()).find("can't send non-None value to a just-started generator"), std::string::npos)
        << e.what();
  }
  // It is still unstarted and can be started properly.
  EXPECT_FALSE(g.started());
  EXPECT_EQ(g.next(), "start");
}

TEST_F(Send, VoidSendGeneratorTakesOnlyNext) {
  greenlet::generator<int> g([](auto& co) {
    co.yield(1);
    co.yield(2);
  });
  EXPECT_EQ(g.send(), 1);
  EXPECT_EQ(g.next(), 2);
  static_assert(std::is_void_v<greenlet::generator<int>::received_type>);
  static_assert(std::is_same_v<echo_t::received_type, std::optional<int>>);
}

TEST_F(Send, MoveOnlyValuesInAndOut) {
  using gen_t = greenlet::generator<std::unique_ptr<int>, std::unique_ptr<int>>;
  gen_t g([](gen_t::context& co) {
    std::optional<std::unique_ptr<int>> got = co.yield(std::make_unique<int>(1));
    co.yield(std::move(*got));
  });
  EXPECT_EQ(*g.next(), 1);
  EXPECT_EQ(*g.send(std::make_unique<int>(2)), 2);
}

// The seed's producer/consumer, checked as an event log (the example checks
// the printed output).
TEST_F(Send, ProducerConsumer) {
  std::vector<std::string> events;
  using consumer_t = greenlet::generator<std::string, int>;
  auto consumer = [&] {
    return consumer_t([&events](consumer_t::context& co) {
      std::string r = "";
      while (true) {
        std::optional<int> n = co.yield(r);
        if (!n || *n == 0) return;
        events.push_back("consume " + std::to_string(*n));
        r = "200 OK";
      }
    });
  };
  consumer_t c = consumer();
  EXPECT_EQ(c.send(std::nullopt), "");
  for (int n = 1; n <= 2; ++n) {
    events.push_back("produce " + std::to_string(n));
    events.push_back("return " + c.send(n));
  }
  c.close();
  EXPECT_TRUE(c.finished());
  EXPECT_FALSE(c.returned());  // closed, not returned
  EXPECT_EQ(events, (std::vector<std::string>{"produce 1", "consume 1", "return 200 OK", "produce 2", "consume 2",
                                              "return 200 OK"}));
}

// A consumer that returns on `not n`: sending 0 ends it with StopIteration.
TEST_F(Send, SendThatEndsItThrowsStopIteration) {
  greenlet::generator<int, int> g([](auto& co) {
    while (true) {
      std::optional<int> n = co.yield(0);
      if (!n || *n == 0) return;
    }
  });
  g.next();
  EXPECT_EQ(g.send(3), 0);
  EXPECT_THROW(g.send(0), greenlet::StopIteration);
  EXPECT_TRUE(g.finished());
  EXPECT_TRUE(g.returned());
}

}  // namespace
