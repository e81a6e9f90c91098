#include "wsgi/environ.h"

#include <vector>

#include "wsgi/objects.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

namespace {

py::str interned(const char* s) {
  PyObject* o = PyUnicode_InternFromString(s);
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

py::object latin1(std::string_view s) {
  PyObject* o = PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

std::string_view target_path(std::string_view target) {
  // absolute-form (RFC 9112 section 3.2.2): skip "scheme://authority".
  size_t scheme_end = target.find("://");
  if (!target.empty() && target[0] != '/' && scheme_end != std::string_view::npos) {
    size_t path_start = target.find('/', scheme_end + 3);
    if (path_start == std::string_view::npos) return "/";
    target = target.substr(path_start);
  }
  size_t end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

}  // namespace

std::string decoded_path(const http::Request& request) {
  // authority-form (CONNECT host:port) has no path.
  if (request.method == "CONNECT" && !request.target.empty() && request.target[0] != '/') return {};
  return http::percent_decode(target_path(request.target));
}

std::pair<std::string_view, std::string_view> server_address(const PeerInfo& peer,
                                                             std::string_view host) {
  // gunicorn splits the listener's name at every ':' and takes the first
  // two pieces (a TCP listener is already a (host, port) pair).
  auto first_two = [](std::string_view text) {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return std::pair{text, std::string_view()};
    std::string_view rest = text.substr(colon + 1);
    return std::pair{text.substr(0, colon), rest.substr(0, rest.find(':'))};
  };
  if (!peer.unix_socket) return {peer.server_name, peer.server_port};
  if (peer.server_name.find(':') != std::string::npos) return first_two(peer.server_name);
  if (host.empty()) return {peer.server_name, {}};
  if (host.find(':') != std::string_view::npos) return first_two(host);
  if (peer.url_scheme == "http") return {host, "80"};
  if (peer.url_scheme == "https") return {host, "443"};
  return {host, {}};
}

std::string environ_key(std::string_view name) {
  if (http::iequals(name, "content-type")) return "CONTENT_TYPE";
  if (http::iequals(name, "content-length")) return "CONTENT_LENGTH";
  std::string key = "HTTP_";
  key.reserve(5 + name.size());
  for (char c : name) {
    if (c == '-') key += '_';
    else if (c >= 'a' && c <= 'z') key += static_cast<char>(c - 32);
    else key += c;
  }
  return key;
}

EnvironBuilder::EnvironBuilder(const EnvironOptions& options)
    : k_request_method_(interned("REQUEST_METHOD")),
      k_script_name_(interned("SCRIPT_NAME")),
      k_path_info_(interned("PATH_INFO")),
      k_query_string_(interned("QUERY_STRING")),
      k_raw_uri_(interned("RAW_URI")),
      k_content_type_(interned("CONTENT_TYPE")),
      k_content_length_(interned("CONTENT_LENGTH")),
      k_server_name_(interned("SERVER_NAME")),
      k_server_port_(interned("SERVER_PORT")),
      k_server_protocol_(interned("SERVER_PROTOCOL")),
      k_remote_addr_(interned("REMOTE_ADDR")),
      k_remote_port_(interned("REMOTE_PORT")),
      k_wsgi_input_(interned("wsgi.input")),
      k_url_scheme_(interned("wsgi.url_scheme")),
      script_name_(options.script_name) {
  while (!script_name_.empty() && script_name_.back() == '/') script_name_.pop_back();
  py::module_ mod = objects_module();
  template_[interned("wsgi.version")] = py::make_tuple(1, 0);
  template_[k_url_scheme_] = py::str("http");
  template_[interned("wsgi.errors")] = mod.attr("ErrorStream")();
  template_[interned("wsgi.multithread")] = py::bool_(options.multithread);
  template_[interned("wsgi.multiprocess")] = py::bool_(options.multiprocess);
  template_[interned("wsgi.run_once")] = py::bool_(false);
  // The body is complete (or de-chunked) before the app sees it: reading to
  // EOF is safe without CONTENT_LENGTH.
  template_[interned("wsgi.input_terminated")] = py::bool_(true);
  template_[interned("wsgi.file_wrapper")] = mod.attr("FileWrapper");
  template_[interned("SERVER_SOFTWARE")] = py::str("cppgunicorn/" CPPGUNICORN_VERSION);
  template_[k_script_name_] = py::str(script_name_);
  // Every request sets these: with placeholders in the template, setting one
  // replaces a value in the copy instead of inserting a key.
  for (const py::str* key : {&k_request_method_, &k_raw_uri_, &k_query_string_,
                             &k_server_protocol_, &k_path_info_, &k_server_name_,
                             &k_server_port_, &k_remote_addr_, &k_remote_port_, &k_wsgi_input_}) {
    template_[*key] = py::none();
  }
  // Spare keys, removed again, grow the template's table once; PyDict_Copy
  // clones the table as it is, so each request's copy has room for its
  // header keys instead of being resized on the first one.
  auto table_size = [this] { return template_.attr("__sizeof__")().cast<size_t>(); };
  size_t before = table_size();
  std::vector<py::str> spares;
  while (spares.size() < 64 && table_size() == before) {
    spares.push_back(py::str("cppgunicorn.spare" + std::to_string(spares.size())));
    template_[spares.back()] = py::none();
  }
  for (const py::str& key : spares) {
    if (PyDict_DelItem(template_.ptr(), key.ptr()) != 0) throw py::error_already_set();
  }
  warm_ = py::reinterpret_steal<py::dict>(PyDict_Copy(template_.ptr()));
  if (!warm_) throw py::error_already_set();
}

EnvironBuilder::HeaderKey& EnvironBuilder::header_key(const std::string& name) const {
  auto it = header_keys_.find(name);
  if (it != header_keys_.end()) return it->second;
  std::string key = environ_key(name);
  HeaderKey made{interned(key.c_str()), key.rfind("HTTP_", 0) == 0, {}};
  if (header_keys_.size() < 256) return header_keys_.emplace(name, std::move(made)).first->second;
  odd_header_ = std::move(made);
  return odd_header_;
}

PyObject* EnvironBuilder::value_of(LastValue& last, std::string_view text) {
  // Long values (cookies, tokens) are made each time: the cache stays small.
  constexpr size_t kMaxCached = 128;
  if (last.value && text == last.text) return last.value.inc_ref().ptr();
  py::object made = latin1(text);
  if (text.size() <= kMaxCached) {
    last.text.assign(text);
    last.value = made;
  }
  return made.release().ptr();
}

void EnvironBuilder::set_warm(PyObject* env, const py::str& key, LastValue& last,
                              std::string_view value) const {
  if (last.in_warm && value == last.text) return;
  py::object v = py::reinterpret_steal<py::object>(value_of(last, value));
  if (PyDict_SetItem(env, key.ptr(), v.ptr()) != 0) throw py::error_already_set();
  // Remembered only when value_of cached it (a short value).
  last.in_warm = last.value.ptr() == v.ptr();
  if (PyDict_SetItem(warm_.ptr(), key.ptr(), last.in_warm ? v.ptr() : Py_None) != 0) {
    throw py::error_already_set();
  }
}

void EnvironBuilder::set(PyObject* env, const py::str& key, LastValue& last,
                         std::string_view value) const {
  py::object v = py::reinterpret_steal<py::object>(value_of(last, value));
  if (PyDict_SetItem(env, key.ptr(), v.ptr()) != 0) throw py::error_already_set();
}

py::dict EnvironBuilder::build(const http::Request& request, const PeerInfo& peer,
                               py::object input) const {
  py::dict env = py::reinterpret_steal<py::dict>(PyDict_Copy(warm_.ptr()));
  if (!env) throw py::error_already_set();
  PyObject* d = env.ptr();
  set_warm(d, k_request_method_, method_, request.method);
  set(d, k_raw_uri_, target_, request.target);
  set(d, k_query_string_, query_, request.query());
  set_warm(d, k_server_protocol_, protocol_, request.protocol);
  std::string path = decoded_path(request);
  std::string_view script_name = script_name_;
  if (request.has_script_name) {  // from a trusted front-end (forwarder_headers)
    script_name = request.script_name;
    while (!script_name.empty() && script_name.back() == '/') script_name.remove_suffix(1);
    // Per request, so never in the warm template: the next copy starts
    // from the configured SCRIPT_NAME again.
    if (PyDict_SetItem(d, k_script_name_.ptr(), latin1(script_name).ptr()) != 0) {
      throw py::error_already_set();
    }
  }
  if (!script_name.empty() && path.compare(0, script_name.size(), script_name) == 0 &&
      (path.size() == script_name.size() || path[script_name.size()] == '/')) {
    path.erase(0, script_name.size());
  }
  set(d, k_path_info_, path_, path);

  std::string_view host;
  for (const auto& [name, value] : request.headers) {
    if (http::iequals(name, "host")) host = value;  // gunicorn: the last one
    HeaderKey& hk = header_key(name);
    PyObject* k = hk.key.ptr();
    PyObject* existing = PyDict_GetItem(d, k);  // borrowed
    if (existing != nullptr && hk.is_http) {
      // RFC 9110 section 5.3: repeated fields combine into one list;
      // gunicorn joins them with a bare ",".
      py::object joined = py::reinterpret_borrow<py::object>(existing) + py::str(",") + latin1(value);
      if (PyDict_SetItem(d, k, joined.ptr()) != 0) throw py::error_already_set();
    } else {
      set(d, hk.key, hk.last, value);
    }
  }

  auto [server_name, server_port] = server_address(peer, host);
  set_warm(d, k_server_name_, server_name_, server_name);
  set_warm(d, k_server_port_, server_port_, server_port);
  set_warm(d, k_remote_addr_, remote_addr_, peer.remote_addr);
  if (!peer.remote_port.empty()) {
    set_warm(d, k_remote_port_, remote_port_, peer.remote_port);
  } else if (PyDict_DelItem(d, k_remote_port_.ptr()) != 0) {
    // A unix socket's peer has no port: gunicorn leaves the key out. The
    // template always holds it, so this deletes from the copy.
    throw py::error_already_set();
  }
  set_warm(d, k_url_scheme_, url_scheme_, peer.url_scheme);
  if (!peer.proxy_protocol.empty()) {
    // Only behind a PROXY-protocol balancer: plain keys, not interned.
    auto put = [d](const char* key, const std::string& value) {
      if (PyDict_SetItemString(d, key, latin1(value).ptr()) != 0) throw py::error_already_set();
    };
    put("PROXY_PROTOCOL", peer.proxy_protocol);
    if (!peer.proxy_addr.empty()) {
      put("PROXY_ADDR", peer.proxy_addr);
      put("PROXY_PORT", peer.proxy_port);
    }
  }
  if (PyDict_SetItem(d, k_wsgi_input_.ptr(), input.ptr()) != 0) throw py::error_already_set();
  if (!request.cgi_vars.empty()) set_cgi_vars(d, request);
  return env;
}

void EnvironBuilder::set_cgi_vars(PyObject* env, const http::Request& request) const {
  // The front-end's word on the request (the client's address and port,
  // the name it was addressed by, PATH_INFO as it routed it, uwsgi_param
  // ones), given to the app as uWSGI gives them; per request, so never in
  // the warm template.
  for (const auto& [name, value] : request.cgi_vars) {
    py::object key;
    if (auto it = cgi_keys_.find(name); it != cgi_keys_.end()) {
      key = it->second;
    } else {
      PyObject* made = latin1(name).release().ptr();  // any bytes, as latin-1
      PyUnicode_InternInPlace(&made);
      key = py::reinterpret_steal<py::object>(made);
      if (cgi_keys_.size() < 256) cgi_keys_.emplace(name, key);
    }
    if (PyDict_SetItem(env, key.ptr(), latin1(value).ptr()) != 0) throw py::error_already_set();
  }
}

}  // namespace cppgunicorn::wsgi
