#include "base/accept_board.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace cppgunicorn::base {

AcceptBoard::AcceptBoard() : taken_(kSlots, false) {
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error(std::string("accept board mmap: ") + std::strerror(errno));
  shared_ = new (mem) Shared{};
  for (Entry& e : shared_->entries) e.open.store(kAbsent, std::memory_order_relaxed);
}

AcceptBoard::~AcceptBoard() {
  if (shared_ != nullptr) ::munmap(shared_, sizeof(Shared));
}

int AcceptBoard::claim() {
  for (size_t i = 0; i < kSlots; ++i) {
    if (taken_[i]) continue;
    taken_[i] = true;
    shared_->entries[i].open.store(kAbsent, std::memory_order_relaxed);
    if (shared_->used.load(std::memory_order_relaxed) <= i) {
      shared_->used.store(static_cast<uint32_t>(i + 1), std::memory_order_relaxed);
    }
    return static_cast<int>(i);
  }
  return -1;
}

void AcceptBoard::release(int slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= kSlots) return;
  taken_[slot] = false;
  shared_->entries[slot].open.store(kAbsent, std::memory_order_relaxed);
  shared_->entries[slot].busy.store(0, std::memory_order_relaxed);
}

void AcceptBoard::set_busy(int slot, bool busy) {
  if (slot >= 0) shared_->entries[slot].busy.store(busy ? 1 : 0, std::memory_order_relaxed);
}

void AcceptBoard::publish(int slot, size_t open_connections) {
  if (slot < 0) return;
  uint32_t n = open_connections >= kAbsent ? kAbsent - 1 : static_cast<uint32_t>(open_connections);
  shared_->entries[slot].open.store(n, std::memory_order_relaxed);
}

void AcceptBoard::withdraw(int slot) {
  if (slot >= 0) shared_->entries[slot].open.store(kAbsent, std::memory_order_relaxed);
}

void AcceptBoard::count_accept(int slot) {
  if (slot < 0) return;
  // One writer per slot: a relaxed load and store, no locked instruction.
  std::atomic<uint64_t>& a = shared_->entries[slot].accepted;
  a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

std::optional<uint32_t> AcceptBoard::fewest_besides(int slot) const {
  std::optional<uint32_t> fewest;
  uint32_t used = shared_->used.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < used && i < kSlots; ++i) {
    if (static_cast<int>(i) == slot) continue;
    const Entry& e = shared_->entries[i];
    uint32_t n = e.open.load(std::memory_order_relaxed);
    if (n == kAbsent || e.busy.load(std::memory_order_relaxed) != 0) continue;
    if (!fewest || n < *fewest) fewest = n;
  }
  return fewest;
}

uint64_t AcceptBoard::accepts_besides(int slot) const {
  uint64_t sum = 0;
  uint32_t used = shared_->used.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < used && i < kSlots; ++i) {
    if (static_cast<int>(i) != slot) sum += shared_->entries[i].accepted.load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace cppgunicorn::base
