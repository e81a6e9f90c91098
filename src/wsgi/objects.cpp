#include "wsgi/objects.h"

#include <pybind11/embed.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "http/parser.h"
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

void InputStream::take(char* out, size_t n) {
  while (n > 0) {
    size_t got;
    if (pos_ < file_size_) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(n, file_size_ - pos_));
      {
        // Disk I/O: other Python threads may run meanwhile.
        py::gil_scoped_release unlocked;
        got = file_->read_at(pos_, out, want);
      }
      if (got == 0) throw std::runtime_error("the spooled request body could not be read");
    } else {
      size_t at = static_cast<size_t>(pos_ - file_size_);
      got = std::min(n, data_.size() - at);
      std::memcpy(out, data_.data() + at, got);
    }
    out += got;
    n -= got;
    pos_ += got;
  }
}

py::bytes InputStream::read(py::object size) {
  size_t n = limit(size);
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n));
  if (out == nullptr) throw py::error_already_set();
  py::bytes result = py::reinterpret_steal<py::bytes>(out);
  take(PyBytes_AS_STRING(out), n);
  return result;
}

py::bytes InputStream::readline(py::object size) {
  size_t n = limit(size);
  if (pos_ >= file_size_) {
    size_t at = static_cast<size_t>(pos_ - file_size_);
    size_t nl = data_.find('\n', at);
    if (nl != std::string::npos && nl - at + 1 < n) n = nl - at + 1;
    py::bytes out(data_.data() + at, n);
    pos_ += n;
    return out;
  }
  // In the spooled part: look for the newline a block at a time.
  std::string line;
  char block[8192];
  while (line.size() < n) {
    uint64_t start = pos_;
    size_t want = std::min(sizeof block, n - line.size());
    take(block, want);
    const void* nl = std::memchr(block, '\n', want);
    size_t keep = nl ? static_cast<size_t>(static_cast<const char*>(nl) - block) + 1 : want;
    line.append(block, keep);
    pos_ = start + keep;
    if (nl) break;
  }
  return py::bytes(line);
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
    // RFC 9110 section 5.1: a field name is a token; section 5.5: a value
    // holds no control character but HTAB. Anything else could split the
    // response or be read differently by a proxy.
    bool token = !name.empty();
    for (char c : name) token = token && http::is_tchar(static_cast<unsigned char>(c));
    if (!token) throw py::value_error("invalid header name (not an RFC 9110 token)");
    for (char c : value) {
      unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) {
        throw py::value_error("header value of " + name + " contains a control character");
      }
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

bool file_body_of(py::handle result, FileBody* out) {
  if (!py::isinstance<FileWrapper>(result)) return false;
  py::object filelike = result.cast<FileWrapper&>().filelike;
  try {
    if (!py::hasattr(filelike, "fileno")) return false;
    int fd = filelike.attr("fileno")().cast<int>();
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    // The object's own position (a buffered reader may have read ahead).
    long long pos = py::hasattr(filelike, "tell") ? filelike.attr("tell")().cast<long long>()
                                                   : static_cast<long long>(::lseek(fd, 0, SEEK_CUR));
    if (pos < 0) return false;
    out->fd = fd;
    out->offset = static_cast<uint64_t>(pos);
    uint64_t end = static_cast<uint64_t>(st.st_size);
    out->size = end > out->offset ? end - out->offset : 0;
    return true;
  } catch (py::error_already_set&) {
    PyErr_Clear();
    return false;
  } catch (py::cast_error&) {
    return false;
  }
}

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
