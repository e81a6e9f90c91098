#include "wsgi/objects.h"

#include <pybind11/pybind11.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <new>

#include "http/parser.h"
#include "http/response_head.h"
#include "log/logger.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

namespace {
// The most one wait for body bytes moves at a time.
constexpr size_t kStreamTakeMax = 1024 * 1024;
}  // namespace

size_t InputStream::limit(py::object size) {
  size_t want = SIZE_MAX;
  if (!size.is_none()) {
    long long n = size.cast<long long>();
    if (n >= 0) want = static_cast<size_t>(n);
  }
  if (channel_ && want > 0) fill(want);
  return std::min(remaining(), want);
}

void InputStream::fill(size_t want) {
  if (ended_ || remaining() >= want) return;
  // Only data_ holds a streamed body: drop what was read before waiting.
  data_.erase(0, static_cast<size_t>(pos_));
  pos_ = 0;
  base::BodyChannel::Status status = base::BodyChannel::Status::kData;
  {
    // Waiting for the client: other Python threads run meanwhile.
    py::gil_scoped_release unlocked;
    while (data_.size() < want && status == base::BodyChannel::Status::kData) {
      status = channel_->take(&data_, std::min(want - data_.size(), kStreamTakeMax));
    }
  }
  if (status == base::BodyChannel::Status::kEnd) {
    ended_ = true;
  } else if (status == base::BodyChannel::Status::kFailed) {
    switch (channel_->failure()) {
      case base::BodyChannel::Failure::kTruncated:
        ended_ = true;  // gunicorn's LengthReader: what arrived, then b""
        break;
      case base::BodyChannel::Failure::kTimedOut:
        PyErr_SetString(PyExc_TimeoutError, channel_->message().c_str());
        throw py::error_already_set();
      default:
        PyErr_SetString(PyExc_OSError, channel_->message().c_str());
        throw py::error_already_set();
    }
  }
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
  size_t n = SIZE_MAX;
  if (!size.is_none()) {
    long long asked = size.cast<long long>();
    if (asked >= 0) n = static_cast<size_t>(asked);
  }
  if (channel_) return readline_streamed(n);
  n = std::min(n, remaining());
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

py::bytes InputStream::readline_streamed(size_t n) {
  // Up to and including the first newline within `n` bytes; waits for more
  // while neither is at hand and the body goes on.
  size_t scanned = 0;
  for (;;) {
    size_t at_hand = remaining();
    size_t look = std::min(at_hand, n);
    const char* start = data_.data() + pos_;
    const void* nl = std::memchr(start + scanned, '\n', look - scanned);
    if (nl != nullptr) {
      n = static_cast<size_t>(static_cast<const char*>(nl) - start) + 1;
      break;
    }
    if (at_hand >= n || ended_) {
      n = look;
      break;
    }
    scanned = look;
    fill(at_hand + 1);  // keeps the bytes at hand (pos_ may move to 0)
  }
  py::bytes out(data_.data() + pos_, n);
  pos_ += n;
  return out;
}

py::list InputStream::readlines(py::object hint) {
  long long budget = hint.is_none() ? -1 : hint.cast<long long>();
  py::list lines;
  size_t total = 0;
  for (;;) {
    py::bytes line = readline(py::none());
    size_t size = static_cast<size_t>(PyBytes_GET_SIZE(line.ptr()));
    if (size == 0) break;
    lines.append(line);
    total += size;
    if (budget > 0 && total >= static_cast<size_t>(budget)) break;
  }
  return lines;
}

PyObject* InputStream::next_line() {
  if (!channel_ && remaining() == 0) return nullptr;
  py::bytes line = readline(py::none());
  if (PyBytes_GET_SIZE(line.ptr()) == 0) return nullptr;
  return line.release().ptr();
}

py::object InputStream::next() {
  PyObject* line = next_line();
  if (line == nullptr) throw py::stop_iteration();
  return py::reinterpret_steal<py::object>(line);
}

std::string_view latin1_view(PyObject* value, const char* what, py::object* holder) {
  // PEP 3333: status and headers are native strings holding latin-1 only.
  if (!PyUnicode_Check(value)) {
    throw py::type_error(std::string(what) + " must be a str, not " + Py_TYPE(value)->tp_name);
  }
#if PY_VERSION_HEX < 0x030C0000
  if (PyUnicode_READY(value) != 0) throw py::error_already_set();
#endif
  // A str whose characters all fit in one byte is stored as latin-1
  // already: read it in place, without a bytes object.
  if (PyUnicode_KIND(value) == PyUnicode_1BYTE_KIND) {
    return {reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(value)),
            static_cast<size_t>(PyUnicode_GET_LENGTH(value))};
  }
  // Wider characters: let the codec raise its UnicodeEncodeError.
  *holder = py::reinterpret_steal<py::object>(PyUnicode_AsLatin1String(value));
  if (!*holder) throw py::error_already_set();
  return {PyBytes_AS_STRING(holder->ptr()), static_cast<size_t>(PyBytes_GET_SIZE(holder->ptr()))};
}

