// tls_test_certs.hpp: certificates for the TLS tests, made at run time with
// OpenSSL (no files in the repository to expire, no network): a test CA, a
// server certificate it signs for localhost and 127.0.0.1, a client
// certificate it signs, and a self-signed server certificate nobody trusts.
// EC P-256 keys: made in microseconds.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace tls_test {

struct cert_files {
  std::string dir;
  std::string ca;                                 // the test CA's certificate (trust it to verify the others)
  std::string server_cert, server_key;            // CN=localhost, SAN DNS:localhost, IP:127.0.0.1; by the CA
  std::string client_cert, client_key;            // CN=test-client; by the CA
  std::string self_signed_cert, self_signed_key;  // CN=localhost, SAN DNS:localhost; by itself
};

namespace detail {

inline EVP_PKEY* make_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) throw std::runtime_error("EVP_EC_gen failed");
  return key;
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) throw std::runtime_error("X509V3_EXT_conf_nid failed");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// make_cert(key, cn, issuer, issuer_key, serial, ca, san): a certificate valid from an hour ago
// for a day, signed by issuer (itself when null).
inline X509* make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long serial, bool ca,
                       const char* san) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("greenlet-cpp tests"), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  add_extension(cert, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert, signer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(cert, signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add_extension(cert, signer, NID_authority_key_identifier, "keyid:always");
  if (san != nullptr) add_extension(cert, signer, NID_subject_alt_name, san);
  if (X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    throw std::runtime_error("X509_sign failed");
  }
  return cert;
}

inline void write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

inline void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

inline cert_files make_files() {
  char dir_template[] = "/tmp/greenlet-tls-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
  cert_files f;
  f.dir = dir_template;
  f.ca = f.dir + "/ca.pem";
  f.server_cert = f.dir + "/server.pem";
  f.server_key = f.dir + "/server.key";
  f.client_cert = f.dir + "/client.pem";
  f.client_key = f.dir + "/client.key";
  f.self_signed_cert = f.dir + "/self.pem";
  f.self_signed_key = f.dir + "/self.key";

  EVP_PKEY* ca_key = make_key();
  X509* ca = make_cert(ca_key, "greenlet-cpp test CA", nullptr, nullptr, 1, true, nullptr);
  EVP_PKEY* server_key = make_key();
  X509* server = make_cert(server_key, "localhost", ca, ca_key, 2, false, "DNS:localhost,IP:127.0.0.1");
  EVP_PKEY* client_key = make_key();
  X509* client = make_cert(client_key, "test-client", ca, ca_key, 3, false, nullptr);
  EVP_PKEY* self_key = make_key();
  X509* self = make_cert(self_key, "localhost", nullptr, nullptr, 4, false, "DNS:localhost,IP:127.0.0.1");

  write_cert(f.ca, ca);
  write_cert(f.server_cert, server);
  write_key(f.server_key, server_key);
  write_cert(f.client_cert, client);
  write_key(f.client_key, client_key);
  write_cert(f.self_signed_cert, self);
  write_key(f.self_signed_key, self_key);
  for (X509* c : {ca, server, client, self}) X509_free(c);
  for (EVP_PKEY* k : {ca_key, server_key, client_key, self_key}) EVP_PKEY_free(k);
  return f;
}

}  // namespace detail

// files() makes the certificates once per process; they are removed at exit.
inline const cert_files& files() {
  static const cert_files made = [] {
    cert_files f = detail::make_files();
    static std::string dir = f.dir;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    });
    return f;
  }();
  return made;
}

}  // namespace tls_test
