#include "wsgi/exchange.h"

#include "wsgi/python_config.h"

#include "log/logger.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

void log_python_error(std::string_view message) {
  std::string text(message);
  try {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    py::object t = py::reinterpret_steal<py::object>(type);
    py::object v = py::reinterpret_steal<py::object>(value);
    py::object b = py::reinterpret_steal<py::object>(tb);
    if (t) {
      py::object lines = py::module_::import("traceback")
                             .attr("format_exception")(t, v ? v : py::none(), b ? b : py::none());
      text += "\n";
      text += py::str("").attr("join")(lines).cast<std::string>();
    }
  } catch (...) {
    PyErr_Clear();
    text += " (the traceback could not be formatted)";
  }
  log::error_log().error(text);
}

namespace {
// Restores a caught pybind11 error as Python's current exception so that
// log_python_error can format it.
void restore(py::error_already_set& e) { e.restore(); }
}  // namespace

Exchange::Exchange(const py::object& app, const EnvironBuilder& environ)
    : app_(app), environ_(environ) {}

Exchange::~Exchange() {
  // The worker closes on every path; this is the last line of defence.
  close();
  // An app that kept start_response or write() gets an error from them now.
  if (start_response_) detach_start_response(start_response_.ptr());
}

void Exchange::log_error(const char* what) {
  log_python_error(std::string(what) + " " + path_);
}

bool Exchange::call(http::Request& request, const PeerInfo& peer) {
  // gunicorn: "Error handling request GET /path".
  path_ = request.method + " " + request.target;
  try {
    py::object input = py::reinterpret_steal<py::object>(new_input_stream(
        request.body_stream
            ? InputStream(std::move(request.body_stream))
            : InputStream(std::move(request.body), std::move(request.body_file))));
    py::dict env = environ_.build(request, peer, input);
    environ_dict_ = env;
    if (PythonConfig* hooks = PythonConfig::hooks()) hooks->pre_request(env);
    start_response_ = py::reinterpret_steal<py::object>(new_start_response(&state_));
    PyObject* args[] = {env.ptr(), start_response_.ptr()};
    result_ = py::reinterpret_steal<py::object>(PyObject_Vectorcall(app_.ptr(), args, 2, nullptr));
    if (!result_) throw py::error_already_set();
    closed_ = false;
    PyObject* r = result_.ptr();
    if (PyList_CheckExact(r) || PyTuple_CheckExact(r)) {
      // The usual `return [body]`: walked by index, no iterator object.
      Py_ssize_t n = PyList_CheckExact(r) ? PyList_GET_SIZE(r) : PyTuple_GET_SIZE(r);
      single_chunk_ = state_.written.empty() && n <= 1;
      item_index_ = 0;
    } else {
      iterator_ = py::reinterpret_steal<py::object>(PyObject_GetIter(r));
      if (!iterator_) throw py::error_already_set();
    }
    return true;
  } catch (py::error_already_set& e) {
    restore(e);
    log_error("Error handling request");
    close();
    return false;
  }
}

Exchange::Next Exchange::next(std::string_view* out) {
  current_ = py::object();
  current_is_written_ = false;
  if (written_index_ < state_.written.size()) {
    current_is_written_ = true;
    *out = state_.written[written_index_++];
    return Next::kChunk;
  }
  if (!iterator_ && item_index_ < 0) return Next::kDone;
  try {
    for (;;) {
      PyObject* item;
      if (item_index_ >= 0) {
        PyObject* r = result_.ptr();
        bool list = PyList_CheckExact(r);
        Py_ssize_t n = list ? PyList_GET_SIZE(r) : PyTuple_GET_SIZE(r);
        if (item_index_ >= n) {
          item_index_ = -1;
          return Next::kDone;
        }
        item = list ? PyList_GET_ITEM(r, item_index_) : PyTuple_GET_ITEM(r, item_index_);
        ++item_index_;
        Py_INCREF(item);
      } else {
        item = PyIter_Next(iterator_.ptr());
        if (item == nullptr) {
          if (PyErr_Occurred()) throw py::error_already_set();
          iterator_ = py::object();
          return Next::kDone;
        }
      }
      current_ = py::reinterpret_steal<py::object>(item);
      if (!PyBytes_Check(item)) {
        throw py::type_error(std::string("response body items must be bytes, not ") +
                             Py_TYPE(item)->tp_name);
      }
      if (PyBytes_GET_SIZE(item) == 0) continue;
      *out = std::string_view(PyBytes_AS_STRING(item), static_cast<size_t>(PyBytes_GET_SIZE(item)));
      return Next::kChunk;
    }
  } catch (py::error_already_set& e) {
    restore(e);
    log_error("Error handling request");
  } catch (std::exception& e) {
    log::error_log().error(std::string("Error handling request ") + path_ + ": " + e.what());
  }
  iterator_ = py::object();
  item_index_ = -1;
  current_ = py::object();
  return Next::kError;
}

std::string_view Exchange::hold_chunk() {
  if (current_is_written_) {
    // A later write() may grow the vector and move its strings.
    held_written_.push_back(std::move(state_.written[written_index_ - 1]));
    current_is_written_ = false;
    return held_written_.back();
  }
  PyObject* item = current_.ptr();
  held_.push_back(std::move(current_));
  return std::string_view(PyBytes_AS_STRING(item), static_cast<size_t>(PyBytes_GET_SIZE(item)));
}

void Exchange::release_held_chunks() {
  held_.clear();
  held_written_.clear();
}

void Exchange::close() {
  close_iterable();
  // gunicorn calls post_request after the response, whatever happened.
  if (environ_dict_ && !post_request_done_) {
    post_request_done_ = true;
    if (PythonConfig* hooks = PythonConfig::hooks()) {
      hooks->post_request(environ_dict_,
                          state_.called ? state_.status : std::string("500 Internal Server Error"),
                          state_.headers);
    }
  }
}

bool Exchange::environ_text(const std::string& key, std::string* out) const {
  if (!environ_dict_) return false;
  // gunicorn matches {name}e atoms without regard to case.
  PyObject* v = PyDict_GetItemString(environ_dict_.ptr(), key.c_str());  // borrowed
  if (v == nullptr) {
    std::string upper = key;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    v = PyDict_GetItemString(environ_dict_.ptr(), upper.c_str());
  }
  if (v == nullptr) {
    std::string lower = key;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    v = PyDict_GetItemString(environ_dict_.ptr(), lower.c_str());
  }
  if (v == nullptr) return false;
  try {
    *out = py::str(v).cast<std::string>();
  } catch (py::error_already_set&) {
    PyErr_Clear();
    return false;
  }
  return true;
}

void Exchange::close_iterable() {
  if (closed_) return;
  closed_ = true;
  current_ = py::object();
  iterator_ = py::object();
  item_index_ = -1;
  py::object result = std::move(result_);
  if (!result) return;
  // A plain list or tuple (the usual `return [body]`) has no close(); asking
  // would raise and format an AttributeError on every request.
  if (PyList_CheckExact(result.ptr()) || PyTuple_CheckExact(result.ptr())) return;
  // PEP 3333: close() is called whether the iteration ended normally or not.
  try {
    // One lookup; a missing attribute is not an error.
    PyObject* close = PyObject_GetAttrString(result.ptr(), "close");
    if (close == nullptr) {
      if (!PyErr_ExceptionMatches(PyExc_AttributeError)) throw py::error_already_set();
      PyErr_Clear();
      return;
    }
    py::reinterpret_steal<py::object>(close)();
  } catch (py::error_already_set& e) {
    restore(e);
    log_error("Error closing the response of");
  }
}

}  // namespace cppgunicorn::wsgi
