// Builds the PEP 3333 environ of a request. The only code that turns request
// bytes into Python objects: keys are interned once per worker, constants sit
// in a template dict that each request copies, values are made straight from
// the bytes as latin-1.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <unordered_map>

#include "http/request.h"

namespace cppgunicorn::wsgi {

// Where a request came from and arrived at, as plain text.
struct PeerInfo {
  std::string remote_addr;  // "127.0.0.1" ("" for a unix socket)
  std::string remote_port;  // "53210"; "" leaves REMOTE_PORT out (unix socket)
  std::string server_name;  // the listener's address: host, or a unix socket's path
  std::string server_port;
  std::string url_scheme = "http";
  bool unix_socket = false;  // SERVER_NAME/SERVER_PORT then come from Host
  // From a PROXY protocol header: gunicorn's PROXY_PROTOCOL, PROXY_ADDR and
  // PROXY_PORT ("" leaves them out; LOCAL and UNSPEC carry no addresses).
  std::string proxy_protocol, proxy_addr, proxy_port;
};

struct EnvironOptions {
  bool multithread = false;
  bool multiprocess = false;
  std::string script_name;  // $SCRIPT_NAME, as gunicorn reads it
};

class EnvironBuilder {
 public:
  // Needs the GIL.
  explicit EnvironBuilder(const EnvironOptions& options);
  // Needs the GIL. `input` becomes wsgi.input.
  pybind11::dict build(const http::Request& request, const PeerInfo& peer,
                       pybind11::object input) const;

 private:
  // The last str made for one environ entry and the bytes it was made
  // from: consecutive requests (the same client, method, Host...) mostly
  // repeat them, and a str is immutable, so it is handed out again.
  struct LastValue {
    std::string text;
    pybind11::object value;
    bool in_warm = false;  // warm_ holds `value` under this entry's key
  };
  // A new reference to `text` as a latin-1 str, from `last` when it matches.
  static PyObject* value_of(LastValue& last, std::string_view text);

  // The environ key of a header name as sent, made once and interned.
  struct HeaderKey {
    pybind11::object key;
    bool is_http;  // HTTP_*: repeated fields are joined with ","
    LastValue last;
  };
  HeaderKey& header_key(const std::string& name) const;
  void set(PyObject* env, const pybind11::str& key, LastValue& last, std::string_view value) const;
  // For the entries that stay the same from one request of a client to the
  // next (method, protocol, server and remote address): nothing to do when
  // warm_, the dict each request copies, already holds that value.
  void set_warm(PyObject* env, const pybind11::str& key, LastValue& last,
                std::string_view value) const;

  pybind11::dict template_;
  // template_ plus the last values of the set_warm entries.
  mutable pybind11::dict warm_;
  // Guarded by the GIL; bounded so that odd header names cannot grow it.
  mutable std::unordered_map<std::string, HeaderKey> header_keys_;
  pybind11::str k_request_method_, k_script_name_, k_path_info_, k_query_string_,
      k_raw_uri_, k_content_type_, k_content_length_, k_server_name_, k_server_port_,
      k_server_protocol_, k_remote_addr_, k_remote_port_, k_wsgi_input_, k_url_scheme_;
  std::string script_name_;
  // Guarded by the GIL, as header_keys_.
  mutable LastValue method_, target_, query_, protocol_, path_, server_name_, server_port_,
      remote_addr_, remote_port_, url_scheme_;
  mutable HeaderKey odd_header_;  // a header name past the bound of header_keys_
  // A uwsgi packet's CGI variables (request.cgi_vars), set over the rest.
  void set_cgi_vars(PyObject* env, const http::Request& request) const;
  // Their keys, interned once (bounded as header_keys_).
  mutable std::unordered_map<std::string, pybind11::object> cgi_keys_;
};

// The PATH_INFO of a request target: the path of origin-form or
// absolute-form, percent-decoded ("*" for asterisk-form).
std::string decoded_path(const http::Request& request);

// SERVER_NAME and SERVER_PORT as gunicorn's wsgi.create sets them: a TCP
// listener's own address; for a unix socket, the Host header split at ':'
// (the scheme's port when it has none), or the socket path and "" without
// Host.
std::pair<std::string_view, std::string_view> server_address(const PeerInfo& peer,
                                                             std::string_view host);

// "HTTP_X_FORWARDED_FOR" for "X-Forwarded-For"; CONTENT_TYPE and
// CONTENT_LENGTH have no prefix.
std::string environ_key(std::string_view header_name);

}  // namespace cppgunicorn::wsgi
