// tls_close_notify_test.cpp: how a TLS stream meets its peer's close_notify, against a plain
// OpenSSL peer in a thread (tls_test_peer.hpp) that sends close_notify and then waits for ours
// without closing the socket, as Python's SSLSocket.unwrap() does. Found porting CPython's
// test_asyncio/test_ssl.py (cpython_ssl_port_test.cpp: test_start_tls_server_1,
// test_remote_shutdown_receives_trailing_data).
#include <string>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/tls_test_certs.hpp"
#include "io/tls_test_peer.hpp"
#include "support/greenlet_test.hpp"

namespace tls_close_notify_cases {

namespace asyncio = greenlet::asyncio;
namespace peer = tls_test_peer;

class TlsCloseNotify : public greenlet_test::GreenletTest {
 protected:
  void SetUp() override {
    tls_test::files();
    greenlet_test::GreenletTest::SetUp();
  }
};

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
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), trusting_nobody_client());
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

}  // namespace tls_close_notify_cases
