// connect_options_test.cpp: open_connection()/create_connection() with asyncio's keyword
// arguments family=, happy_eyeballs_delay=, interleave=, all_errors= and local_addr=
// (asyncio::connect_options), and the Happy Eyeballs race behind them.
//
// A host name that resolves to several addresses is what the race is for. This machine's names
// resolve to one, so the tests answer their own names with connect_options::resolver (CPython's
// test_base_events mocks getaddrinfo for the same reason), giving the addresses of listeners they
// make: a listener whose accept queue is full drops SYNs, so a connect to it hangs as one to an
// unreachable address does.
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <greenlet/io.hpp>

#include "io/echo_line.hpp"
#include "io/ipv6_loopback.hpp"
#include "support/greenlet_test.hpp"

// A named namespace: the unity build compiles this file with others.
namespace connect_options_test {

namespace asyncio = greenlet::asyncio;
using ConnectOptions = greenlet_test::GreenletTest;
using HappyEyeballs = greenlet_test::GreenletTest;
using Addresses = std::vector<asyncio::address>;

// A socket of the test's own, closed with it.
struct test_socket {
  int fd = -1;
  explicit test_socket(int f) : fd(f) {}
  test_socket(const test_socket&) = delete;
  test_socket& operator=(const test_socket&) = delete;
  ~test_socket() {
    if (fd >= 0) ::close(fd);
  }
};

// The loopback address of family with port, as a socket address and its length.
struct loopback {
  sockaddr_storage ss{};
  socklen_t len = 0;
  loopback(int family, int port) {
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      in->sin_port = htons(static_cast<std::uint16_t>(port));
      len = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      in6->sin6_port = htons(static_cast<std::uint16_t>(port));
      len = sizeof(sockaddr_in6);
    }
  }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

// A loopback listener of `family` that completes handshakes (nobody accepts until the test does).
struct listener {
  test_socket sock;
  asyncio::address addr;
  explicit listener(int family = AF_INET, int backlog = 16) : sock(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    loopback any(family, 0);
    EXPECT_EQ(::bind(sock.fd, any.get(), any.len), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(sock.fd, backlog), 0);
    ::getsockname(sock.fd, reinterpret_cast<sockaddr*>(&any.ss), &any.len);
    const int port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&any.ss)->sin_port)
                                       : ntohs(reinterpret_cast<sockaddr_in6*>(&any.ss)->sin6_port);
    addr = {family == AF_INET ? "127.0.0.1" : "::1", port};
  }
};

// A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it
// neither succeeds nor fails until TCP gives up (minutes), as one to a host that drops packets.
struct blackhole {
  listener l;
  test_socket filler;
  explicit blackhole(int family = AF_INET) : l(family, 0), filler(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const loopback to(family, l.addr.port);
    EXPECT_EQ(::connect(filler.fd, to.get(), to.len), 0) << std::strerror(errno);
  }
  const asyncio::address& addr() const { return l.addr; }
};

// An address nobody listens on: a connect to it is refused at once.
asyncio::address refused_address(int family = AF_INET) {
  const listener probe(family);
  return probe.addr;  // the listener closes here, and its port with it
}

// answering(addresses) is a resolver that answers every name with addresses.
auto answering(Addresses addresses) {
  return [addresses](const std::string&, int) { return addresses; };
}

// connect_to(addresses, options) is open_connection("service.test", 80, options) with a
// resolver answering addresses: the address it connected to, once the connection is closed again.
asyncio::address connect_to(const Addresses& addresses, asyncio::connect_options options) {
  options.resolver = answering(addresses);
  auto [reader, writer] = asyncio::open_connection("service.test", 80, options);
  asyncio::address peer = writer.get_extra_info("peername");
  writer.close();
  writer.wait_closed();
  return peer;
}

std::size_t open_descriptors() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // opendir's own
}

