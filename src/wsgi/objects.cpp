#include "wsgi/objects.h"

#include <pybind11/embed.h>

#include "log/logger.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

size_t InputStream::limit(py::object size) const {
  size_t left = remaining();
  if (size.is_none()) return left;
  long long n = size.cast<long long>();
  if (n < 0) return left;
  return std::min(left, static_cast<size_t>(n));
}

py::bytes InputStream::read(py::object size) {
  size_t n = limit(size);
  py::bytes out(data_.data() + pos_, n);
  pos_ += n;
  return out;
}

py::bytes InputStream::readline(py::object size) {
  size_t n = limit(size);
  size_t nl = data_.find('\n', pos_);
  if (nl != std::string::npos && nl - pos_ + 1 < n) n = nl - pos_ + 1;
  py::bytes out(data_.data() + pos_, n);
  pos_ += n;
  return out;
}

py::list InputStream::readlines(py::object hint) {
  long long budget = hint.is_none() ? -1 : hint.cast<long long>();
  py::list lines;
  size_t total = 0;
  while (remaining() > 0) {
    size_t before = pos_;
    lines.append(readline(py::none()));
    total += pos_ - before;
    if (budget > 0 && total >= static_cast<size_t>(budget)) break;
  }
  return lines;
}

py::object InputStream::next() {
  if (remaining() == 0) throw py::stop_iteration();
  return readline(py::none());
}

namespace {

std::string native_string(py::handle value, const char* what) {
  // PEP 3333: status and headers are native strings holding latin-1 only.
  if (!PyUnicode_Check(value.ptr())) {
    throw py::type_error(std::string(what) + " must be a str, not " +
                         std::string(py::str(py::type::handle_of(value).attr("__name__"))));
  }
#if PY_VERSION_HEX < 0x030C0000
  if (PyUnicode_READY(value.ptr()) != 0) throw py::error_already_set();
#endif
  // A str whose characters all fit in one byte is stored as latin-1
  // already: copy it without making a bytes object.
  if (PyUnicode_KIND(value.ptr()) == PyUnicode_1BYTE_KIND) {
    return std::string(reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(value.ptr())),
                       static_cast<size_t>(PyUnicode_GET_LENGTH(value.ptr())));
  }
  // Wider characters: let the codec raise its UnicodeEncodeError.
  Py_ssize_t size = 0;
  py::bytes encoded = py::reinterpret_steal<py::bytes>(
      PyUnicode_AsLatin1String(value.ptr()));
  if (!encoded) throw py::error_already_set();
  char* data = nullptr;
  PyBytes_AsStringAndSize(encoded.ptr(), &data, &size);
  return std::string(data, static_cast<size_t>(size));
}

void check_no_controls(const std::string& s, const char* what) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') {
      throw py::value_error(std::string(what) + " contains a CR, LF or NUL character");
    }
  }
}

}  // namespace

py::object StartResponse::call(py::object self, py::object status, py::object headers,
                               py::object exc_info) {
  if (!exc_info.is_none()) {
    if (state_->headers_sent) {
      // PEP 3333: re-raise the original exception once headers are out.
      py::tuple info = exc_info;
      py::object type = info[0], value = info[1], tb = info[2];
      PyErr_Restore(type.release().ptr(), value.release().ptr(), tb.release().ptr());
      throw py::error_already_set();
    }
  } else if (state_->called) {
    throw py::value_error("start_response() called a second time without exc_info");
  }
  std::string status_text = native_string(status, "status");
  check_no_controls(status_text, "status");
  if (status_text.size() < 3 || !std::isdigit(static_cast<unsigned char>(status_text[0])) ||
      !std::isdigit(static_cast<unsigned char>(status_text[1])) ||
      !std::isdigit(static_cast<unsigned char>(status_text[2])) ||
      (status_text.size() > 3 && status_text[3] != ' ')) {
    throw py::value_error("invalid status " + status_text + ": expected 'NNN Reason'");
  }
  if (!PyList_Check(headers.ptr())) {
    throw py::type_error("response headers must be a list of (name, value) tuples");
  }
  http::HeaderList parsed;
  for (py::handle item : headers) {
    if (!PyTuple_Check(item.ptr()) || PyTuple_GET_SIZE(item.ptr()) != 2) {
      throw py::type_error("each response header must be a (name, value) tuple");
    }
    std::string name = native_string(PyTuple_GET_ITEM(item.ptr(), 0), "header name");
    std::string value = native_string(PyTuple_GET_ITEM(item.ptr(), 1), "header value");
    check_no_controls(name, "header name");
    check_no_controls(value, "header value");
    if (name.empty() || name.find(':') != std::string::npos || name.find(' ') != std::string::npos) {
      throw py::value_error("invalid header name " + name);
    }
    parsed.emplace_back(std::move(name), std::move(value));
  }
  state_->called = true;
  state_->status = std::move(status_text);
  state_->headers = std::move(parsed);
  return self.attr("write");
}

void StartResponse::write(py::bytes data) {
  if (!state_->called) throw py::value_error("write() called before start_response()");
  state_->headers_sent = true;
  state_->written.emplace_back(std::string_view(data));
}

namespace {

// wsgi.errors: text goes to the error log file, as gunicorn does.
struct ErrorStream {
  void write(const std::string& s) { log::error_log().file().write(s); }
  void writelines(py::iterable lines) {
    for (py::handle l : lines) write(py::str(l).cast<std::string>());
  }
  void flush() {}
};

// wsgi.file_wrapper (PEP 3333 "Optional Platform-Specific File Handling").
struct FileWrapper {
  py::object filelike;
  long long blksize;
  py::object next() {
    py::object data = filelike.attr("read")(blksize);
    if (py::len(data) == 0) throw py::stop_iteration();
    return data;
  }
  void close() {
    if (py::hasattr(filelike, "close")) filelike.attr("close")();
  }
};

}  // namespace

PYBIND11_EMBEDDED_MODULE(_cppgunicorn, m) {
  m.doc() = "The objects cppgunicorn hands to WSGI applications.";
  py::class_<InputStream>(m, "InputStream")
      .def("read", &InputStream::read, py::arg("size") = py::none())
      .def("readline", &InputStream::readline, py::arg("size") = py::none())
      .def("readlines", &InputStream::readlines, py::arg("hint") = py::none())
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &InputStream::next);
  py::class_<StartResponse>(m, "StartResponse")
      .def("__call__",
           [](py::object self, py::object status, py::object headers, py::object exc_info) {
             return self.cast<StartResponse&>().call(self, status, headers, exc_info);
           },
           py::arg("status"), py::arg("headers"), py::arg("exc_info") = py::none())
      .def("write", &StartResponse::write);
  py::class_<ErrorStream>(m, "ErrorStream")
      .def(py::init<>())
      .def("write", &ErrorStream::write)
      .def("writelines", &ErrorStream::writelines)
      .def("flush", &ErrorStream::flush);
  py::class_<FileWrapper>(m, "FileWrapper")
      .def(py::init([](py::object filelike, long long blksize) {
             return FileWrapper{std::move(filelike), blksize};
           }),
           py::arg("filelike"), py::arg("blksize") = 8192)
      .def_readonly("filelike", &FileWrapper::filelike)
      .def_readonly("blksize", &FileWrapper::blksize)
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &FileWrapper::next)
      .def("close", &FileWrapper::close);
}

void register_embedded_module() {
  // PYBIND11_EMBEDDED_MODULE registers itself at static-initialisation time;
  // this function exists so the linker keeps this object file.
}

}  // namespace cppgunicorn::wsgi
