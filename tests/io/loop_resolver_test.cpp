// loop_resolver_test.cpp: set_resolver(), a loop's own answer to host names (what Python code gets
// by overriding loop.getaddrinfo()): every lookup of the loop's tasks asks it, getaddrinfo() and
// those of open_connection(), start_server(), create_datagram_endpoint() and sock_connect(); its
// answers are checked; system_getaddrinfo() is super().getaddrinfo(); it goes with the loop.
//
// The names end in ".test" (RFC 6761): no resolver outside these tests answers them, and the
// system's getaddrinfo() is never asked for one (with no network it could wait seconds on DNS).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio/executor.hpp>
#include <greenlet/io.hpp>

#include "io/counting_executor.hpp"
#include "io/echo_line.hpp"
#include "support/greenlet_test.hpp"

// A named namespace: the unity build compiles this file with others.
namespace loop_resolver_test {

namespace asyncio = greenlet::asyncio;
using LoopResolver = greenlet_test::GreenletTest;
using Entries = std::vector<asyncio::addrinfo_entry>;

// One lookup as the resolver saw it.
struct asked {
  std::string host, service;
  asyncio::addrinfo_hints hints;
};

// table_resolver answers "<anything>.test" with `host` (numeric) and the port asked for, and
// records each call.
struct table_resolver {
  std::shared_ptr<std::vector<asked>> calls = std::make_shared<std::vector<asked>>();
  std::string host = "127.0.0.1";
  asyncio::resolver_fn fn() const {
    return [calls = calls, host = host](const std::string& name, const std::string& service,
                                        const asyncio::addrinfo_hints& hints) {
      calls->push_back({name, service, hints});
      return Entries{{0, 0, 0, "", {host, std::stoi(service)}}};
    };
  }
};

TEST_F(LoopResolver, GetaddrinfoAsksItForNamesOnlyAndFillsInTheFamilyAndType) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto pool = std::make_shared<io_test::counting_executor>();
    asyncio::set_default_executor(loop, pool);
    table_resolver table;
    asyncio::set_resolver(loop, table.fn());

    const Entries answers = asyncio::getaddrinfo("db.test", 5432, {.type = SOCK_STREAM});
    ASSERT_EQ(answers.size(), 1U);
    EXPECT_EQ(answers[0].family, AF_INET);  // 0 in the answer: the address's
    EXPECT_EQ(answers[0].type, SOCK_STREAM);
    EXPECT_EQ(answers[0].addr, (asyncio::address{"127.0.0.1", 5432}));
    ASSERT_EQ(table.calls->size(), 1U);
    EXPECT_EQ((*table.calls)[0].host, "db.test");
    EXPECT_EQ((*table.calls)[0].service, "5432");
    EXPECT_EQ((*table.calls)[0].hints.type, SOCK_STREAM);

    // A service name reaches it as given.
    EXPECT_EQ(asyncio::getaddrinfo("web.test", "80").at(0).addr.port, 80);
    EXPECT_EQ(table.calls->back().service, "80");

    // Numeric hosts, "" and AI_NUMERICHOST lookups are answered without it.
    EXPECT_EQ(asyncio::getaddrinfo("192.0.2.7", 80, {.type = SOCK_STREAM}).at(0).addr.host, "192.0.2.7");
    EXPECT_EQ(asyncio::getaddrinfo("::1", 80, {.type = SOCK_STREAM}).at(0).family, AF_INET6);
    EXPECT_FALSE(asyncio::getaddrinfo("", 80, {.type = SOCK_STREAM, .flags = AI_PASSIVE}).empty());
    EXPECT_THROW(asyncio::getaddrinfo("db.test", 80, {.flags = AI_NUMERICHOST}), asyncio::gaierror);
    EXPECT_EQ(table.calls->size(), 2U);
    EXPECT_EQ(pool->submitted.load(), 0);  // the system's getaddrinfo() was never sent a name
  });
}