void latin1_text(PyObject* value, const char* what, std::string* out) {
  py::object holder;
  out->assign(latin1_view(value, what, &holder));
}

namespace {

void check_no_controls(std::string_view s, const char* what) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') {
      throw py::value_error(std::string(what) + " contains a CR, LF or NUL character");
    }
  }
}

}  // namespace

bool is_token(std::string_view s) {
  // RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*"
  // / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
  static constexpr auto kTchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 32] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool is_field_value(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return true;
}

namespace {

// Turns the exception a C++ body threw into the Python error of a C
// callable: returns nullptr with the error set.
PyObject* raise_current() {
  try {
    throw;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    // Nothing may unwind through CPython's C frames.
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception in cppgunicorn");
  }
  return nullptr;
}

template <typename F>
PyObject* guarded(F&& body) {
  try {
    return body();
  } catch (...) {
    return raise_current();
  }
}

// Up to `n` arguments by position or by these keyword names into `out`
// (borrowed; nullptr when not given). False with TypeError set otherwise.
bool parse_args(const char* fname, PyObject* const* args, size_t nargsf, PyObject* kwnames,
                const char* const* names, size_t n, PyObject** out) {
  size_t nargs = static_cast<size_t>(PyVectorcall_NARGS(nargsf));
  for (size_t i = 0; i < n; ++i) out[i] = nullptr;
  if (nargs > n) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zu arguments (%zu given)", fname, n, nargs);
    return false;
  }
  for (size_t i = 0; i < nargs; ++i) out[i] = args[i];
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    size_t i = 0;
    while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) ++i;
    if (i == n || out[i] != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument %R",
                   fname, key);
      return false;
    }
    out[i] = args[nargs + static_cast<size_t>(k)];
  }
  return true;
}

// One object's memory kept by a type when an instance dies, for the next
// request's instance (as CPython's own free lists do): a request makes and
// frees one of each, so allocation is a pointer swap. Guarded by the GIL.
template <typename T>
struct FreeSlot {
  T* kept = nullptr;
  T* take(PyTypeObject* type) {
    T* o = kept;
    if (o == nullptr) return PyObject_New(T, type);
    kept = nullptr;
    return PyObject_Init(reinterpret_cast<PyObject*>(o), type) ? o : nullptr;
  }
  void give(PyObject* self) {
    if (kept == nullptr) {
      kept = reinterpret_cast<T*>(self);
    } else {
      PyObject_Free(self);
    }
  }
};

// The callable start_response returns: write(data) for the same request.
struct WriteObject {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  ResponseState* state;  // nullptr once the request is over
};

struct StartResponseObject {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  ResponseState* state;  // nullptr once the request is over
  WriteObject* write;    // made on the first call
};

PyTypeObject write_type;
PyTypeObject start_response_type;

