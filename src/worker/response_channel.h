// One request served off the loop thread (by a pool thread or a greenlet),
// and the events its response crosses back to the loop thread in.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/request.h"
#include "wsgi/environ.h"
#include "wsgi/response_source.h"

namespace cppgunicorn::worker {

class ServeWaits;

// What start_response fixed, handed over with the first event.
struct ResponseHead {
  bool responded = false;
  bool single_chunk = false;
  std::string status;
  http::HeaderList headers;
  std::vector<std::pair<std::string, std::string>> environ_values;  // {key}e atoms
};

struct ResponseEvent {
  wsgi::ResponseSource::Next kind = wsgi::ResponseSource::Next::kDone;  // never kPending
  std::string chunk;
  std::optional<ResponseHead> head;  // on the first event only
};

// The serving side owns `request` and `peer` once the job is queued; the
// rest is shared under `mu`, except `on_ready`, which only the loop thread
// touches. It lives on the heap (shared_ptr): a greenlet's C stack is
// copied away while it is switched out, so nothing the loop thread reads
// may live there.
struct ResponseChannel {
  uint64_t id = 0;              // names the channel to a greenlet's hub
  ServeWaits* waits = nullptr;  // the pool's; outlives every channel
  http::Request request;
  wsgi::PeerInfo peer;

  std::mutex mu;
  std::condition_variable room;  // ThreadWaits: a pool thread waits here
  std::deque<ResponseEvent> events;
  size_t queued_bytes = 0;
  bool loop_waiting = false;  // next() found nothing: wake the loop on the next event
  bool cancelled = false;     // the connection is done with this response

  std::function<void()> on_ready;  // loop thread only
};

}  // namespace cppgunicorn::worker
