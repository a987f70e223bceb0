// names_test.cpp: getaddrinfo()/getnameinfo() from a task, after CPython's
// test_base_events.py getaddrinfo cases and test_events.py
// (test_getnameinfo). "localhost" (in /etc/hosts) is the one name resolved.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <greenlet/asyncio/executor.hpp>
#include <greenlet/io.hpp>

#include "io/counting_executor.hpp"
#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using Names = greenlet_test::GreenletTest;

TEST_F(Names, ANumericHostIsAnsweredInlineWithEveryField) {
  asyncio::run([] {
    auto pool = std::make_shared<io_test::counting_executor>();
    asyncio::set_default_executor(asyncio::get_running_loop(), pool);
    auto answers = asyncio::getaddrinfo("127.0.0.1", 8080, {.type = SOCK_STREAM});
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].family, AF_INET);
    EXPECT_EQ(answers[0].type, SOCK_STREAM);
    EXPECT_EQ(answers[0].proto, IPPROTO_TCP);
    EXPECT_EQ(answers[0].addr, (asyncio::address{"127.0.0.1", 8080}));
    auto v6 = asyncio::getaddrinfo("::1", 53, {.type = SOCK_DGRAM});
    ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0].family, AF_INET6);
    EXPECT_EQ(v6[0].proto, IPPROTO_UDP);
    EXPECT_EQ(v6[0].addr, (asyncio::address{"::1", 53}));
    EXPECT_EQ(pool->submitted.load(), 0);
  });
}

TEST_F(Names, ANameGoesToTheDefaultExecutorAndHonoursTheHints) {
  asyncio::run([] {
    auto pool = std::make_shared<io_test::counting_executor>();
    asyncio::set_default_executor(asyncio::get_running_loop(), pool);
    auto answers =
        asyncio::getaddrinfo("localhost", 53, {.family = AF_INET, .type = SOCK_DGRAM, .flags = AI_CANONNAME});
    EXPECT_EQ(pool->submitted.load(), 1);
    ASSERT_FALSE(answers.empty());
    for (const auto& a : answers) {
      EXPECT_EQ(a.family, AF_INET);
      EXPECT_EQ(a.type, SOCK_DGRAM);
    }
    EXPECT_EQ(answers[0].canonname, "localhost");
    EXPECT_TRUE(std::any_of(answers.begin(), answers.end(), [](const auto& a) {
      return a.addr == asyncio::address{"127.0.0.1", 53};
    }));
  });
}

TEST_F(Names, AnEmptyHostIsPythonsNone) {
  asyncio::run([] {
    auto wildcard = asyncio::getaddrinfo("", 0, {.family = AF_INET, .type = SOCK_STREAM, .flags = AI_PASSIVE});
    ASSERT_EQ(wildcard.size(), 1u);
    EXPECT_EQ(wildcard[0].addr.host, "0.0.0.0");
    auto loopback = asyncio::getaddrinfo("", 0, {.family = AF_INET, .type = SOCK_STREAM});
    ASSERT_EQ(loopback.size(), 1u);
    EXPECT_EQ(loopback[0].addr.host, "127.0.0.1");
  });
}

TEST_F(Names, AServiceGivenByNameOrNumberText) {
  asyncio::run([] {
    auto by_number = asyncio::getaddrinfo("127.0.0.1", "8080", {.type = SOCK_STREAM});
    ASSERT_EQ(by_number.size(), 1u);
    EXPECT_EQ(by_number[0].addr.port, 8080);
    auto by_name = asyncio::getaddrinfo("127.0.0.1", "ssh", {.type = SOCK_STREAM});  // /etc/services
    ASSERT_EQ(by_name.size(), 1u);
    EXPECT_EQ(by_name[0].addr.port, 22);
  });
}

TEST_F(Names, BadInputIsRefusedBeforeAnyLookup) {
  asyncio::run([] {
    EXPECT_THROW(asyncio::getaddrinfo("127.0.0.1", 70000), std::out_of_range);
    EXPECT_THROW(asyncio::getaddrinfo("127.0.0.1", -1), std::out_of_range);
    EXPECT_THROW(asyncio::getaddrinfo(std::string("local\0host", 10), 80), asyncio::ValueError);
    try {
      asyncio::getaddrinfo("127.0.0.1", "no-such-service-here", {.type = SOCK_STREAM});
      ADD_FAILURE() << "an unknown service resolved";
    } catch (const asyncio::gaierror& e) {
      EXPECT_NE(std::string(e.what()).find("no-such-service-here"), std::string::npos) << e.what();
    }
    try {
      asyncio::getaddrinfo("999.1.2.3", 80, {.flags = AI_NUMERICHOST});
      ADD_FAILURE() << "a bad numeric host resolved";
    } catch (const asyncio::gaierror& e) {
      EXPECT_NE(std::string(e.what()).find("'999.1.2.3'"), std::string::npos) << e.what();
    }
  });
}

TEST_F(Names, GetnameinfoNamesHostAndService) {
  asyncio::run([] {
    EXPECT_EQ(asyncio::getnameinfo({"127.0.0.1", 22}, NI_NUMERICHOST | NI_NUMERICSERV),
              (std::pair<std::string, std::string>{"127.0.0.1", "22"}));
    EXPECT_EQ(asyncio::getnameinfo({"127.0.0.1", 22}), (std::pair<std::string, std::string>{"localhost", "ssh"}));
    EXPECT_EQ(asyncio::getnameinfo({"127.0.0.1", 53}, NI_DGRAM | NI_NUMERICHOST).second, "domain");
    try {
      asyncio::getnameinfo({"localhost", 22});
      ADD_FAILURE() << "a name was taken for an address";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("getaddrinfo()"), std::string::npos) << e.what();
    }
  });
}

TEST_F(Names, OutsideATaskIsAClearError) { EXPECT_THROW(asyncio::getaddrinfo("localhost", 80), asyncio::RuntimeError); }

}  // namespace