PyObject* write_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  ResponseState* state = reinterpret_cast<WriteObject*>(self)->state;
  if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != nullptr) {
    PyErr_SetString(PyExc_TypeError, "write() takes exactly one bytes argument");
    return nullptr;
  }
  PyObject* data = args[0];
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %s", Py_TYPE(data)->tp_name);
    return nullptr;
  }
  if (state == nullptr) {
    PyErr_SetString(PyExc_ValueError, "write() called after the response ended");
    return nullptr;
  }
  if (!state->called) {
    PyErr_SetString(PyExc_ValueError, "write() called before start_response()");
    return nullptr;
  }
  return guarded([&] {
    state->headers_sent = true;
    state->written.emplace_back(PyBytes_AS_STRING(data), static_cast<size_t>(PyBytes_GET_SIZE(data)));
    Py_RETURN_NONE;
  });
}

FreeSlot<WriteObject> free_write;

void write_dealloc(PyObject* self) { free_write.give(self); }

// start_response(status, headers, exc_info=None): checks everything before
// it records anything (a bad header leaves the response unstarted).
PyObject* start_response_body(StartResponseObject* self, PyObject* status, PyObject* headers,
                              PyObject* exc_info) {
  ResponseState* state = self->state;
  if (state == nullptr) throw py::value_error("start_response() called after the response ended");
  if (exc_info != nullptr && exc_info != Py_None) {
    if (state->headers_sent) {
      // PEP 3333: re-raise the original exception once headers are out.
      py::tuple info = py::reinterpret_borrow<py::object>(exc_info);
      py::object type = info[0], value = info[1], tb = info[2];
      PyErr_Restore(type.release().ptr(), value.release().ptr(), tb.release().ptr());
      throw py::error_already_set();
    }
  } else if (state->called) {
    throw py::value_error("start_response() called a second time without exc_info");
  }
  py::object status_holder;
  std::string status_text(latin1_view(status, "status", &status_holder));
  check_no_controls(status_text, "status");
  // RFC 9112 section 4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
  if (!is_field_value(status_text)) throw py::value_error("status contains a control character");
  if (status_text.size() < 3 || !std::isdigit(static_cast<unsigned char>(status_text[0])) ||
      !std::isdigit(static_cast<unsigned char>(status_text[1])) ||
      !std::isdigit(static_cast<unsigned char>(status_text[2])) ||
      (status_text.size() > 3 && status_text[3] != ' ')) {
    throw py::value_error("invalid status " + status_text + ": expected 'NNN Reason'");
  }
  if (status_text.size() == 3) {
    // "200" alone: the status line still needs the space before an
    // (empty) reason (RFC 9112 section 4); the standard phrase reads better.
    static bool warned = false;
    std::string_view reason = http::standard_reason(std::stoi(status_text));
    std::string completed = status_text + " " + std::string(reason);
    if (!warned) {
      warned = true;
      log::error_log().warning("start_response() status '" + status_text +
                               "' has no reason phrase; sending '" + completed + "'");
    }
    status_text = std::move(completed);
  }
  if (!PyList_Check(headers)) {
    throw py::type_error("response headers must be a list of (name, value) tuples");
  }
  // Filled in place; the request's list is only replaced once all is valid.
  http::HeaderList parsed;
  parsed.reserve(static_cast<size_t>(PyList_GET_SIZE(headers)));
  // Nothing below runs Python code, so the list cannot change under us.
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); ++i) {
    PyObject* item = PyList_GET_ITEM(headers, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      throw py::type_error("each response header must be a (name, value) tuple");
    }
    py::object name_holder, value_holder;
    std::string_view name = latin1_view(PyTuple_GET_ITEM(item, 0), "header name", &name_holder);
    std::string_view value = latin1_view(PyTuple_GET_ITEM(item, 1), "header value", &value_holder);
    // One pass each in the usual case; the first check that fails (in the
    // order of the messages below) is looked for only when one does.
    if (!is_token(name) || !is_field_value(value)) {
      check_no_controls(name, "header name");
      check_no_controls(value, "header value");
      // RFC 9110 section 5.1: a field name is a token; section 5.5: a value
      // holds no control character but HTAB. Anything else could split the
      // response or be read differently by a proxy.
      if (!is_token(name)) throw py::value_error("invalid header name (not an RFC 9110 token)");
      throw py::value_error("header value of " + std::string(name) +
                            " contains a control character");
    }
    parsed.emplace_back(std::string(name), std::string(value));
  }
  if (self->write == nullptr) {
    self->write = free_write.take(&write_type);
    if (self->write == nullptr) throw py::error_already_set();
    self->write->vectorcall = write_call;
    self->write->state = state;
  }
  state->called = true;
  state->status = std::move(status_text);
  state->headers = std::move(parsed);
  Py_INCREF(self->write);
  return reinterpret_cast<PyObject*>(self->write);
}