TEST_F(LoopResolver, OpenConnectionStartServerAndSockConnectGoThroughIt) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    table_resolver table;
    asyncio::set_resolver(loop, table.fn());

    // The server binds the resolver's answer for its name, asked as a passive TCP lookup.
    asyncio::Server server = asyncio::start_server(io_test::echo_line, "server.test", 0);
    ASSERT_EQ(table.calls->size(), 1U);
    EXPECT_EQ((*table.calls)[0].host, "server.test");
    EXPECT_EQ((*table.calls)[0].hints.type, SOCK_STREAM);
    EXPECT_NE((*table.calls)[0].hints.flags & AI_PASSIVE, 0);
    ASSERT_EQ(server.sockets().size(), 1U);

    auto [reader, writer] = asyncio::open_connection("client.test", server.port());
    EXPECT_EQ(table.calls->back().host, "client.test");
    EXPECT_EQ(table.calls->back().service, std::to_string(server.port()));
    EXPECT_EQ((table.calls->back().hints.flags & AI_PASSIVE), 0);
    EXPECT_EQ(writer.get_extra_info("peername"), (asyncio::address{"127.0.0.1", server.port()}));
    writer.write("hello\n");
    EXPECT_EQ(reader.readline(), "hello\n");
    writer.close();
    writer.wait_closed();

    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    asyncio::sock_connect(fd, "raw.test", server.port());
    EXPECT_EQ(table.calls->back().host, "raw.test");
    EXPECT_EQ(table.calls->back().hints.type, SOCK_STREAM);
    ::close(fd);
    EXPECT_EQ(table.calls->size(), 3U);
    server.close();
    server.wait_closed();
  });
}

TEST_F(LoopResolver, DatagramEndpointsAndSockSendtoAskForDatagramAddresses) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    table_resolver table;
    asyncio::set_resolver(loop, table.fn());
    auto [transport, protocol] = asyncio::create_datagram_endpoint(
        [] { return std::make_shared<asyncio::DatagramProtocol>(); }, {.remote_addr = asyncio::address{"udp.test", 9}});
    ASSERT_EQ(table.calls->size(), 1U);
    EXPECT_EQ((*table.calls)[0].host, "udp.test");
    EXPECT_EQ((*table.calls)[0].hints.type, SOCK_DGRAM);
    EXPECT_EQ(transport.get_extra_info("peername"), (asyncio::address{"127.0.0.1", 9}));
    transport.close();

    // sock_sendto() to a name asks for datagram addresses of the socket's type too.
    const int receiver = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int sender = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(receiver, 0);
    ASSERT_GE(sender, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof local;
    ASSERT_EQ(::bind(receiver, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
    ASSERT_EQ(::getsockname(receiver, reinterpret_cast<sockaddr*>(&local), &len), 0);
    asyncio::sock_sendto(sender, "ping", asyncio::address{"peer.test", ntohs(local.sin_port)});
    EXPECT_EQ(table.calls->back().host, "peer.test");
    EXPECT_EQ(table.calls->back().hints.type, SOCK_DGRAM);
    EXPECT_EQ(asyncio::sock_recvfrom(receiver, 16).first, "ping");
    ::close(sender);
    ::close(receiver);
  });
}

TEST_F(LoopResolver, ConnectOptionsResolverAnswersForItsOwnCallFirst) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    asyncio::Server server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0);
    table_resolver loop_table;
    loop_table.host = "192.0.2.1";  // would not connect
    asyncio::set_resolver(loop, loop_table.fn());
    int per_call = 0;
    asyncio::connect_options options;
    options.resolver = [&](const std::string&, int port) {
      ++per_call;
      return std::vector<asyncio::address>{{"127.0.0.1", port}};
    };
    auto [reader, writer] = asyncio::open_connection("both.test", server.port(), options);
    EXPECT_EQ(per_call, 1);
    EXPECT_TRUE(loop_table.calls->empty());
    writer.close();
    writer.wait_closed();
    server.close();
    server.wait_closed();
  });
}

// The resolver runs in the task that looks up, so it may await; lookups of several tasks overlap.
TEST_F(LoopResolver, ItRunsInTheLookingUpTaskAndMayAwait) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    std::vector<std::string> order;
    asyncio::set_resolver(
        loop, [&](const std::string& host, const std::string& service, const asyncio::addrinfo_hints&) {
          order.push_back(host + " asked in " + asyncio::current_task().get_name());
          asyncio::sleep(host == "slow.test" ? 0.02 : 0.0);
          order.push_back(host + " answered");
          return Entries{{AF_INET6, SOCK_STREAM, IPPROTO_TCP, "canonical.test", {"::1", std::stoi(service)}}};
        });
    auto slow = asyncio::create_task([] { return asyncio::getaddrinfo("slow.test", 1); }, "slow");
    auto fast = asyncio::create_task([] { return asyncio::getaddrinfo("fast.test", 2); }, "fast");
    const Entries fast_answer = asyncio::await(fast);
    const Entries slow_answer = asyncio::await(slow);
    EXPECT_EQ(order, (std::vector<std::string>{"slow.test asked in slow", "fast.test asked in fast",
                                               "fast.test answered", "slow.test answered"}));
    ASSERT_EQ(slow_answer.size(), 1U);
    EXPECT_EQ(slow_answer[0].canonname, "canonical.test");
    EXPECT_EQ(slow_answer[0].proto, IPPROTO_TCP);
    EXPECT_EQ(slow_answer[0].addr, (asyncio::address{"::1", 1}));
    EXPECT_EQ(fast_answer.at(0).addr.port, 2);
  });
}

