// How many connections each worker holds, in shared memory the master maps
// once, before its first fork, so that every worker sees every other.
//
// All workers watch the same listening sockets and all are woken by a new
// connection; the first to call accept() takes it, and would take a whole
// burst (wrk's, a proxy's pool being filled) if nothing held it back. So a
// worker about to accept reads its peers' counts and, when it holds more
// than the least loaded peer by more than one, leaves the connection in the
// queue for a peer (worker::Worker's accept path, docs/design.md "Accept
// balance"). The board is advice, never a lock: a stale count costs at most
// one connection on the wrong side.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace cppgunicorn::base {

class AcceptBoard {
 public:
  // Workers beyond this many take no part (they accept freely).
  static constexpr size_t kSlots = 256;

  AcceptBoard();  // throws std::runtime_error when mmap fails
  ~AcceptBoard();
  AcceptBoard(const AcceptBoard&) = delete;
  AcceptBoard& operator=(const AcceptBoard&) = delete;

  // The master, before it forks a worker: a free slot (absent until the
  // worker publishes), or -1 when all are taken.
  int claim();
  // The master, once the worker is reaped: the slot is absent and free.
  void release(int slot);

  // The worker, whenever its count changes while it accepts.
  void publish(int slot, size_t open_connections);
  // The worker, once it accepts no more (stopping): peers stop waiting on it.
  void withdraw(int slot);
  // Counted per connection taken: peers tell a worker that is taking
  // connections from one that is not (not scheduled, or busy).
  void count_accept(int slot);
  // Set while the worker's loop thread runs the app (--threads 1): it
  // cannot accept before the app returns, so peers do not wait for it.
  void set_busy(int slot, bool busy);

  // The fewest connections any other present worker that is not busy
  // holds; none when there is no such worker.
  std::optional<uint32_t> fewest_besides(int slot) const;
  // The sum of the other workers' accept counts (wraps; compare for equality).
  uint64_t accepts_besides(int slot) const;

 private:
  static constexpr uint32_t kAbsent = UINT32_MAX;
  struct alignas(64) Entry {
    std::atomic<uint32_t> open;      // connections held, or kAbsent
    std::atomic<uint64_t> accepted;  // connections taken, ever
    std::atomic<uint32_t> busy;      // in the app on the loop thread
  };
  struct Shared {
    std::atomic<uint32_t> used;  // slots below this may be present
    Entry entries[kSlots];
  };
  Shared* shared_ = nullptr;
  std::vector<bool> taken_;  // the master's own view
};

}  // namespace cppgunicorn::base
