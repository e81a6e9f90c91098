#include "net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace cppgunicorn::net {

namespace {

// The reason OpenSSL gave for the last failure, and an empty error queue:
// the queue is per thread, and a stale entry would confuse the next
// SSL_get_error on this thread (the app may use Python's ssl here too).
std::string openssl_reason() {
  std::string reason;
  while (unsigned long e = ERR_get_error()) {
    if (reason.empty()) {
      const char* r = ERR_reason_error_string(e);
      char buf[256];
      if (r == nullptr) {
        ERR_error_string_n(e, buf, sizeof buf);
        r = buf;
      }
      reason = r;
    }
  }
  return reason.empty() ? "unknown error" : reason;
}

std::string invalid(const char* setting, const std::string& value, const std::string& why) {
  return std::string("Invalid value for ") + setting + ": '" + value + "' (" + why + ")";
}

void check_readable(const char* setting, const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    throw TlsConfigError(invalid(setting, path, std::strerror(errno)));
  }
}

// ssl_version: gunicorn documents ssl.PROTOCOL_* names and numbers; what
// it can still mean is the oldest protocol version to accept. TLS 1.0 and
// 1.1 are not offered at all (RFC 8996).
int min_version_for(const std::string& v) {
  if (v.empty() || v == "2" || v == "17" || v == "TLS" || v == "TLS_SERVER" || v == "SSLv23" ||
      v == "PROTOCOL_TLS" || v == "PROTOCOL_TLS_SERVER" || v == "PROTOCOL_SSLv23" || v == "5" ||
      v == "TLSv1_2" || v == "TLSv1.2" || v == "PROTOCOL_TLSv1_2") {
    return TLS1_2_VERSION;
  }
  if (v == "TLSv1_3" || v == "TLSv1.3") return TLS1_3_VERSION;
  if (v == "3" || v == "4" || v == "TLSv1" || v == "TLSv1_1" || v == "TLSv1.1" || v == "SSLv3" ||
      v == "PROTOCOL_TLSv1" || v == "PROTOCOL_TLSv1_1") {
    throw TlsConfigError(invalid("ssl_version", v,
                                 "TLS 1.0 and 1.1 are not served (RFC 8996); the minimum is "
                                 "TLSv1_2 (the default) or TLSv1_3"));
  }
  throw TlsConfigError(invalid("ssl_version", v, "expected TLS, TLS_SERVER, TLSv1_2 or TLSv1_3"));
}

int refuse_password(char*, int, int, void* asked) {
  // An encrypted key: gunicorn (Python's ssl) would prompt on the terminal,
  // which a server started by systemd or Docker does not have.
  *static_cast<bool*>(asked) = true;
  return -1;
}

// ALPN: HTTP/1.1 when the client offers it; a client that offers only
// other protocols (h2) goes on without ALPN, as nginx does.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kOurs[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kOurs, sizeof kOurs, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