TEST_F(LoopResolver, AnswersAreFilteredByTheHints) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    asyncio::set_resolver(loop, [](const std::string&, const std::string&, const asyncio::addrinfo_hints&) {
      return Entries{{AF_INET, SOCK_STREAM, IPPROTO_TCP, "", {"192.0.2.1", 80}},
                     {AF_INET, SOCK_DGRAM, IPPROTO_UDP, "", {"192.0.2.1", 80}},
                     {AF_INET6, SOCK_STREAM, IPPROTO_TCP, "", {"2001:db8::1", 80}}};
    });
    EXPECT_EQ(asyncio::getaddrinfo("any.test", 80).size(), 3U);
    const Entries v6 = asyncio::getaddrinfo("any.test", 80, {.family = AF_INET6});
    ASSERT_EQ(v6.size(), 1U);
    EXPECT_EQ(v6[0].addr.host, "2001:db8::1");
    const Entries udp = asyncio::getaddrinfo("any.test", 80, {.type = SOCK_DGRAM});
    ASSERT_EQ(udp.size(), 1U);
    EXPECT_EQ(udp[0].proto, IPPROTO_UDP);
    EXPECT_EQ(asyncio::getaddrinfo("any.test", 80, {.proto = IPPROTO_TCP}).size(), 2U);
    try {
      asyncio::getaddrinfo("any.test", 80, {.family = AF_INET6, .type = SOCK_DGRAM});
      ADD_FAILURE() << "no answer matches: expected gaierror";
    } catch (const asyncio::gaierror& e) {
      EXPECT_EQ(e.eai(), EAI_NONAME);
      EXPECT_NE(
          std::string(e.what()).find(
              "the loop's resolver returned no address of family AF_INET6, only answers of another type or protocol"),
          std::string::npos)
          << e.what();
    }
  });
}

TEST_F(LoopResolver, BadAnswersAndItsOwnErrorsComeOutOfTheLookup) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    Entries answer;
    asyncio::set_resolver(loop, [&](const std::string& host, const std::string&, const asyncio::addrinfo_hints&) {
      if (host == "refused.test") throw std::runtime_error("service discovery is down");
      return answer;
    });
    try {
      asyncio::getaddrinfo("empty.test", 80);
      ADD_FAILURE() << "expected gaierror";
    } catch (const asyncio::gaierror& e) {
      EXPECT_EQ(e.eai(), EAI_NONAME);
      EXPECT_STREQ(e.what(), "cannot resolve host 'empty.test' (port 80): the loop's resolver returned no address");
    }
    answer = {{0, 0, 0, "", {"other.test", 80}}};
    try {
      asyncio::open_connection("name.test", 80);
      ADD_FAILURE() << "expected ValueError";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("answered \"other.test\" for host 'name.test'"), std::string::npos)
          << e.what();
    }
    answer = {{AF_INET6, 0, 0, "", {"127.0.0.1", 80}}};
    try {
      asyncio::getaddrinfo("family.test", 80);
      ADD_FAILURE() << "expected ValueError";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("127.0.0.1 as AF_INET6"), std::string::npos) << e.what();
    }
    try {
      asyncio::open_connection("refused.test", 80);
      ADD_FAILURE() << "expected the resolver's own error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "service discovery is down");
    }
  });
}

// Inside the resolver, system_getaddrinfo() is Python's super().getaddrinfo(); a lookup that would
// ask the resolver again is refused rather than recursing until the stack overflows. After a
// refusal, an error or a cancellation, the same task may look up through it again.
TEST_F(LoopResolver, ItMayCallTheSystemButNotItself) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    int depth = 0;
    asyncio::set_resolver(
        loop, [&](const std::string& host, const std::string& service, const asyncio::addrinfo_hints& hints) {
          ++depth;
          if (host == "alias.test") return asyncio::system_getaddrinfo("localhost", service, hints);
          return asyncio::getaddrinfo("loop.test", service, hints);
        });
    const Entries local = asyncio::getaddrinfo("alias.test", 8080, {.family = AF_INET, .type = SOCK_STREAM});
    ASSERT_FALSE(local.empty());
    EXPECT_EQ(local[0].addr, (asyncio::address{"127.0.0.1", 8080}));
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        asyncio::getaddrinfo("self.test", 80);
        ADD_FAILURE() << "expected RuntimeError";
      } catch (const asyncio::RuntimeError& e) {
        EXPECT_EQ(e.code(), asyncio::asyncio_errc::resolver_recursion);
        EXPECT_NE(std::string(e.what()).find("looking up host 'loop.test' from within the loop's resolver"),
                  std::string::npos)
            << e.what();
      }
    }
    EXPECT_EQ(depth, 3);  // once for alias.test, once for each self.test: never recursing
  });
}