// cut_short(addresses, options) runs connect_to() under wait_for(..., 0.2): whether it timed out,
// and how many more descriptors are open afterwards than before.
struct cut_short_outcome {
  bool timed_out = false;
  long leaked = 0;
};
cut_short_outcome cut_short(const Addresses& addresses, const asyncio::connect_options& options) {
  cut_short_outcome out;
  asyncio::run([&] {
    const std::size_t before = open_descriptors();
    try {
      asyncio::wait_for([&] { return connect_to(addresses, options); }, 0.2);
    } catch (const asyncio::TimeoutError&) {
      out.timed_out = true;
    }
    out.leaked = static_cast<long>(open_descriptors()) - static_cast<long>(before);
  });
  return out;
}

// whats(group) is the what() of each member of an ExceptionGroup.
std::vector<std::string> whats(const asyncio::ExceptionGroup& group) {
  std::vector<std::string> out;
  for (const std::exception_ptr& e : group.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      out.push_back(x.what());
    }
  }
  return out;
}

std::string refused_what(const asyncio::address& a) {
  const std::string host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
  return "connect to " + host + ":" + std::to_string(a.port) + ": Connection refused";
}

// attempt_order(addresses, options) is the addresses open_connection() tried, in order, when all
// of them refuse: read from the all_errors group.
std::vector<std::string> attempt_order(const Addresses& addresses, asyncio::connect_options options) {
  options.resolver = answering(addresses);
  options.all_errors = true;
  std::vector<std::string> out;
  asyncio::run([&] {
    try {
      asyncio::open_connection("service.test", 80, options);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const asyncio::ExceptionGroup& group) {
      out = whats(group);
    }
  });
  return out;
}

