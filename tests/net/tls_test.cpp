// TlsSession against an OpenSSL client over memory: the handshake and the
// records it drives, byte by byte as well as whole, and the start-up checks
// of TlsContext.
#include "net/tls.h"

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

using cppgunicorn::net::TlsConfigError;
using cppgunicorn::net::TlsContext;
using cppgunicorn::net::TlsSession;
using cppgunicorn::net::TlsSettings;

namespace {

// A self-signed P-256 certificate for "localhost" and its key, as PEM files
// in a directory of their own (removed with the object).
struct TestCertificate {
  std::filesystem::path dir;
  std::string cert, key;

  TestCertificate() {
    char tmpl[] = "/tmp/cppgunicorn-tls-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~TestCertificate() { std::filesystem::remove_all(dir); }
};

// An OpenSSL client over memory BIOs, pumped against a TlsSession.
struct Client {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = nullptr;
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());

  explicit Client(const char* alpn = "\x08http/1.1") {
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn),
                            static_cast<unsigned int>(std::string(alpn).size()));
    ssl = SSL_new(ctx);
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
  }
  ~Client() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  std::string take_output() {
    std::string bytes(BIO_ctrl_pending(out), '\0');
    BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }
  void give(const std::string& bytes) { BIO_write(in, bytes.data(), static_cast<int>(bytes.size())); }
};

// Runs the handshake (and whatever the client wrote) to its end; feeds
// the server `piece` bytes at a time (0: all at once). Returns what the
// server decrypted.
std::string pump(Client& client, TlsSession& server, size_t piece = 0) {
  std::string plain;
  for (int round = 0; round < 20; ++round) {
    SSL_do_handshake(client.ssl);
    std::string to_server = client.take_output();
    if (to_server.empty() && server.established()) break;
    size_t step = piece == 0 ? to_server.size() : piece;
    for (size_t at = 0; at < to_server.size(); at += step) {
      REQUIRE(server.feed(to_server.data() + at, std::min(step, to_server.size() - at), &plain));
    }
    client.give(server.output());
    server.output().clear();
  }
  return plain;
}

}  // namespace

TEST_CASE("a TLS session handshakes, agrees on http/1.1 and carries bytes both ways") {
  TestCertificate cert;
  TlsContext context(TlsSettings{cert.cert, cert.key, "", 0, "", "", true});
  for (size_t piece : {size_t{0}, size_t{1}, size_t{7}}) {
    CAPTURE(piece);
    TlsSession server(context);
    Client client;
    pump(client, server, piece);
    REQUIRE(server.established());
    REQUIRE(SSL_is_init_finished(client.ssl));
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(client.ssl, &proto, &len);
    CHECK(std::string(reinterpret_cast<const char*>(proto), len) == "http/1.1");
    CHECK(SSL_version(client.ssl) == TLS1_3_VERSION);

    std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    SSL_write(client.ssl, request.data(), static_cast<int>(request.size()));
    std::string plain;
    std::string records = client.take_output();
    for (size_t at = 0; at < records.size(); at += (piece == 0 ? records.size() : piece)) {
      size_t n = std::min(piece == 0 ? records.size() : piece, records.size() - at);
      REQUIRE(server.feed(records.data() + at, n, &plain));
    }
    CHECK(plain == request);

    std::string response(100000, 'r');  // several records
    server.write(response);
    client.give(server.output());
    server.output().clear();
    std::string got(response.size() + 10, '\0');
    size_t have = 0;
    int r;
    while ((r = SSL_read(client.ssl, got.data() + have, static_cast<int>(got.size() - have))) > 0) {
      have += static_cast<size_t>(r);
    }
    CHECK(got.substr(0, have) == response);

    server.shutdown();  // close_notify
    client.give(server.output());
    char byte;
    CHECK(SSL_read(client.ssl, &byte, 1) == 0);
    CHECK(SSL_get_error(client.ssl, 0) == SSL_ERROR_ZERO_RETURN);
  }
}

TEST_CASE("a client offering only h2 goes on without ALPN; garbage fails the handshake") {
  TestCertificate cert;
  TlsContext context(TlsSettings{cert.cert, cert.key, "", 0, "", "", true});
  {
    TlsSession server(context);
    Client client("\x02h2");
    pump(client, server);
    CHECK(server.established());
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(client.ssl, &proto, &len);
    CHECK(len == 0);
  }
  TlsSession server(context);
  std::string plain;
  // A handshake record holding a ClientHello of length 0: a decode error.
  std::string garbage("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9);
  CHECK_FALSE(server.feed(garbage.data(), garbage.size(), &plain));
  CHECK_FALSE(server.error().empty());
  CHECK(cppgunicorn::net::looks_like_tls("\x16\x03\x01"));
  CHECK_FALSE(cppgunicorn::net::looks_like_tls("GET / HTTP/1.1\r\n"));
}

TEST_CASE("TlsContext names the setting and the file it cannot use") {
  TestCertificate cert;
  auto message = [](const TlsSettings& s) {
    try {
      TlsContext context(s);
    } catch (const TlsConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message({cert.cert, cert.key, "", 0, "", "", true}).empty());
  CHECK(message({cert.cert + ".missing", cert.key, "", 0, "", "", true})
            .find("Invalid value for certfile") == 0);
  CHECK(message({cert.cert, cert.key, "", 2, "", "", true}).find("cert_reqs") != std::string::npos);
  CHECK(message({cert.cert, cert.key, "", 0, "", "TLSv1_1", true}).find("ssl_version") !=
        std::string::npos);
  CHECK(message({cert.cert, cert.key, "", 0, "NOT-A-CIPHER", "", true}).find("ciphers") !=
        std::string::npos);
  CHECK(message({"", cert.key, "", 0, "", "", true}).find("keyfile") != std::string::npos);
}