PyObject* start_response_call(PyObject* self, PyObject* const* args, size_t nargsf,
                              PyObject* kwnames) {
  static const char* const kNames[] = {"status", "headers", "exc_info"};
  PyObject* a[3];
  if (!parse_args("start_response", args, nargsf, kwnames, kNames, 3, a)) return nullptr;
  if (a[0] == nullptr || a[1] == nullptr) {
    PyErr_SetString(PyExc_TypeError,
                    "start_response() missing required argument 'status' or 'headers'");
    return nullptr;
  }
  return guarded([&] {
    return start_response_body(reinterpret_cast<StartResponseObject*>(self), a[0], a[1], a[2]);
  });
}

FreeSlot<StartResponseObject> free_start_response;

void start_response_dealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<StartResponseObject*>(self)->write);
  free_start_response.give(self);
}

// wsgi.input: an InputStream inside a plain CPython object.
struct InputObject {
  PyObject_HEAD
  InputStream stream;
};

PyTypeObject input_type;

InputStream& stream_of(PyObject* self) { return reinterpret_cast<InputObject*>(self)->stream; }

py::object arg_or_none(PyObject* arg) {
  return py::reinterpret_borrow<py::object>(arg != nullptr ? arg : Py_None);
}

PyObject* input_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const kNames[] = {"size"};
  PyObject* size;
  if (!parse_args("read", args, static_cast<size_t>(nargs), kwnames, kNames, 1, &size)) return nullptr;
  return guarded([&] { return stream_of(self).read(arg_or_none(size)).release().ptr(); });
}

PyObject* input_readline(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames) {
  static const char* const kNames[] = {"size"};
  PyObject* size;
  if (!parse_args("readline", args, static_cast<size_t>(nargs), kwnames, kNames, 1, &size)) {
    return nullptr;
  }
  return guarded([&] { return stream_of(self).readline(arg_or_none(size)).release().ptr(); });
}

PyObject* input_readlines(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
  static const char* const kNames[] = {"hint"};
  PyObject* hint;
  if (!parse_args("readlines", args, static_cast<size_t>(nargs), kwnames, kNames, 1, &hint)) {
    return nullptr;
  }
  return guarded([&] { return stream_of(self).readlines(arg_or_none(hint)).release().ptr(); });
}

