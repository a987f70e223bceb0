// tls_close_notify_test.cpp: how a TLS stream meets its peer's close_notify, against a plain
// OpenSSL peer in a thread (tls_test_peer.hpp) that sends close_notify and then waits for ours
// without closing the socket, as Python's SSLSocket.unwrap() does. Found porting CPython's
// test_asyncio/test_ssl.py (cpython_ssl_port_test.cpp: test_start_tls_server_1,
// test_remote_shutdown_receives_trailing_data).
#include <string>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/tls_test_fixture.hpp"
#include "io/tls_test_peer.hpp"
#include "support/greenlet_test.hpp"

namespace tls_close_notify_cases {

namespace asyncio = greenlet::asyncio;
namespace peer = tls_test_peer;

using TlsCloseNotify = tls_test::Fixture;

asyncio::ssl_context trusting_nobody_client() {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_client);
  ctx.set_check_hostname(false);
  ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  return ctx;
}

// The peer's last bytes and its close_notify arrive in one read of the socket: read() returns
// them at EOF. It waited for another readiness edge instead, which never came: the peer waits for
// this side's close_notify without closing the socket.
TEST_F(TlsCloseNotify, DataAndCloseNotifyInOneReadEndTheRead) {
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  asyncio::event_loop loop;
  peer::loop_signal sent(loop);
  std::string got = "unset";
  {
    peer::threaded_server srv([&](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      peer::require(sock.recv_all(3) == "go\n", "server: go expected");
      sock.sendall("last words");
      sock.send_close_notify();
      sent.set_result();
      // unwrap()'s second half: ours must come now.
      peer::require(sock.send_close_notify() == 1, "server: no close_notify from the client");
      sock.close();
    });
    loop.run_until_complete([&] {
      auto streams = asyncio::open_connection("127.0.0.1", srv.port(), trusting_nobody_client());
      auto& reader = streams.first;
      auto& writer = streams.second;
      writer.write("go\n");
      sent.await();  // both records are in the socket before the first read
      got = asyncio::wait_for([&] { return reader.read(); }, 5.0);
      writer.close();
      writer.wait_closed();
    });
  }
  loop.close();
  EXPECT_EQ(got, "last words");
}

// peer_ends_first(ragged) runs a peer that, after the handshake and "ping", ends its side first
// (close_notify, or with `ragged` a TCP EOF without one) and then reads everything the client had
// buffered and the client's close_notify, as test_ssl.py's test_remote_shutdown_receives_trailing_data.
// The client only reads to EOF and never calls close(). Returns what went wrong, "" if nothing.
std::string peer_ends_first(bool ragged) {
  const std::size_t size = 1024 * 1024;
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  asyncio::event_loop loop;
  peer::loop_signal done(loop);
  std::string outcome;
  {
    peer::threaded_server srv(done.wrap([&](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      peer::require(sock.recv_all(4) == "ping", "server: ping expected");
      if (ragged) {
        sock.shutdown_wr();
      } else {
        peer::require(sock.send_close_notify() == 0, "server: close_notify already received");
      }
      std::size_t received = 0;
      for (std::string chunk; !(chunk = sock.recv(65536)).empty();) received += chunk.size();
      peer::require(received == size, "server: " + std::to_string(received) + " bytes received");
      if (!ragged) peer::require(sock.send_close_notify() == 1, "server: no close_notify from the client");
      sock.close();
    }));
    loop.run_until_complete([&] {
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), trusting_nobody_client());
      writer.write("ping");
      writer.write(std::string(size, 'x'));  // buffered: the peer reads it only after its EOF
      EXPECT_EQ(reader.read(), "");
      try {
        asyncio::wait_for([&] { done.await(); }, 5.0);
      } catch (const std::exception& e) {
        outcome = e.what();
      }
      EXPECT_TRUE(writer.is_closing());
      writer.wait_closed();
    });
  }
  loop.close();
  return outcome;
}

// The peer's close_notify starts this side's shutdown, as asyncio's SSL protocol: the buffered
// bytes are sent, then our close_notify, and the stream closes. The peer waited for it in vain.
TEST_F(TlsCloseNotify, PeerCloseNotifyIsAnsweredAfterTheBufferedBytes) { EXPECT_EQ(peer_ends_first(false), ""); }

// The same for a connection the peer ends without close_notify (a TCP EOF).
TEST_F(TlsCloseNotify, PeerEofIsAnsweredAfterTheBufferedBytes) { EXPECT_EQ(peer_ends_first(true), ""); }

}  // namespace tls_close_notify_cases
