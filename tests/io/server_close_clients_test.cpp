// server_close_clients_test.cpp: Server::close_clients() and abort_clients() (asyncio 3.13's),
// for stream servers (handler tasks) and protocol servers, after test_server.py's
// test_close_clients / test_abort_clients: a server shut down with its connections, without
// waiting for its clients to go.
#include <memory>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace server_close_clients_test {

namespace asyncio = greenlet::asyncio;
using CloseClients = greenlet_test::GreenletTest;

template <class Pred>
void until(Pred pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) asyncio::sleep(0.001);
  ASSERT_TRUE(pred());
}

TEST_F(CloseClients, CloseClientsEndsEveryHandlersReadWithEofAndWaitClosedReturns) {
  asyncio::run([] {
    std::vector<std::string> log;
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          for (;;) {
            std::string line = r.readline();
            if (line.empty()) break;
            w.write(line);
          }
          log.push_back("handler saw EOF");
        },
        "127.0.0.1", 0);
    auto [r1, w1] = asyncio::open_connection("127.0.0.1", server.port());
    auto [r2, w2] = asyncio::open_connection("127.0.0.1", server.port());
    w1.write("one\n");
    w2.write("two\n");
    EXPECT_EQ("one\n", r1.readline());
    EXPECT_EQ("two\n", r2.readline());
    server.close();
    server.close_clients();
    server.wait_closed();
    EXPECT_EQ((std::vector<std::string>{"handler saw EOF", "handler saw EOF"}), log);
    // The clients see the server's end.
    EXPECT_EQ("", r1.read());
    EXPECT_EQ("", r2.read());
  });
}

TEST_F(CloseClients, AbortClientsDropsWhatTheHandlersHadNotSent) {
  asyncio::run([] {
    const std::string blob(8 * 1024 * 1024, 'b');
    bool handler_done = false;
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write(blob);  // far more than the socket takes while the client does not read
          try {
            w.drain();
          } catch (const asyncio::ConnectionError&) {
          }
          handler_done = true;
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    asyncio::sleep(0.01);  // the handler fills the socket and waits in drain()
    server.close();
    server.abort_clients();
    server.wait_closed();
    EXPECT_TRUE(handler_done);
    std::string got;
    try {
      got = r.read();
    } catch (const asyncio::ConnectionResetError&) {
      // The unread bytes on the server's side may turn its close into a reset.
    }
    EXPECT_LT(got.size(), blob.size());
  });
}

struct Held : asyncio::Protocol {
  asyncio::Transport transport;
  std::vector<std::string>* log;
  explicit Held(std::vector<std::string>* l) : log(l) {}
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void connection_lost(std::exception_ptr exc) override {
    log->push_back(exc == nullptr ? "lost" : "lost with an error");
    transport = {};
  }
};

struct Client : asyncio::Protocol {
  bool ended = false;
  std::size_t received = 0;
  void data_received(std::string_view data) override { received += data.size(); }
  void connection_lost(std::exception_ptr) override { ended = true; }
};

TEST_F(CloseClients, ProtocolConnectionsAreClosedOrAbortedToo) {
  asyncio::run([] {
    std::vector<std::string> log;
    std::vector<std::shared_ptr<Held>> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served.push_back(std::make_shared<Held>(&log));
          return served.back();
        },
        "127.0.0.1", 0);
    auto conn1 = asyncio::create_connection<Client>("127.0.0.1", server.port());
    auto& t1 = conn1.first;
    auto& c1 = conn1.second;
    auto conn2 = asyncio::create_connection<Client>("127.0.0.1", server.port());
    auto& c2 = conn2.second;
    until([&] { return served.size() == 2; });
    // The first gets 8 MiB it does not read: close_clients() would send them all first.
    t1.pause_reading();
    served[0]->transport.write(std::string(8 * 1024 * 1024, 'p'));
    ASSERT_GT(served[0]->transport.get_write_buffer_size(), 0u);
    server.close();
    server.abort_clients();
    server.wait_closed();
    EXPECT_EQ((std::vector<std::string>{"lost", "lost"}), log);
    until([&] { return c2->ended; });
    t1.resume_reading();
    until([&] { return c1->ended; });
    EXPECT_LT(c1->received, 8u * 1024 * 1024);
  });
}

