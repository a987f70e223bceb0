// tls_test_fixture.hpp: what the TLS test files share: a fixture that makes the test
// certificates before it counts allocations, and the server and client contexts over them.
#pragma once

#include <string>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"
#include "tls_test_certs.hpp"

namespace tls_test {

// Fixture: the certificates are made before the fixture counts allocations: they live for the
// process.
class Fixture : public greenlet_test::GreenletTest {
 protected:
  void SetUp() override {
    files();
    greenlet_test::GreenletTest::SetUp();
  }
};

// server_context(cert, key) is a server context with the test server's certificate (CN and SAN
// localhost, IP 127.0.0.1, signed by the test CA) or the one given.
inline greenlet::asyncio::ssl_context server_context(const std::string& cert = files().server_cert,
                                                     const std::string& key = files().server_key) {
  greenlet::asyncio::ssl_context ctx(greenlet::asyncio::ssl_protocol::tls_server);
  ctx.load_cert_chain(cert, key);
  return ctx;
}

// client_context() trusts the test CA and checks host names: create_default_context(cafile=...).
inline greenlet::asyncio::ssl_context client_context() {
  return greenlet::asyncio::ssl_context::create_default_context(greenlet::asyncio::ssl_purpose::server_auth,
                                                                files().ca);
}

}  // namespace tls_test
