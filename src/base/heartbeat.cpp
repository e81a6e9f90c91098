#include "base/heartbeat.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>
#include <stdexcept>

namespace cppgunicorn::base {

uint64_t Heartbeat::now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

Heartbeat::Heartbeat(const std::string& tmp_dir) {
  int fd = -1;
  int flags = MAP_SHARED | MAP_ANONYMOUS;
  if (!tmp_dir.empty()) {
    std::string path = tmp_dir + "/cppgunicorn-heartbeat-XXXXXX";
    fd = ::mkstemp(path.data());
    if (fd < 0) {
      throw std::runtime_error("Invalid value for worker_tmp_dir: '" + tmp_dir +
                               "': " + std::strerror(errno));
    }
    ::unlink(path.c_str());
    if (::ftruncate(fd, sizeof(Page)) != 0) {
      ::close(fd);
      throw std::runtime_error(std::string("heartbeat file: ") + std::strerror(errno));
    }
    flags = MAP_SHARED;
  }
  void* mem = ::mmap(nullptr, sizeof(Page), PROT_READ | PROT_WRITE, flags, fd, 0);
  if (fd >= 0) ::close(fd);
  if (mem == MAP_FAILED) throw std::runtime_error(std::string("heartbeat mmap: ") + std::strerror(errno));
  page_ = new (mem) Page{};
  beat();
}

Heartbeat::~Heartbeat() {
  if (page_ != nullptr) ::munmap(page_, sizeof(Page));
}

void Heartbeat::beat() { page_->beat_ms.store(now_ms(), std::memory_order_relaxed); }

void Heartbeat::set_ready() { page_->ready.store(1, std::memory_order_release); }

bool Heartbeat::ready() const { return page_->ready.load(std::memory_order_acquire) != 0; }

void Heartbeat::beat_at(uint64_t ms) { page_->beat_ms.store(ms, std::memory_order_relaxed); }

uint64_t Heartbeat::last_beat_ms() const { return page_->beat_ms.load(std::memory_order_relaxed); }

void Heartbeat::set_request(std::string_view method, std::string_view target) {
  // Only for the master's log line: a torn read there is harmless.
  size_t n = 0;
  auto put = [&](std::string_view s) {
    size_t k = std::min(s.size(), sizeof(page_->request) - n);
    std::memcpy(page_->request + n, s.data(), k);
    n += k;
  };
  put(method);
  put(" ");
  put(target);
  page_->request_length.store(static_cast<uint32_t>(n), std::memory_order_release);
}

void Heartbeat::clear_request() { page_->request_length.store(0, std::memory_order_release); }

std::string Heartbeat::request() const {
  uint32_t n = page_->request_length.load(std::memory_order_acquire);
  return std::string(page_->request, std::min<size_t>(n, sizeof(page_->request)));
}

}  // namespace cppgunicorn::base