TEST_F(CloseClients, CloseClientsLetsProtocolConnectionsSendTheirBuffersFirst) {
  asyncio::run([] {
    std::vector<std::string> log;
    std::shared_ptr<Held> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<Held>(&log);
          return served;
        },
        "127.0.0.1", 0);
    auto conn = asyncio::create_connection<Client>("127.0.0.1", server.port());
    auto& c = conn.second;
    until([&] { return served != nullptr; });
    served->transport.write(std::string(4 * 1024 * 1024, 'q'));
    server.close();
    server.close_clients();
    server.wait_closed();  // once the 4 MiB are sent and the connection is lost
    EXPECT_EQ((std::vector<std::string>{"lost"}), log);
    until([&] { return c->ended; });
    EXPECT_EQ(4u * 1024 * 1024, c->received);
  });
}

TEST_F(CloseClients, AnEmptyServerRaises) {
  asyncio::Server empty;
  EXPECT_THROW(empty.close_clients(), asyncio::RuntimeError);
  EXPECT_THROW(empty.abort_clients(), asyncio::RuntimeError);
  EXPECT_THROW(empty.start_serving(), asyncio::RuntimeError);
}

// start_serving=False (test_base_events.py test_create_server_no_start_serving / test_server.py's
// start_serving cases): the server listens, connections wait in the backlog until start_serving().
using StartServing = greenlet_test::GreenletTest;

TEST_F(StartServing, AServerMadeWithoutServingAcceptsOnlyOnceStarted) {
  asyncio::run([] {
    std::vector<std::string> log;
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          log.push_back("handler");
          w.write(r.readline());
          w.close();
        },
        "127.0.0.1", 0, {.start_serving = false});
    EXPECT_FALSE(server.is_serving());
    EXPECT_NE(0, server.port());
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());  // the kernel's backlog takes it
    w.write("hello\n");
    for (int i = 0; i < 10; ++i) asyncio::sleep(0.001);
    EXPECT_TRUE(log.empty());
    server.start_serving();
    server.start_serving();  // once only
    EXPECT_TRUE(server.is_serving());
    EXPECT_EQ("hello\n", r.readline());
    EXPECT_EQ((std::vector<std::string>{"handler"}), log);
    server.close();
    server.wait_closed();
    EXPECT_THROW(server.start_serving(), asyncio::RuntimeError);
  });
}

TEST_F(StartServing, AProtocolServerTooAndWaitClosedOnANeverStartedServerReturns) {
  asyncio::run([] {
    struct Echo : asyncio::Protocol {
      asyncio::Transport t;
      void connection_made(asyncio::Transport& transport) override { t = transport; }
      void data_received(std::string_view data) override { t.write(data); }
      void connection_lost(std::exception_ptr) override { t = {}; }
    };
    asyncio::Server idle = asyncio::create_server<Echo>("127.0.0.1", 0, {.start_serving = false});
    EXPECT_FALSE(idle.is_serving());
    idle.close();
    idle.wait_closed();  // no acceptor ever ran

    asyncio::Server server = asyncio::create_server<Echo>("127.0.0.1", 0, {.start_serving = false});
    auto serving = asyncio::create_task([&] { server.serve_forever(); });  // starts it, as asyncio's
    asyncio::sleep(0);
    EXPECT_TRUE(server.is_serving());
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    w.write("ping");
    EXPECT_EQ("ping", r.read(4));
    w.close();
    server.close();
    EXPECT_THROW(asyncio::await(serving), asyncio::CancelledError);
    server.wait_closed();
  });
}

}  // namespace server_close_clients_test
