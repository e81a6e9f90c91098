// The --threads pool without sockets: a libuv loop on this thread, the app
// on pool threads, and the ThreadedResponse a connection would pull from.
#include "worker/app_pool.h"

#include <doctest/doctest.h>
#include <pybind11/embed.h>

#include <chrono>
#include <string>
#include <thread>

#include "base/body_channel.h"
#include "http/parser.h"
#include "wsgi/application.h"

namespace py = pybind11;
using namespace cppgunicorn;
using Next = wsgi::ResponseSource::Next;

namespace {

constexpr const char* kAppSource = R"(
import threading
produced = 0
closed = []
release = threading.Event()

class Endless:
    def __iter__(self):
        while True:
            yield b"e" * 1024
    def close(self):
        closed.append(True)

def app(environ, start_response):
    global produced
    path = environ["PATH_INFO"]
    start_response("200 OK", [("X-Path", path)])
    if path == "/three":
        return [b"one ", b"two ", b"three"]
    if path == "/many":
        def gen():
            global produced
            for _ in range(100):
                produced += 1
                yield b"m" * 65536
        return gen()
    if path == "/endless":
        return Endless()
    if path == "/body":
        return [environ["wsgi.input"].read()]
    if path == "/wait":
        release.wait(10)
        return [b"released"]
    return [b""]
)";

// The app module, made once (the test runner holds the interpreter).
py::module_ app_module() {
  py::module_ sys = py::module_::import("sys");
  py::dict modules = sys.attr("modules");
  if (!modules.contains("pool_test_app")) {
    py::object m = py::module_::import("types").attr("ModuleType")("pool_test_app");
    py::exec(kAppSource, m.attr("__dict__"));
    modules["pool_test_app"] = m;
  }
  return py::module_::import("pool_test_app");
}

http::Request request_for(const std::string& path) {
  http::Parser p;
  std::string bytes = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  auto r = p.feed(bytes.data(), bytes.size());
  REQUIRE(r.status == http::Parser::Status::kRequestReady);
  return p.request();
}

// A loop, an app and a pool of two threads; the GIL is released while the
// pool exists, as in a worker.
struct PoolFixture {
  uv_loop_t loop{};
  std::unique_ptr<wsgi::Application> app;
  std::unique_ptr<worker::AppPool> pool;
  std::optional<py::gil_scoped_release> released;

  PoolFixture() {
    app_module();
    app = std::make_unique<wsgi::Application>("pool_test_app:app", wsgi::EnvironOptions{});
    REQUIRE(uv_loop_init(&loop) == 0);
    released.emplace();
    pool = std::make_unique<worker::AppPool>(&loop, *app, 2);
    REQUIRE(pool->start() == 0);
  }
  ~PoolFixture() {
    pool->close_handle();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(pool->stop(std::chrono::milliseconds(5000)));
    pool.reset();
    uv_loop_close(&loop);
    released.reset();
    app.reset();
  }

  // Pulls the whole body, running the loop whenever the response is pending.
  std::string drain(worker::ThreadedResponse& response, bool& woken) {
    std::string body;
    for (;;) {
      std::string_view chunk;
      Next next = response.next(&chunk);
      if (next == Next::kChunk) {
        body += chunk;
      } else if (next == Next::kPending) {
        woken = false;
        while (!woken) uv_run(&loop, UV_RUN_ONCE);
      } else {
        REQUIRE(next == Next::kDone);
        return body;
      }
    }
  }
};

template <class F>
bool eventually(F condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("a response made on a pool thread reaches the loop whole and in order") {
  PoolFixture f;
  http::Request request = request_for("/three");
  bool woken = false;
  auto response = f.pool->submit(request, wsgi::PeerInfo{}, [&] { woken = true; });
  CHECK(f.drain(*response, woken) == "one two three");
  CHECK(response->responded());
  CHECK(response->status() == "200 OK");
  REQUIRE(response->headers().size() == 1);
  CHECK(response->headers()[0].second == "/three");
}

TEST_CASE("a pool thread stops producing while its response is not taken") {
  PoolFixture f;
  http::Request request = request_for("/many");
  bool woken = false;
  auto response = f.pool->submit(request, wsgi::PeerInfo{}, [&] { woken = true; });
  auto produced = [] {
    py::gil_scoped_acquire gil;
    return app_module().attr("produced").cast<int>();
  };
  // Nothing is taken: the thread gets no further than the channel's limit.
  REQUIRE(eventually([&] { return produced() > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(produced() <= static_cast<int>(worker::AppPool::kChannelLimit / 65536) + 1);
  CHECK(f.drain(*response, woken).size() == 100u * 65536u);
  CHECK(produced() == 100);
}

TEST_CASE("closing a response stops its thread, which calls the iterable's close()") {
  PoolFixture f;
  http::Request request = request_for("/endless");
  bool woken = false;
  auto response = f.pool->submit(request, wsgi::PeerInfo{}, [&] { woken = true; });
  std::string_view chunk;
  Next next;
  while ((next = response->next(&chunk)) == Next::kPending) uv_run(&f.loop, UV_RUN_ONCE);
  CHECK(next == Next::kChunk);
  response->close();
  CHECK(eventually([] {
    py::gil_scoped_acquire gil;
    return py::len(app_module().attr("closed")) == 1;
  }));
  // The thread is free again.
  http::Request again = request_for("/three");
  auto second = f.pool->submit(again, wsgi::PeerInfo{}, [&] { woken = true; });
  CHECK(f.drain(*second, woken) == "one two three");
}

TEST_CASE("the heartbeat carries the start of the oldest app call in progress") {
  PoolFixture f;
  base::Heartbeat heartbeat("");
  uint64_t before = base::Heartbeat::now_ms();
  http::Request request = request_for("/wait");
  bool woken = false;
  auto response = f.pool->submit(request, wsgi::PeerInfo{}, [&] { woken = true; });
  REQUIRE(eventually([&] {
    f.pool->beat(heartbeat);
    return heartbeat.request() == "GET /wait";
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  f.pool->beat(heartbeat);
  CHECK(heartbeat.last_beat_ms() >= before);
  CHECK(heartbeat.last_beat_ms() + 50 <= base::Heartbeat::now_ms());  // not "now"
  {
    py::gil_scoped_acquire gil;
    app_module().attr("release").attr("set")();
  }
  CHECK(f.drain(*response, woken) == "released");
  REQUIRE(eventually([&] {
    f.pool->beat(heartbeat);
    return heartbeat.request().empty();
  }));
}

TEST_CASE("a streamed body: the app's read waits for the loop's bytes, off the heartbeat") {
  PoolFixture f;
  http::Request request = request_for("/body");
  auto body = std::make_shared<base::BodyChannel>(8);
  request.body_stream = body;
  bool woken = false;
  auto response = f.pool->submit(request, wsgi::PeerInfo{}, [&] { woken = true; });
  CHECK_FALSE(body->push("123456789"));  // past the limit: the loop would stop reading
  // The app's read() takes them; the pool wakes the loop to read again.
  while (!woken) uv_run(&f.loop, UV_RUN_ONCE);
  // read() waits for the rest; that is the client's time, not the app's.
  base::Heartbeat heartbeat("");
  CHECK(eventually([&] {
    f.pool->beat(heartbeat);
    return heartbeat.request().empty();
  }));
  body->push("abc");
  body->finish();
  CHECK(f.drain(*response, woken) == "123456789abc");
}
