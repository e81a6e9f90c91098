// A C++ program with work of its own (it counts primes on a thread) that
// serves examples/flask_app from the same process through cppgunicorn's
// in-process server, shows its count to the app through a Python module it
// registers (embed_host), and stops the server itself: after --seconds, or
// when the app's POST /host/shutdown asks it to.
//
//   embed_cpp [--bind 127.0.0.1:8000] [--flask-app DIR] [--seconds N] [--threads N]
//
// It prints "serving on http://..." once the server serves, and exits 0
// after its own stop().
#include <Python.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cppgunicorn/server.h"

namespace {

// The program's own work: primes counted by trial division, one number at a
// time, until told to stop.
struct PrimeCounter {
  std::atomic<long> count{0};
  std::atomic<long> largest{0};
  std::atomic<bool> stop{false};

  void run() {
    for (long n = 2; !stop.load(std::memory_order_relaxed); ++n) {
      bool prime = true;
      for (long d = 2; d * d <= n; ++d) {
        if (n % d == 0) {
          prime = false;
          break;
        }
      }
      if (prime) {
        largest.store(n, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
};

PrimeCounter g_primes;

// The shutdown the app asks for, waited on by main().
std::mutex g_mu;
std::condition_variable g_changed;
bool g_shutdown_asked = false;

// --- The embed_host module the app imports ------------------------------------
PyObject* host_primes(PyObject*, PyObject*) {
  return Py_BuildValue("(ll)", g_primes.count.load(), g_primes.largest.load());
}

PyObject* host_request_shutdown(PyObject*, PyObject*) {
  {
    std::lock_guard lock(g_mu);
    g_shutdown_asked = true;
  }
  g_changed.notify_all();
  Py_RETURN_NONE;
}

PyMethodDef g_methods[] = {
    {"primes", host_primes, METH_NOARGS, "(count, largest) of the primes found so far."},
    {"request_shutdown", host_request_shutdown, METH_NOARGS, "Asks the host to stop the server."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT, "embed_host", "The embed_cpp host program.", -1,
                       g_methods, nullptr, nullptr, nullptr, nullptr};

PyMODINIT_FUNC init_embed_host() { return PyModule_Create(&g_module); }

std::string option(std::vector<std::string>& args, const std::string& name, std::string fallback) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) return args[i + 1];
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string bind = option(args, "--bind", "127.0.0.1:8000");
  std::string flask_app = option(args, "--flask-app", EMBED_CPP_SOURCE_DIR "/../flask_app");
  int seconds = std::atoi(option(args, "--seconds", "0").c_str());
  int threads = std::atoi(option(args, "--threads", "2").c_str());

  // The Python the library starts: the environment of the one it was built
  // with (Flask's site-packages), and the package's own modules as installed.
  cppgunicorn::set_default_python(option(args, "--python", CPPGUNICORN_PYTHON_EXECUTABLE));
  cppgunicorn::set_python_package_dir(CPPGUNICORN_PYTHON_PACKAGE_DIR);
  // Before the interpreter starts (the server starts it): our module.
  PyImport_AppendInittab("embed_host", &init_embed_host);

  std::thread worker([] { g_primes.run(); });

  cppgunicorn::Config config;
  try {
    config.set("bind", bind)
        .set("threads", threads)
        .set("pythonpath", std::vector<std::string>{EMBED_CPP_SOURCE_DIR, flask_app})
        .set("accesslog", "-")
        .set_app("embed_admin:app");
  } catch (const cppgunicorn::ConfigError& e) {
    std::fprintf(stderr, "embed_cpp: %s\n", e.what());
    g_primes.stop = true;
    worker.join();
    return 2;
  }
  cppgunicorn::Server server(config);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed_cpp: %s\n", e.what());
    g_primes.stop = true;
    worker.join();
    return server.wait();
  }
  std::printf("serving on %s\n", server.addresses().front().c_str());
  std::fflush(stdout);

  {
    std::unique_lock lock(g_mu);
    auto asked = [] { return g_shutdown_asked; };
    if (seconds > 0) g_changed.wait_for(lock, std::chrono::seconds(seconds), asked);
    else g_changed.wait(lock, asked);
  }
  // Our own decision: requests in flight get two seconds.
  server.stop(std::chrono::seconds(2));
  int status = server.wait();
  g_primes.stop = true;
  worker.join();
  std::printf("stopped with status %d after %ld primes\n", status, g_primes.count.load());
  return status;
}