TlsContext::TlsContext(const TlsSettings& s) {
  if (s.certfile.empty()) {
    throw TlsConfigError(invalid("keyfile", s.keyfile, "a key without a certificate: set certfile"));
  }
  check_readable("certfile", s.certfile);
  if (!s.keyfile.empty()) check_readable("keyfile", s.keyfile);
  if (!s.ca_certs.empty()) check_readable("ca_certs", s.ca_certs);
  if (s.cert_reqs < 0 || s.cert_reqs > 2) {
    throw TlsConfigError(invalid("cert_reqs", std::to_string(s.cert_reqs),
                                 "expected 0 (none), 1 (optional) or 2 (required)"));
  }
  if (s.cert_reqs > 0 && s.ca_certs.empty()) {
    throw TlsConfigError(invalid("cert_reqs", std::to_string(s.cert_reqs),
                                 "client certificates are checked against ca_certs, which is "
                                 "not set: no client could be verified"));
  }
  int min_version = min_version_for(s.ssl_version);

  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (ctx_ == nullptr) throw TlsConfigError("cannot create a TLS context: " + openssl_reason());
  try {
    SSL_CTX_set_min_proto_version(ctx_, min_version);
    // Python's ssl.create_default_context(Purpose.CLIENT_AUTH), which
    // gunicorn uses, plus no client-initiated renegotiation (a CPU sink).
    SSL_CTX_set_options(ctx_, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_RENEGOTIATION);
    // An idle keep-alive connection gives its 34 KiB of record buffers back.
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char kSessionContext[] = "cppgunicorn";
    SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof kSessionContext - 1);

    if (SSL_CTX_use_certificate_chain_file(ctx_, s.certfile.c_str()) != 1) {
      throw TlsConfigError(invalid("certfile", s.certfile,
                                   "not a PEM certificate: " + openssl_reason()));
    }
    const std::string& keyfile = s.keyfile.empty() ? s.certfile : s.keyfile;
    const char* key_setting = s.keyfile.empty() ? "certfile" : "keyfile";
    bool password_asked = false;
    SSL_CTX_set_default_passwd_cb(ctx_, refuse_password);
    SSL_CTX_set_default_passwd_cb_userdata(ctx_, &password_asked);
    int loaded = SSL_CTX_use_PrivateKey_file(ctx_, keyfile.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb(ctx_, nullptr);
    SSL_CTX_set_default_passwd_cb_userdata(ctx_, nullptr);
    // A key that is not the certificate's fails to load (OpenSSL 3) or
    // fails the check below (older ones).
    unsigned long load_error = ERR_peek_last_error();
    bool mismatch = loaded != 1 && ERR_GET_LIB(load_error) == ERR_LIB_X509 &&
                    ERR_GET_REASON(load_error) == X509_R_KEY_VALUES_MISMATCH;
    if (mismatch || (loaded == 1 && SSL_CTX_check_private_key(ctx_) != 1)) {
      ERR_clear_error();
      throw TlsConfigError(invalid(key_setting, keyfile,
                                   "does not match the certificate in certfile '" + s.certfile +
                                       "'"));
    }
    if (loaded != 1) {
      if (password_asked) {
        ERR_clear_error();
        throw TlsConfigError(invalid(
            key_setting, keyfile,
            "the private key is encrypted with a password, which cppgunicorn cannot ask for; "
            "write a decrypted copy readable only by the server: openssl pkey -in " + keyfile +
                " -out KEY.pem"));
      }
      throw TlsConfigError(invalid(key_setting, keyfile,
                                   "no PEM private key: " + openssl_reason()));
    }
    if (!s.ca_certs.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, s.ca_certs.c_str(), nullptr) != 1) {
        throw TlsConfigError(invalid("ca_certs", s.ca_certs,
                                     "no PEM CA certificate: " + openssl_reason()));
      }
      // The CAs a client may choose its certificate from.
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.ca_certs.c_str())) {
        SSL_CTX_set_client_CA_list(ctx_, names);
      }
      ERR_clear_error();
    }
    if (s.cert_reqs > 0) {
      SSL_CTX_set_verify(ctx_,
                         SSL_VERIFY_PEER |
                             (s.cert_reqs == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                         nullptr);
    }
    if (!s.ciphers.empty() && SSL_CTX_set_cipher_list(ctx_, s.ciphers.c_str()) != 1) {
      throw TlsConfigError(invalid("ciphers", s.ciphers,
                                   "no cipher OpenSSL knows: " + openssl_reason()));
    }
    SSL_CTX_set_alpn_select_cb(ctx_, select_alpn, nullptr);
  } catch (...) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw;
  }
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& context) {
  ssl_ = SSL_new(context.get());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  // An empty input BIO means "wait for more", not end of stream.
  BIO_set_mem_eof_return(in_, -1);
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }  // frees both BIOs

bool TlsSession::feed(const char* data, size_t n, std::string* plain) {
  ERR_clear_error();
  if (n > 0 && BIO_write(in_, data, static_cast<int>(n)) != static_cast<int>(n)) {
    error_ = "out of memory";
    return false;
  }
  for (;;) {
    size_t old = plain->size();
    plain->resize(old + 16384);
    int r = SSL_read(ssl_, plain->data() + old, 16384);
    plain->resize(old + (r > 0 ? static_cast<size_t>(r) : 0));
    if (r > 0) continue;
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      break;
    }
    error_ = err == SSL_ERROR_SSL ? openssl_reason() : "TLS error " + std::to_string(err);
    ERR_clear_error();
    drain_output();  // an alert for the client, if OpenSSL made one
    return false;
  }
  if (!established_ && SSL_is_init_finished(ssl_)) established_ = true;
  drain_output();
  return true;
}

void TlsSession::write(std::string_view plain) {
  if (shut_down_) return;
  ERR_clear_error();
  while (!plain.empty()) {
    int r = SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), 1 << 30)));
    if (r <= 0) {
      // Only before the handshake ends, which a response never is.
      error_ = openssl_reason();
      break;
    }
    plain.remove_prefix(static_cast<size_t>(r));
  }
  drain_output();
}

void TlsSession::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (!established_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  drain_output();
}

void TlsSession::drain_output() {
  size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  size_t old = output_.size();
  output_.resize(old + pending);
  int got = BIO_read(out_, output_.data() + old, static_cast<int>(pending));
  output_.resize(old + (got > 0 ? static_cast<size_t>(got) : 0));
}

bool looks_like_tls(std::string_view first_bytes) {
  // Every TLS connection opens with a handshake record (content type 22).
  return first_bytes.empty() || static_cast<unsigned char>(first_bytes[0]) == 0x16;
}

std::string openssl_version() { return OpenSSL_version(OPENSSL_VERSION); }

}  // namespace cppgunicorn::net