TEST_F(HappyEyeballs, InterleaveAlternatesTheFamiliesInTheOrderTheyCome) {
  // As CPython's test__interleave_addrinfos: two IPv6 addresses then two IPv4 ones.
  if (!io_test::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback";
  const Addresses v6_first = {refused_address(AF_INET6), refused_address(AF_INET6), refused_address(AF_INET),
                              refused_address(AF_INET)};
  const auto refusals = [](const Addresses& order) {
    std::vector<std::string> out;
    for (const auto& a : order) out.push_back(refused_what(a));
    return out;
  };
  const auto& [a, b, c, d] = std::tie(v6_first[0], v6_first[1], v6_first[2], v6_first[3]);
  // Default: getaddrinfo()'s order one at a time, interleaved by family with a delay.
  EXPECT_EQ(attempt_order(v6_first, {}), refusals({a, b, c, d}));
  EXPECT_EQ(attempt_order(v6_first, {.happy_eyeballs_delay = 0.01}), refusals({a, c, b, d}));
  EXPECT_EQ(attempt_order(v6_first, {.interleave = 1}), refusals({a, c, b, d}));
  EXPECT_EQ(attempt_order(v6_first, {.interleave = 2}), refusals({a, b, c, d}));
  EXPECT_EQ(attempt_order(v6_first, {.happy_eyeballs_delay = 0.01, .interleave = 0}), refusals({a, b, c, d}));
  const Addresses v4_first = {c, d, refused_address(AF_INET), a};
  EXPECT_EQ(attempt_order(v4_first, {.interleave = 1}), refusals({c, a, d, v4_first[2]}));
  EXPECT_EQ(attempt_order(v4_first, {.interleave = 2}), refusals({c, d, a, v4_first[2]}));
}

TEST_F(HappyEyeballs, TheNextAddressWinsWhileTheFirstHangs) {
  // CPython's test_create_connection_happy_eyeballs: the first address does not answer, so the
  // second is tried happy_eyeballs_delay later and wins; the first attempt is cancelled.
  const blackhole silent;
  const listener good;
  double elapsed = 0;
  asyncio::address peer;
  std::size_t before = 0;
  std::size_t after = 0;
  asyncio::run([&] {
    before = open_descriptors();
    const double start = asyncio::get_running_loop().time();
    peer = connect_to({silent.addr(), good.addr}, {.happy_eyeballs_delay = 0.05});
    elapsed = asyncio::get_running_loop().time() - start;
    after = open_descriptors();
  });
  EXPECT_EQ(peer.port, good.addr.port);
  EXPECT_GE(elapsed, 0.04);
  EXPECT_LT(elapsed, 5.0);
  EXPECT_EQ(after, before) << "the hanging attempt's socket was not closed";
}

TEST_F(HappyEyeballs, OneAtATimeTheHangingAddressHoldsTheCall) {
  // Without happy_eyeballs_delay the second address is only tried once the first fails.
  const blackhole silent;
  const listener good;
  const cut_short_outcome out = cut_short({silent.addr(), good.addr}, {});
  EXPECT_TRUE(out.timed_out);
  EXPECT_EQ(out.leaked, 0);
}

TEST_F(HappyEyeballs, AFailedAttemptStartsTheNextAtOnce) {
  // staggered_race(): the next attempt starts when the one before it fails, not only after the
  // delay (here far longer than the test may take, or infinite: only failures start the next).
  const asyncio::address refused = refused_address();
  const listener good;
  for (const double delay : {60.0, std::numeric_limits<double>::infinity()}) {
    double elapsed = 0;
    asyncio::address peer;
    asyncio::run([&] {
      const double start = asyncio::get_running_loop().time();
      peer = connect_to({refused, good.addr}, {.happy_eyeballs_delay = delay});
      elapsed = asyncio::get_running_loop().time() - start;
    });
    EXPECT_EQ(peer.port, good.addr.port) << delay;
    EXPECT_LT(elapsed, 30.0) << delay;
  }
}

TEST_F(HappyEyeballs, AHangingAttemptIsNotRestartedByALaterFailure) {
  // Only the failure of the attempt started last starts the next: [hangs, refused, good] with a
  // long delay never gets past the first.
  const blackhole silent;
  const asyncio::address refused = refused_address();
  const listener good;
  const cut_short_outcome out = cut_short({silent.addr(), refused, good.addr}, {.happy_eyeballs_delay = 60.0});
  EXPECT_TRUE(out.timed_out);
  EXPECT_EQ(out.leaked, 0);
}

TEST_F(HappyEyeballs, EveryAddressRefusedRaisesTheLastOnesError) {
  const asyncio::address first = refused_address();
  const asyncio::address second = refused_address();
  for (const std::optional<double> delay : {std::optional<double>{}, std::optional<double>{0.01}}) {
    std::string what;
    asyncio::run([&] {
      try {
        connect_to({first, second}, {.happy_eyeballs_delay = delay});
        ADD_FAILURE() << "connected to a closed port";
      } catch (const asyncio::ConnectionRefusedError& e) {
        what = e.what();
      }
    });
    EXPECT_EQ(what, refused_what(second)) << (delay ? "racing" : "one at a time");
  }
}

TEST_F(HappyEyeballs, AllErrorsRaisesAGroupOfEveryAttemptsErrorInOrder) {
  // CPython's test_create_connection_multiple_errors with all_errors=True.
  const asyncio::address first = refused_address();
  const asyncio::address second = refused_address();
  for (const std::optional<double> delay : {std::optional<double>{}, std::optional<double>{0.01}}) {
    std::string message;
    std::vector<std::string> members;
    bool all_refused = true;
    asyncio::run([&] {
      try {
        connect_to({first, second}, {.happy_eyeballs_delay = delay, .all_errors = true});
        ADD_FAILURE() << "connected to a closed port";
      } catch (const asyncio::ExceptionGroup& group) {
        message = group.message();
        members = whats(group);
        for (const auto& e : group.exceptions()) {
          try {
            std::rethrow_exception(e);
          } catch (const asyncio::ConnectionRefusedError&) {
          } catch (...) {
            all_refused = false;
          }
        }
      }
    });
    EXPECT_EQ(message, "create_connection failed");
    EXPECT_EQ(members, (std::vector<std::string>{refused_what(first), refused_what(second)}));
    EXPECT_TRUE(all_refused);
  }
}

TEST_F(HappyEyeballs, BindFailuresOnEveryAddressAreTheErrors) {
  // CPython's test_create_connection_multiple_errors_local_addr: the local address is taken, so
  // every attempt fails to bind before it connects. asyncio raises "Multiple exceptions: ..."; here
  // the last attempt's error, or with all_errors the group of both.
  const listener taken;
  const listener a;
  const listener b;
  const std::string expected =
      "error while attempting to bind on address 127.0.0.1:" + std::to_string(taken.addr.port) +
      " (local_addr): Address already in use";
  std::string last;
  std::vector<std::string> all;
  asyncio::run([&] {
    const asyncio::local_addr local{"127.0.0.1", taken.addr.port};
    try {
      connect_to({a.addr, b.addr}, {.local = local, .happy_eyeballs_delay = 0.01});
    } catch (const asyncio::OSError& e) {
      last = e.what();
    }
    try {
      connect_to({a.addr, b.addr}, {.local = local, .all_errors = true});
    } catch (const asyncio::ExceptionGroup& group) {
      all = whats(group);
    }
  });
  EXPECT_EQ(last, expected);
  EXPECT_EQ(all, (std::vector<std::string>{expected, expected}));
}

TEST_F(HappyEyeballs, ACancelledRaceClosesEveryAttemptsSocket) {
  const blackhole one;
  const blackhole two;
  const cut_short_outcome out = cut_short({one.addr(), two.addr()}, {.happy_eyeballs_delay = 0.01});
  EXPECT_TRUE(out.timed_out);
  EXPECT_EQ(out.leaked, 0);
}

TEST_F(HappyEyeballs, TheSecondToConnectIsClosed) {
  // With no delay both attempts start at once and both connect; one wins, and the other's
  // socket is closed before the call returns, so its server sees the connection end.
  const listener a;
  const listener b;
  asyncio::address peer;
  asyncio::run([&] { peer = connect_to({a.addr, b.addr}, {.happy_eyeballs_delay = 0.0}); });
  ASSERT_TRUE(peer.port == a.addr.port || peer.port == b.addr.port);
  const listener& loser = peer.port == a.addr.port ? b : a;
  pollfd p{loser.sock.fd, POLLIN, 0};
  if (::poll(&p, 1, 1000) == 1) {  // the losing attempt reached the server: it must be closed
    const test_socket conn(::accept(loser.sock.fd, nullptr, nullptr));
    char byte = 0;
    pollfd q{conn.fd, POLLIN, 0};
    ASSERT_EQ(::poll(&q, 1, 5000), 1) << "the losing connection is still open";
    EXPECT_LE(::recv(conn.fd, &byte, 1, 0), 0);
  }
}

TEST_F(HappyEyeballs, RacesWithEagerTasksToo) {
  // With eager_task_factory an attempt runs inside create_task() up to its first wait, and one
  // that fails at once (a refused bind) is done before the race looks at it.
  const listener taken;
  const blackhole silent;
  const listener good;
  asyncio::address peer;
  asyncio::run([&] {
    asyncio::get_running_loop().set_task_factory(asyncio::eager_task_factory);
    peer = connect_to({silent.addr(), good.addr}, {.happy_eyeballs_delay = 0.02});
  });
  EXPECT_EQ(peer.port, good.addr.port);
  std::vector<std::string> errors;
  asyncio::run([&] {
    asyncio::get_running_loop().set_task_factory(asyncio::eager_task_factory);
    try {
      connect_to({good.addr, good.addr}, {.local = asyncio::local_addr{"127.0.0.1", taken.addr.port},
                                          .happy_eyeballs_delay = 10.0,
                                          .all_errors = true});
    } catch (const asyncio::ExceptionGroup& group) {
      errors = whats(group);
    }
  });
  EXPECT_EQ(errors.size(), 2u);
}

TEST_F(HappyEyeballs, RacesAcrossFamilies) {
  // CPython's scenario with real families: IPv6 first and silent, IPv4 answering.
  if (!io_test::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback";
  const blackhole silent(AF_INET6);
  const listener good(AF_INET);
  asyncio::address peer;
  asyncio::run([&] { peer = connect_to({silent.addr(), good.addr}, {.happy_eyeballs_delay = 0.02}); });
  EXPECT_EQ(peer.host, "127.0.0.1");
  EXPECT_EQ(peer.port, good.addr.port);
}

TEST_F(ConnectOptions, TheResolverAnswersNamesOnlyAndMayAwait) {
  const listener good;
  std::vector<std::string> asked;
  asyncio::address peer;
  asyncio::address numeric_peer;
  asyncio::run([&] {
    const auto resolver = [&](const std::string& host, int port) {
      asked.push_back(host + ":" + std::to_string(port));
      asyncio::sleep(0.001);  // it runs in the connecting task
      return Addresses{{"127.0.0.1", host == "service.test" ? good.addr.port : port}};
    };
    auto [r, w] = asyncio::open_connection(
        "service.test", 80, asyncio::connect_options{.local = asyncio::local_addr{"me.test", 0}, .resolver = resolver});
    peer = w.get_extra_info("peername");
    w.close();
    w.wait_closed();
    auto [r2, w2] =
        asyncio::open_connection("127.0.0.1", good.addr.port, asyncio::connect_options{.resolver = resolver});
    numeric_peer = w2.get_extra_info("peername");
    w2.close();
    w2.wait_closed();
  });
  EXPECT_EQ(asked, (std::vector<std::string>{"service.test:80", "me.test:0"}));
  EXPECT_EQ(peer.port, good.addr.port);
  EXPECT_EQ(numeric_peer.port, good.addr.port);
}

TEST_F(ConnectOptions, WhatTheResolverAnswersIsChecked) {
  std::vector<std::string> errors;
  const auto attempt = [&](Addresses answer, int family) {
    try {
      asyncio::open_connection("service.test", 80,
                               asyncio::connect_options{.family = family, .resolver = answering(std::move(answer))});
      errors.push_back("connected");
    } catch (const asyncio::gaierror& e) {
      errors.push_back(std::string("gaierror: ") + e.what());
    } catch (const asyncio::ValueError& e) {
      errors.push_back(std::string("ValueError: ") + e.what());
    }
  };
  asyncio::run([&] {
    attempt({}, AF_UNSPEC);
    attempt({{"localhost", 80}}, AF_UNSPEC);
    attempt({{"127.0.0.1", 80}}, AF_INET6);
  });
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "gaierror: cannot resolve host 'service.test' (port 80): connect_options.resolver returned no "
                        "address",
                        "ValueError: connect_options.resolver answered \"localhost\" for host 'service.test': a "
                        "resolver returns numeric addresses (\"192.0.2.1\", \"2001:db8::1\")",
                        "gaierror: cannot resolve host 'service.test' (port 80): connect_options.resolver returned no "
                        "address of family AF_INET6"}));
}

