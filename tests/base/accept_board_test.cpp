#include "base/accept_board.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

using cppgunicorn::base::AcceptBoard;

TEST_CASE("accept board: a worker sees the fewest connections among its present peers") {
  AcceptBoard board;
  int a = board.claim();
  int b = board.claim();
  int c = board.claim();
  CHECK(a == 0);
  CHECK(b == 1);
  CHECK(c == 2);
  // Claimed but not yet listening: absent, so nobody waits for them.
  CHECK_FALSE(board.fewest_besides(a).has_value());
  board.publish(a, 5);
  CHECK_FALSE(board.fewest_besides(a).has_value());  // alone
  board.publish(b, 3);
  board.publish(c, 7);
  CHECK(board.fewest_besides(a) == 3u);
  CHECK(board.fewest_besides(b) == 5u);
  // A stopping worker withdraws; a reaped one is released.
  board.withdraw(b);
  CHECK(board.fewest_besides(a) == 7u);
  board.release(c);
  CHECK_FALSE(board.fewest_besides(a).has_value());
  // The released slot is the next one claimed (b only withdrew).
  CHECK(board.claim() == 2);
}

TEST_CASE("accept board: accept counts tell a peer that takes connections from a stuck one") {
  AcceptBoard board;
  int a = board.claim();
  int b = board.claim();
  uint64_t before = board.accepts_besides(a);
  board.count_accept(a);
  CHECK(board.accepts_besides(a) == before);  // its own do not count
  board.count_accept(b);
  CHECK(board.accepts_besides(a) == before + 1);
}

TEST_CASE("accept board: shared with a process forked after it was mapped") {
  AcceptBoard board;
  int a = board.claim();
  int b = board.claim();
  board.publish(a, 4);
  pid_t pid = ::fork();
  if (pid == 0) {
    board.publish(b, 2);
    board.count_accept(b);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(board.fewest_besides(a) == 2u);
  CHECK(board.accepts_besides(a) == 1u);
}

TEST_CASE("accept board: slots run out; the rest take no part") {
  AcceptBoard board;
  for (size_t i = 0; i < AcceptBoard::kSlots; ++i) CHECK(board.claim() == static_cast<int>(i));
  CHECK(board.claim() == -1);
  board.publish(-1, 3);  // a worker without a slot: nothing happens
  board.release(-1);
  CHECK_FALSE(board.fewest_besides(0).has_value());
}

TEST_CASE("accept board: a peer busy in the app is not waited for") {
  AcceptBoard board;
  int a = board.claim();
  int b = board.claim();
  int c = board.claim();
  board.publish(a, 6);
  board.publish(b, 1);
  board.publish(c, 4);
  CHECK(board.fewest_besides(a) == 1u);
  board.set_busy(b, true);
  CHECK(board.fewest_besides(a) == 4u);
  board.set_busy(c, true);
  CHECK_FALSE(board.fewest_besides(a).has_value());
  board.set_busy(b, false);
  CHECK(board.fewest_besides(a) == 1u);
  // A reaped worker's flag does not outlive it.
  board.release(c);
  CHECK(board.claim() == c);
  board.publish(c, 0);
  CHECK(board.fewest_besides(a) == 0u);
}
