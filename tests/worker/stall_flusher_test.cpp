#include "worker/stall_flusher.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

using cppgunicorn::worker::StallFlusher;
using namespace std::chrono_literals;

namespace {
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::string read_available() {
    std::string out(1 << 16, '\0');
    ssize_t n = ::recv(fds[1], out.data(), out.size(), MSG_DONTWAIT);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }
};
}  // namespace

TEST_CASE("stall flusher: a call that returns in time writes nothing") {
  SocketPair sp;
  StallFlusher flusher(std::chrono::seconds(60));
  std::vector<std::string_view> pieces = {"head ", "body"};
  for (int i = 0; i < 3; ++i) {
    flusher.arm(sp.fds[0], pieces);
    StallFlusher::Outcome o = flusher.disarm();
    CHECK(o.written == 0);
    CHECK(o.error == 0);
  }
  CHECK(flusher.flushes() == 0);
  CHECK(sp.read_available().empty());
}

TEST_CASE("stall flusher: a call that stalls has the held bytes written, once, in order") {
  SocketPair sp;
  StallFlusher flusher(1ms);
  std::vector<std::string_view> pieces = {"head ", "", "body ", "end"};
  flusher.arm(sp.fds[0], pieces);
  // The "call" lasts until the flusher has acted (no deadline to guess).
  for (int i = 0; i < 10000 && flusher.flushes() == 0; ++i) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(5ms);  // a second stall time: still one write
  StallFlusher::Outcome o = flusher.disarm();
  CHECK(flusher.flushes() == 1);
  CHECK(o.written == 13);
  CHECK(sp.read_available() == "head body end");
  // The next call starts afresh.
  flusher.arm(sp.fds[0], pieces);
  for (int i = 0; i < 10000 && flusher.flushes() == 1; ++i) std::this_thread::sleep_for(1ms);
  CHECK(flusher.disarm().written == 13);
}

TEST_CASE("stall flusher: a peer that is gone is reported, not raised") {
  SocketPair sp;
  ::close(sp.fds[1]);
  sp.fds[1] = -1;
  StallFlusher flusher(1ms);
  std::vector<std::string_view> pieces = {"data"};
  flusher.arm(sp.fds[0], pieces);
  for (int i = 0; i < 10000 && flusher.flushes() == 0; ++i) std::this_thread::sleep_for(1ms);
  StallFlusher::Outcome o = flusher.disarm();
  CHECK(o.written == 0);
  CHECK(o.error == EPIPE);
}
