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
  std::string remote_port;  // "53210"
  std::string server_name;  // the listener's host, when no Host header
  std::string server_port;
  std::string url_scheme = "http";
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
  // The environ key of a header name as sent, made once and interned.
  struct HeaderKey {
    pybind11::object key;
    bool is_http;  // HTTP_*: repeated fields are joined with ", "
  };
  HeaderKey header_key(const std::string& name) const;

  pybind11::dict template_;
  // Guarded by the GIL; bounded so that odd header names cannot grow it.
  mutable std::unordered_map<std::string, HeaderKey> header_keys_;
  pybind11::str k_request_method_, k_script_name_, k_path_info_, k_query_string_,
      k_raw_uri_, k_content_type_, k_content_length_, k_server_name_, k_server_port_,
      k_server_protocol_, k_remote_addr_, k_remote_port_, k_wsgi_input_, k_url_scheme_;
  std::string script_name_;
};

// The PATH_INFO of a request target: the path of origin-form or
// absolute-form, percent-decoded ("*" for asterisk-form).
std::string decoded_path(const http::Request& request);

// "HTTP_X_FORWARDED_FOR" for "X-Forwarded-For"; CONTENT_TYPE and
// CONTENT_LENGTH have no prefix.
std::string environ_key(std::string_view header_name);

}  // namespace cppgunicorn::wsgi
