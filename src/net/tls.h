// TLS for the workers' connections (--certfile/--keyfile and gunicorn's
// other TLS settings). One TlsContext holds the certificate, key and policy;
// the master builds it (which checks the files at start and on HUP) and the
// workers inherit it across fork, so session tickets work whichever worker
// a client reaches. One TlsSession per connection runs OpenSSL over memory
// BIOs: the loop hands it the bytes it read and sends what it produced, so
// a handshake never blocks the loop. No libuv here.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace cppgunicorn::net {

// gunicorn's TLS settings, as the config layer parsed them.
struct TlsSettings {
  std::string certfile;
  std::string keyfile;      // empty: the key is in certfile
  std::string ca_certs;     // CA file for client certificates
  int cert_reqs = 0;        // 0 none, 1 optional, 2 required (ssl.CERT_*)
  std::string ciphers;      // OpenSSL cipher list (TLS 1.2); empty: OpenSSL's
  std::string ssl_version;  // the minimum protocol version (see tls.cpp)
  // EOF without close_notify ends the stream (true) or is an error that
  // drops the connection at once (false), as in Python's ssl module.
  bool suppress_ragged_eofs = true;

  bool enabled() const { return !certfile.empty() || !keyfile.empty(); }
};

// A setting that cannot work: names the setting and the file or value.
class TlsConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TlsContext {
 public:
  // Loads and checks everything now; throws TlsConfigError.
  explicit TlsContext(const TlsSettings& settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

class TlsSession {
 public:
  explicit TlsSession(const TlsContext& context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Bytes read from the socket. What they decrypt to is appended to
  // `plain`; handshake replies and alerts wait in output(). False: the
  // connection cannot go on (a failed handshake, a bad record); error()
  // says why and output() may hold an alert to send before closing.
  bool feed(const char* data, size_t n, std::string* plain);
  // Application bytes to send: encrypted into output().
  void write(std::string_view plain);
  // Queues close_notify (once) into output().
  void shutdown();

  // Ciphertext produced and not yet taken: the caller sends it and clears it.
  std::string& output() { return output_; }
  bool established() const { return established_; }
  bool peer_closed() const { return peer_closed_; }  // close_notify received
  const std::string& error() const { return error_; }

 private:
  void drain_output();

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  std::string output_;
  std::string error_;
  bool established_ = false;
  bool peer_closed_ = false;
  bool shut_down_ = false;
};

// Whether the first bytes of a connection are a TLS record (a handshake):
// false for plain HTTP sent to a TLS port.
bool looks_like_tls(std::string_view first_bytes);

// "OpenSSL 3.0.19 1 Jul 2025": the library this process runs with.
std::string openssl_version();

}  // namespace cppgunicorn::net