TEST_F(ConnectOptions, OpenConnectionTakesThemAndStillTakesABareConfig) {
  std::string echoed;
  std::string peer_host;
  std::string local_host;
  asyncio::run([&] {
    auto server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(),
                                           asyncio::connect_options{.local = asyncio::local_addr{"127.0.0.1", 0},
                                                                    .family = AF_INET,
                                                                    .happy_eyeballs_delay = 0.25,
                                                                    .all_errors = true});
    w.write("hello\n");
    echoed = r.readline();
    peer_host = w.get_extra_info("peername").host;
    local_host = w.get_extra_info("sockname").host;
    w.close();
    w.wait_closed();
    // `{}` is still a stream_config, not connect_options.
    auto [r2, w2] = asyncio::open_connection("127.0.0.1", server.port(), {});
    w2.write("again\n");
    echoed += r2.readline();
    w2.close();
    w2.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, "hello\nagain\n");
  EXPECT_EQ(peer_host, "127.0.0.1");
  EXPECT_EQ(local_host, "127.0.0.1");
}

TEST_F(ConnectOptions, FamilyKeepsOnlyThatFamilysAddresses) {
  const asyncio::address closed = refused_address();
  bool no_v6_address = false;
  asyncio::run([&] {
    try {
      asyncio::open_connection("127.0.0.1", closed.port, asyncio::connect_options{.family = AF_INET6});
    } catch (const asyncio::gaierror&) {
      no_v6_address = true;  // 127.0.0.1 has no IPv6 address
    }
  });
  EXPECT_TRUE(no_v6_address);
}