PyObject* input_iter(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* input_next(PyObject* self) {
  // The end is a NULL return without an exception set (tp_iternext).
  return guarded([&] { return stream_of(self).next_line(); });
}

FreeSlot<InputObject> free_input;

void input_dealloc(PyObject* self) {
  stream_of(self).~InputStream();
  free_input.give(self);
}

template <typename F>
PyCFunction as_cfunction(F f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

PyMethodDef input_methods[] = {
    {"read", as_cfunction(input_read), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"readline", as_cfunction(input_readline), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"readlines", as_cfunction(input_readlines), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {nullptr, nullptr, 0, nullptr}};

// Static types, filled in once per process (PyType_Ready is a no-op on a
// ready type when a new interpreter imports the module again).
void ready_types() {
  if (start_response_type.tp_name == nullptr) {
    for (PyTypeObject* t : {&write_type, &start_response_type, &input_type}) {
      Py_SET_REFCNT(reinterpret_cast<PyObject*>(t), 1);
      t->tp_flags = Py_TPFLAGS_DEFAULT;
    }
    write_type.tp_name = "_cppgunicorn.Write";
    write_type.tp_basicsize = sizeof(WriteObject);
    write_type.tp_dealloc = write_dealloc;
    write_type.tp_vectorcall_offset = offsetof(WriteObject, vectorcall);
    write_type.tp_call = PyVectorcall_Call;
    write_type.tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;

    start_response_type.tp_name = "_cppgunicorn.StartResponse";
    start_response_type.tp_basicsize = sizeof(StartResponseObject);
    start_response_type.tp_dealloc = start_response_dealloc;
    start_response_type.tp_vectorcall_offset = offsetof(StartResponseObject, vectorcall);
    start_response_type.tp_call = PyVectorcall_Call;
    start_response_type.tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;

    input_type.tp_name = "_cppgunicorn.InputStream";
    input_type.tp_basicsize = sizeof(InputObject);
    input_type.tp_dealloc = input_dealloc;
    input_type.tp_iter = input_iter;
    input_type.tp_iternext = input_next;
    input_type.tp_methods = input_methods;
  }
  for (PyTypeObject* t : {&write_type, &start_response_type, &input_type}) {
    if (PyType_Ready(t) != 0) throw py::error_already_set();
  }
}

}  // namespace

PyObject* new_start_response(ResponseState* state) {
  if (!(start_response_type.tp_flags & Py_TPFLAGS_READY)) ready_types();  // before the module's import
  StartResponseObject* o = free_start_response.take(&start_response_type);
  if (o == nullptr) throw py::error_already_set();
  o->vectorcall = start_response_call;
  o->state = state;
  o->write = nullptr;
  return reinterpret_cast<PyObject*>(o);
}

void detach_start_response(PyObject* start_response) {
  auto* o = reinterpret_cast<StartResponseObject*>(start_response);
  o->state = nullptr;
  if (o->write != nullptr) o->write->state = nullptr;
}

PyObject* new_input_stream(InputStream stream) {
  if (!(input_type.tp_flags & Py_TPFLAGS_READY)) ready_types();
  InputObject* o = free_input.take(&input_type);
  if (o == nullptr) throw py::error_already_set();
  new (&o->stream) InputStream(std::move(stream));
  return reinterpret_cast<PyObject*>(o);
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
  // The name first: pybind11's isinstance looks the C++ type up in its
  // registry, which costs more than the rest of a small response.
  if (std::strcmp(Py_TYPE(result.ptr())->tp_name, "_cppgunicorn.FileWrapper") != 0 ||
      !py::isinstance<FileWrapper>(result)) {
    return false;
  }
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

namespace {
void define_objects_module(py::module_& m) {
  ready_types();
  m.add_object("InputStream", reinterpret_cast<PyObject*>(&input_type));
  m.add_object("StartResponse", reinterpret_cast<PyObject*>(&start_response_type));
  m.add_object("Write", reinterpret_cast<PyObject*>(&write_type));
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
  // The server's error log, for the Python the server runs
  // (cppgunicorn._hooks: the log object hooks receive).
  m.def("log_write", [](int level, const std::string& message) {
    log::error_log().write(static_cast<log::Level>(level), message);
  }, py::arg("level"), py::arg("message"));
}
}  // namespace

py::module_ objects_module() {
  // Made on first use and kept in sys.modules, not registered through the
  // inittab: the interpreter may be one we did not start (the `python` that
  // imported our extension module), and the inittab is closed once Python
  // runs.
  py::dict modules = py::module_::import("sys").attr("modules");
  if (modules.contains("_cppgunicorn")) return modules["_cppgunicorn"].cast<py::module_>();
  static PyModuleDef definition;
  py::module_ m = py::module_::create_extension_module(
      "_cppgunicorn", "The objects cppgunicorn hands to WSGI applications.", &definition);
  define_objects_module(m);
  modules["_cppgunicorn"] = m;
  return m;
}

}  // namespace cppgunicorn::wsgi