TEST_F(LoopResolver, CancellingALookupInsideItLeavesItUsable) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    asyncio::Event never;
    asyncio::set_resolver(loop,
                          [&](const std::string& host, const std::string& service, const asyncio::addrinfo_hints&) {
                            if (host == "hang.test") never.wait();
                            return Entries{{0, 0, 0, "", {"127.0.0.1", std::stoi(service)}}};
                          });
    EXPECT_THROW(asyncio::wait_for([] { return asyncio::getaddrinfo("hang.test", 80); }, 0.01), asyncio::TimeoutError);
    EXPECT_EQ(asyncio::getaddrinfo("next.test", 81).at(0).addr.port, 81);
  });
}

TEST_F(LoopResolver, SetGetAndResetChainAndGoWithTheLoop) {
  auto loop = asyncio::new_event_loop();
  EXPECT_FALSE(asyncio::get_resolver(*loop));
  auto owned = std::make_shared<int>(0);
  asyncio::set_resolver(*loop, [owned](const std::string&, const std::string& service, const asyncio::addrinfo_hints&) {
    return Entries{{0, 0, 0, "", {"127.0.0.2", std::stoi(service)}}};
  });
  EXPECT_EQ(owned.use_count(), 2);
  // A second resolver passes on to the first for what it does not know.
  asyncio::resolver_fn first = asyncio::get_resolver(*loop);
  ASSERT_TRUE(first);
  asyncio::set_resolver(
      *loop, [first](const std::string& host, const std::string& service, const asyncio::addrinfo_hints& hints) {
        if (host == "special.test") return Entries{{0, 0, 0, "", {"127.0.0.3", std::stoi(service)}}};
        return first(host, service, hints);
      });
  first = nullptr;
  EXPECT_EQ(owned.use_count(), 2);  // held by the second one now
  loop->run_until_complete([] {
    EXPECT_EQ(asyncio::getaddrinfo("special.test", 1).at(0).addr.host, "127.0.0.3");
    EXPECT_EQ(asyncio::getaddrinfo("plain.test", 1).at(0).addr.host, "127.0.0.2");
  });
  // nullptr goes back to the system's getaddrinfo() ("localhost" is in /etc/hosts).
  asyncio::resolver_fn kept = asyncio::get_resolver(*loop);
  asyncio::set_resolver(*loop, nullptr);
  EXPECT_FALSE(asyncio::get_resolver(*loop));
  loop->run_until_complete([] {
    const Entries local = asyncio::getaddrinfo("localhost", 1, {.family = AF_INET, .type = SOCK_STREAM});
    EXPECT_EQ(local.at(0).addr.host, "127.0.0.1");
  });
  asyncio::set_resolver(*loop, kept);
  kept = nullptr;
  EXPECT_EQ(owned.use_count(), 2);
  asyncio::shutdown_default_executor(*loop);
  loop->close();
  EXPECT_EQ(owned.use_count(), 1);  // closing the loop dropped it
  EXPECT_THROW(asyncio::set_resolver(*loop, nullptr), asyncio::RuntimeError);
  EXPECT_FALSE(asyncio::get_resolver(*loop));

  // A new loop (perhaps at the same address) starts without one; two loops keep their own.
  auto a = asyncio::new_event_loop();
  auto b = asyncio::new_event_loop();
  EXPECT_FALSE(asyncio::get_resolver(*a));
  table_resolver table_a, table_b;
  table_a.host = "127.0.0.4";
  table_b.host = "127.0.0.5";
  asyncio::set_resolver(*a, table_a.fn());
  asyncio::set_resolver(*b, table_b.fn());
  a->run_until_complete([] { EXPECT_EQ(asyncio::getaddrinfo("x.test", 1).at(0).addr.host, "127.0.0.4"); });
  b->run_until_complete([] { EXPECT_EQ(asyncio::getaddrinfo("x.test", 1).at(0).addr.host, "127.0.0.5"); });
  a->close();
  b->close();
}

TEST_F(LoopResolver, SettingItFromAnotherThreadIsRefused) {
  auto loop = asyncio::new_event_loop();
  bool refused = false;
  std::thread other([&] {
    try {
      asyncio::set_resolver(*loop, nullptr);
    } catch (const asyncio::RuntimeError&) {
      refused = true;
    }
  });
  other.join();
  EXPECT_TRUE(refused);
  loop->close();
}

}  // namespace loop_resolver_test