TEST_F(ConnectOptions, BadOptionsAreRefusedBeforeAnyLookup) {
  std::vector<std::string> refusals;
  const auto refused = [&](const asyncio::connect_options& options) {
    try {
      // A name that would take a lookup: the options are checked first.
      asyncio::open_connection("no-such-host.invalid", 80, options);
      refusals.push_back("connected");
    } catch (const asyncio::ValueError& e) {
      refusals.push_back(e.what());
    } catch (const std::exception& e) {
      refusals.push_back(std::string("other: ") + e.what());
    }
  };
  asyncio::run([&] {
    refused({.family = AF_UNIX});
    refused({.happy_eyeballs_delay = -1.0});
    refused({.happy_eyeballs_delay = std::numeric_limits<double>::quiet_NaN()});
    refused({.interleave = -1});
  });
  ASSERT_EQ(refusals.size(), 4u);
  EXPECT_EQ(refusals[0],
            "connect_options.family must be AF_INET, AF_INET6 or AF_UNSPEC (both), not 1; a Unix-domain socket is "
            "open_unix_connection()'s");
  EXPECT_EQ(refusals[1],
            "connect_options.happy_eyeballs_delay must be a number of seconds >= 0 (RFC 8305 recommends 0.25), or "
            "unset to try the addresses one at a time");
  EXPECT_EQ(refusals[2], refusals[1]);
  EXPECT_EQ(refusals[3], "connect_options.interleave must be >= 0 (0 keeps getaddrinfo()'s order), not -1");
}

