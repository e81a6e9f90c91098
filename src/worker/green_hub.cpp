#include "worker/green_hub.h"

#include <pybind11/embed.h>
#include <pybind11/stl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#endif

#include "base/heartbeat.h"
#include "worker/response_channel.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"

namespace py = pybind11;

namespace cppgunicorn::worker {

namespace {
// The hub side lives in the package, where it can be read and tested as
// Python (python/cppgunicorn/_green.py).
constexpr const char* kModule = "cppgunicorn._green";
constexpr const char* kPoolCapsule = "cppgunicorn.green_pool";

// pool.serve_one() as a plain CPython function, not a pybind11 one: the
// greenlet inside it switches to others that call it too, and pybind11
// keeps a per-thread stack of call frames that must unwind in order.
PyObject* serve_one(PyObject* capsule, PyObject* /*unused*/) {
  auto* pool = static_cast<const GreenHub::Pool*>(PyCapsule_GetPointer(capsule, kPoolCapsule));
  if (pool == nullptr) return nullptr;
  bool served;
  try {
    served = pool->serve_one();
  } catch (const std::exception& e) {  // serve_one catches per request; this is a bug
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
  return PyBool_FromLong(served ? 1 : 0);
}

PyMethodDef serve_one_def = {"serve_one", serve_one, METH_NOARGS,
                             "Serves one queued request in this greenlet; False: none."};

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer keeps one shadow per stack address, but greenlets take
// turns at the same addresses (greenlet copies a switched-out greenlet's
// stack away and back): after a switch the shadow is still that of the
// frames that were there before. Unpoisoning the stack above the switch
// point after every switch (greenlet.settrace), and the stale shadow of
// deeper frames below it, where the greenlet's next calls go, keeps the
// reports to real ones, at the cost of not checking frames that live across
// a switch.
// greenlet's memcpy of those frames is not checked either
// (ASAN_OPTIONS=replace_intrin=0; see integration/conftest.py).
char* main_stack_bottom = nullptr;
char* main_stack_top = nullptr;
constexpr size_t kDeeperFrames = 1 << 20;

PyObject* unpoison_stack(PyObject* /*unused*/, PyObject* /*event_and_args*/) {
  char here = 0;
  if (main_stack_top != nullptr && &here < main_stack_top && &here > main_stack_bottom) {
    char* from = static_cast<size_t>(&here - main_stack_bottom) > kDeeperFrames
                     ? &here - kDeeperFrames
                     : main_stack_bottom;
    __asan_unpoison_memory_region(from, static_cast<size_t>(main_stack_top - from));
  }
  Py_RETURN_NONE;
}

PyMethodDef unpoison_def = {"unpoison_stack", unpoison_stack, METH_VARARGS, nullptr};

void trace_switches_for_sanitizer() {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* base = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &base, &size) == 0) {
    main_stack_bottom = static_cast<char*>(base);
    main_stack_top = main_stack_bottom + size;
  }
  pthread_attr_destroy(&attr);
  py::object tracer = py::reinterpret_steal<py::object>(PyCFunction_New(&unpoison_def, nullptr));
  if (!tracer) throw py::error_already_set();
  py::module_::import("greenlet").attr("settrace")(tracer);
}
#else
void trace_switches_for_sanitizer() {}
#endif
}  // namespace

GreenHub::GreenHub(std::string backend)
    : backend_(std::move(backend)), last_seen_ms_(base::Heartbeat::now_ms()) {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

GreenHub::~GreenHub() {
  if (fd_ >= 0) ::close(fd_);
}

bool GreenHub::patch(const std::string& backend) {
  wsgi::Gil gil;
  try {
    py::module_::import(kModule).attr("patch")(backend);
    return true;
  } catch (py::error_already_set& e) {
    e.restore();
    wsgi::log_python_error("Exception in worker process (patching for the " + backend +
                           " worker class)");
    return false;
  }
}

void GreenHub::post() {
  // One write until the dispatcher takes: under load, most posts find it
  // signalled already and cost no system call.
  if (signalled_.exchange(true)) return;
  uint64_t one = 1;
  // EAGAIN only when the counter is at its maximum: it is unread, so the
  // dispatcher wakes anyway.
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void GreenHub::notify(ResponseChannel& channel) { notify_id(channel.id); }

void GreenHub::notify_id(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    woken_.push_back(id);
  }
  post();
}

void GreenHub::wait_on(uint64_t id, std::unique_lock<std::mutex>& lock,
                       const std::function<bool()>& ready) {
  // As in wait(): only this greenlet runs between the check and the park,
  // so a notify after the check finds it parked.
  while (!ready()) {
    lock.unlock();
    {
      wsgi::Gil gil;
      park_(id);
    }
    lock.lock();
  }
}

std::vector<uint64_t> GreenHub::take() {
  // The counter is read first, then the flag cleared, then the wake list
  // taken. Cleared before the read, a post landing between the two would
  // leave the flag set with the counter drained: every later post would
  // skip its write and the dispatcher would sleep for good. In this order a
  // post that found the flag set has its work in what is taken below, and
  // one after the clear writes again.
  uint64_t count;
  while (::read(fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  signalled_.store(false);
  last_seen_ms_.store(base::Heartbeat::now_ms(), std::memory_order_relaxed);
  std::vector<uint64_t> woken;
  std::lock_guard lock(mu_);
  woken.swap(woken_);
  return woken;
}

void GreenHub::wait(ResponseChannel& channel, const std::function<bool()>& ready) {
  for (;;) {
    {
      std::lock_guard lock(channel.mu);
      if (ready()) return;
    }
    // Nothing runs between the check and the park but this greenlet (one
    // hub thread), and the dispatcher delivers a wake only after it runs:
    // a notify that follows the check finds the greenlet parked.
    park_(channel.id);
  }
}

bool GreenHub::run(const Pool& pool, std::chrono::milliseconds grace) {
  wsgi::Gil gil;
  trace_switches_for_sanitizer();
  py::module_ green = py::module_::import(kModule);
  py::object park_holder = py::none();
  park_ = [&park_holder](uint64_t id) { park_holder(id); };
  py::capsule capsule(&pool, kPoolCapsule);
  py::object serve_one_fn =
      py::reinterpret_steal<py::object>(PyCFunction_New(&serve_one_def, capsule.ptr()));
  if (!serve_one_fn) throw py::error_already_set();
  py::object api = py::module_::import("types").attr("SimpleNamespace")(
      py::arg("fileno") = fd_, py::arg("size") = pool.size,
      py::arg("take") = py::cpp_function([this, &pool] {
        std::vector<uint64_t> woken = take();
        return py::make_tuple(pool.queued(), std::move(woken), pool.stopping());
      }),
      py::arg("serve_one") = serve_one_fn,
      py::arg("set_park") = py::cpp_function([&park_holder](py::object park) {
        park_holder = std::move(park);
      }));
  bool finished;
  try {
    finished = green.attr("serve")(backend_, api, grace.count() / 1000.0).cast<bool>();
  } catch (...) {
    park_ = nullptr;
    park_holder = py::none();
    throw;
  }
  park_ = nullptr;
  park_holder = py::none();
  return finished;
}

}  // namespace cppgunicorn::worker