TEST_F(ConnectOptions, AllErrorsGroupsEvenASingleAddresssError) {
  // As asyncio: with all_errors=True the error is always a group.
  const asyncio::address closed = refused_address();
  std::vector<std::string> members;
  asyncio::run([&] {
    try {
      asyncio::create_connection<asyncio::Protocol>("127.0.0.1", closed.port,
                                                    {.happy_eyeballs_delay = 0.1, .all_errors = true});
      ADD_FAILURE() << "connected to a closed port";
    } catch (const asyncio::ExceptionGroup& group) {
      members = whats(group);
    }
  });
  EXPECT_EQ(members, (std::vector<std::string>{refused_what(closed)}));
}

TEST_F(ConnectOptions, CreateConnectionTakesThem) {
  struct Hello : asyncio::Protocol {
    std::string got;
    asyncio::Future<void> closed = asyncio::get_running_loop().create_future<void>();
    void connection_made(asyncio::Transport& t) override { t.write("hi\n"); }
    void data_received(std::string_view data) override { got += data; }
    void connection_lost(std::exception_ptr) override { closed.set_result(); }
  };
  std::string got;
  asyncio::run([&] {
    auto server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0);
    auto [transport, protocol] = asyncio::create_connection<Hello>(
        "127.0.0.1", server.port(), {.local = asyncio::local_addr{"127.0.0.1", 0}, .happy_eyeballs_delay = 0.25});
    asyncio::await(protocol->closed);  // the server echoes the line and closes
    got = protocol->got;
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(got, "hi\n");
}

}  // namespace connect_options_test
