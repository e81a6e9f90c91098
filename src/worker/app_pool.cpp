#include "worker/app_pool.h"

#include <unistd.h>

#include "log/logger.h"
#include "worker/green_hub.h"
#include "worker/response_channel.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"

namespace cppgunicorn::worker {

// ---------------------------------------------------------------------------
// How a pool thread waits.

void ThreadWaits::wait(ResponseChannel& channel, const std::function<bool()>& ready) {
  std::unique_lock lock(channel.mu);
  channel.room.wait(lock, ready);
}

void ThreadWaits::notify(ResponseChannel& channel) { channel.room.notify_all(); }

// ---------------------------------------------------------------------------
// Loop-thread side.

ThreadedResponse::ThreadedResponse(std::shared_ptr<ResponseChannel> channel)
    : channel_(std::move(channel)) {}

ThreadedResponse::~ThreadedResponse() { close(); }

wsgi::ResponseSource::Next ThreadedResponse::next(std::string_view* out) {
  ResponseEvent event;
  bool made_room = false;
  {
    std::lock_guard lock(channel_->mu);
    if (channel_->cancelled) return Next::kDone;
    if (channel_->events.empty()) {
      channel_->loop_waiting = true;
      return Next::kPending;
    }
    event = std::move(channel_->events.front());
    channel_->events.pop_front();
    bool was_full = channel_->queued_bytes >= AppPool::kChannelLimit;
    channel_->queued_bytes -= event.chunk.size();
    made_room = was_full && channel_->queued_bytes < AppPool::kChannelLimit;
  }
  if (made_room) channel_->waits->notify(*channel_);
  if (event.head) {
    responded_ = event.head->responded;
    single_chunk_ = event.head->single_chunk;
    status_ = std::move(event.head->status);
    headers_ = std::move(event.head->headers);
    environ_values_ = std::move(event.head->environ_values);
  }
  if (event.kind == Next::kChunk) {
    current_ = std::move(event.chunk);
    *out = current_;
  }
  return event.kind;
}

bool ThreadedResponse::environ_text(const std::string& key, std::string* out) const {
  for (const auto& [name, value] : environ_values_) {
    if (name == key) {
      *out = value;
      return true;
    }
  }
  return false;
}

void ThreadedResponse::close() {
  channel_->on_ready = nullptr;
  {
    std::lock_guard lock(channel_->mu);
    if (channel_->cancelled) return;
    channel_->cancelled = true;
    channel_->events.clear();
    channel_->queued_bytes = 0;
  }
  channel_->waits->notify(*channel_);
  current_.clear();
}

// ---------------------------------------------------------------------------
// The pool.

AppPool::AppPool(uv_loop_t* loop, const wsgi::Application& app, int threads,
                 std::vector<std::string> environ_keys, std::unique_ptr<base::Waiter> waiter)
    : loop_(loop),
      app_(app),
      thread_count_(static_cast<size_t>(threads)),
      environ_keys_(std::move(environ_keys)),
      waiter_(waiter ? std::move(waiter) : std::make_unique<base::ThreadWaiter>()) {
  for (size_t i = 0; i < thread_count_; ++i) {
    body_waiters_.push_back(std::make_unique<BodyWaiter>(*this, i));
  }
}

void AppPool::BodyWaiter::wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                               const std::function<bool()>& ready) {
  // Waiting for a slow client is not the app being stuck: the heartbeat
  // does not count this time. (Lock order: the body channel's, then mu_.)
  pool_.set_slot(slot_, 0);
  if (pool_.green_) {
    pool_.green_->wait_on(channel_id_.load(), lock, ready);
  } else {
    pool_.waiter_->wait(lock, cv, ready);
  }
  pool_.set_slot(slot_, base::Heartbeat::now_ms());
}

void AppPool::BodyWaiter::notify() {
  // A wake that reaches the slot's next request instead (a late push into a
  // finished body) only makes that greenlet check its own wait again.
  if (pool_.green_) pool_.green_->notify_id(channel_id_.load());
}

AppPool::AppPool(uv_loop_t* loop, const wsgi::Application& app, std::string green_backend,
                 size_t greenlets, std::vector<std::string> environ_keys)
    : loop_(loop),
      app_(app),
      thread_count_(greenlets),
      environ_keys_(std::move(environ_keys)),
      waiter_(std::make_unique<base::ThreadWaiter>()),
      green_(std::make_unique<GreenHub>(std::move(green_backend))),
      waits_(green_.get()) {
  // A body still arriving parks the greenlet reading it (BodyWaiter).
  for (size_t i = 0; i < thread_count_; ++i) {
    body_waiters_.push_back(std::make_unique<BodyWaiter>(*this, i));
  }
}

AppPool::~AppPool() {
  if (!threads_.empty()) stop(std::chrono::milliseconds(1000));
}

int AppPool::start() {
  int rc = uv_async_init(loop_, async_.get(), on_async);
  if (rc != 0) return rc;
  async_.mark_initialised();
  async_.get()->data = this;
  {
    std::lock_guard lock(mu_);
    async_open_ = true;
    slots_.resize(thread_count_);
    if (green_) {
      for (size_t i = thread_count_; i > 0; --i) free_slots_.push_back(i - 1);
      return 0;  // the greenlets start on the hub, in run_hub()
    }
    running_ = thread_count_;
  }
  for (size_t i = 0; i < thread_count_; ++i) {
    threads_.emplace_back([this, i] { thread_main(i); });
  }
  return 0;
}

std::unique_ptr<ThreadedResponse> AppPool::submit(http::Request& request,
                                                  const wsgi::PeerInfo& peer,
                                                  std::function<void()> on_ready) {
  auto channel = std::make_shared<ResponseChannel>();
  // The connection keeps its request for the response head and the access
  // log; the thread gets a copy, and the body, which only the app reads.
  std::string body = std::move(request.body);
  channel->request = request;
  channel->request.body = std::move(body);
  channel->peer = peer;
  channel->on_ready = std::move(on_ready);
  channel->id = ++next_channel_id_;
  channel->waits = waits_;
  if (const auto& body = channel->request.body_stream) {
    // The app made room for more body bytes: the connection reads again.
    std::weak_ptr<ResponseChannel> weak = channel;
    body->set_on_room([this, weak] {
      if (auto c = weak.lock()) wake(c);
    });
  }
  auto response = std::make_unique<ThreadedResponse>(channel);
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(channel));
  }
  if (green_) {
    green_->post();
  } else {
    jobs_cv_.notify_one();
  }
  return response;
}

void AppPool::on_async(uv_async_t* handle) {
  auto* self = static_cast<AppPool*>(handle->data);
  std::vector<std::shared_ptr<ResponseChannel>> ready;
  {
    std::lock_guard lock(self->mu_);
    ready.swap(self->ready_);
  }
  for (const auto& channel : ready) {
    // A copy: the callback may close the response, which clears on_ready.
    std::function<void()> callback = channel->on_ready;
    if (callback) callback();
  }
}

void AppPool::wake(const std::shared_ptr<ResponseChannel>& channel) {
  std::lock_guard lock(mu_);
  ready_.push_back(channel);
  // Never after close_handle(): the handle's memory goes in its close callback.
  if (async_open_) uv_async_send(async_.get());
}

void AppPool::set_slot(size_t slot, uint64_t since_ms) {
  std::lock_guard lock(mu_);
  slots_[slot].since_ms = since_ms;
}

void AppPool::beat(base::Heartbeat& heartbeat) {
  if (green_) {
    // A greenlet may wait as long as it likes (a long poll, a slow
    // upstream): what must not stop is the hub, which every greenlet
    // needs. Stamp the last time the dispatcher answered a ping; when it
    // is late, the greenlet holding the hub is most likely the one that
    // started last among those in progress (none starts while the hub is
    // held), so that request is named.
    green_->ping();
    uint64_t seen = green_->last_seen_ms();
    uint64_t newest = 0;
    std::string method, target;
    if (base::Heartbeat::now_ms() > seen + kHubLateMs) {
      std::lock_guard lock(mu_);
      for (const Slot& s : slots_) {
        if (s.since_ms > newest) {
          newest = s.since_ms;
          method = s.method;
          target = s.target;
        }
      }
    }
    if (newest == 0) {
      heartbeat.clear_request();
    } else {
      heartbeat.set_request(method, target);
    }
    heartbeat.beat_at(seen);
    return;
  }
  uint64_t oldest = 0;
  std::string method, target;
  {
    std::lock_guard lock(mu_);
    for (const Slot& s : slots_) {
      if (s.since_ms != 0 && (oldest == 0 || s.since_ms < oldest)) {
        oldest = s.since_ms;
        method = s.method;
        target = s.target;
      }
    }
  }
  if (oldest == 0) {
    heartbeat.clear_request();
    heartbeat.beat();
    return;
  }
  heartbeat.set_request(method, target);
  heartbeat.beat_at(oldest);
}

void AppPool::close_handle() {
  {
    std::lock_guard lock(mu_);
    async_open_ = false;
    ready_.clear();
  }
  async_.close();
}

bool AppPool::stop(std::chrono::milliseconds grace) {
  if (green_) return hub_finished_;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  jobs_cv_.notify_all();
  bool all_exited;
  {
    std::unique_lock lock(mu_);
    all_exited = exit_cv_.wait_for(lock, grace, [this] { return running_ == 0; });
  }
  for (std::thread& t : threads_) {
    if (all_exited) {
      t.join();
    } else {
      t.detach();
    }
  }
  threads_.clear();
  return all_exited;
}

// ---------------------------------------------------------------------------
// Pool threads.

void AppPool::thread_main(size_t slot) {
  {
    wsgi::PythonThread python;
    for (;;) {
      std::shared_ptr<ResponseChannel> job;
      {
        std::unique_lock lock(mu_);
        waiter_->wait(lock, jobs_cv_, [this] { return stopping_ || !jobs_.empty(); });
        // Queued jobs are still served while stopping: their connections
        // either wait for them or were closed (then they are skipped).
        if (jobs_.empty()) break;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      // Nothing may end a pool thread (std::terminate): a failure the
      // exchange did not turn into a 500 itself ends this request only.
      try {
        serve(slot, job);
      } catch (const std::exception& e) {  // pybind11's error_already_set too
        fail(slot, job, e.what());
      } catch (...) {
        fail(slot, job, "unknown exception");
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    --running_;
  }
  exit_cv_.notify_all();
}

namespace {
void push(ResponseChannel& channel, ResponseEvent event, bool* wake) {
  std::lock_guard lock(channel.mu);
  if (channel.cancelled) return;
  channel.queued_bytes += event.chunk.size();
  channel.events.push_back(std::move(event));
  *wake = channel.loop_waiting;
  channel.loop_waiting = false;
}
}  // namespace

bool AppPool::wait_for_room(size_t slot, ResponseChannel& channel) {
  {
    std::lock_guard lock(channel.mu);
    if (channel.cancelled) return false;
    if (channel.queued_bytes < kChannelLimit) return true;
  }
  // Waiting for a slow client is not the app being stuck: the heartbeat
  // does not count this time.
  set_slot(slot, 0);
  waits_->wait(channel, [&] { return channel.cancelled || channel.queued_bytes < kChannelLimit; });
  bool cancelled;
  {
    std::lock_guard lock(channel.mu);
    cancelled = channel.cancelled;
  }
  set_slot(slot, base::Heartbeat::now_ms());
  return !cancelled;
}

void AppPool::fail(size_t slot, const std::shared_ptr<ResponseChannel>& channel,
                   const std::string& what) {
  log::error_log().error("Error in a worker thread serving " + channel->request.method + " " +
                         channel->request.target + ": " + what);
  set_slot(slot, 0);
  ResponseEvent event;
  event.kind = wsgi::ResponseSource::Next::kError;  // a 500, or a close mid-body
  event.head.emplace();
  bool wake = false;
  push(*channel, std::move(event), &wake);
  if (wake) this->wake(channel);
}

void AppPool::serve(size_t slot, const std::shared_ptr<ResponseChannel>& channel) {
  {
    std::lock_guard lock(channel->mu);
    if (channel->cancelled) return;  // the connection went away while queued
  }
  {
    std::lock_guard lock(mu_);
    Slot& s = slots_[slot];
    s.since_ms = base::Heartbeat::now_ms();
    s.method = channel->request.method;
    s.target = channel->request.target;
  }
  if (const auto& body = channel->request.body_stream) {
    body_waiters_[slot]->serving(channel->id);
    body->set_waiter(body_waiters_[slot].get());
  }
  using Next = wsgi::ResponseSource::Next;
  std::unique_ptr<wsgi::Exchange> exchange;
  bool called;
  {
    wsgi::Gil gil;
    exchange = app_.exchange();
    called = exchange->call(channel->request, channel->peer);
  }
  bool first = true;
  bool wake = false;
  ResponseEvent event;
  if (!called) {
    event.kind = Next::kError;
    event.head.emplace();
  }
  while (called) {
    if (!wait_for_room(slot, *channel)) {
      event = ResponseEvent();  // nobody is listening any more
      break;
    }
    event = ResponseEvent();
    {
      wsgi::Gil gil;
      std::string_view chunk;
      event.kind = exchange->next(&chunk);
      if (event.kind == Next::kChunk) event.chunk.assign(chunk);
      if (first) {
        ResponseHead& head = event.head.emplace();
        head.responded = exchange->responded();
        head.single_chunk = exchange->body_is_single_chunk();
        head.status = exchange->status();
        head.headers = exchange->headers();
        std::string value;
        for (const std::string& key : environ_keys_) {
          if (exchange->environ_text(key, &value)) head.environ_values.emplace_back(key, value);
        }
        // The loop sends the head with this event: from now on
        // start_response(exc_info) must re-raise.
        if (event.kind != Next::kError && head.responded) exchange->mark_headers_sent();
      }
      if (event.kind != Next::kChunk) {
        // PEP 3333: close() once the iteration ended, before the
        // connection moves on to its next request.
        exchange->close();
        exchange.reset();
      }
    }
    first = false;
    if (event.kind != Next::kChunk) break;
    wake = false;
    push(*channel, std::move(event), &wake);
    if (wake) this->wake(channel);
  }
  if (exchange) {
    wsgi::Gil gil;
    exchange->close();
    exchange.reset();
  }
  set_slot(slot, 0);
  wake = false;
  push(*channel, std::move(event), &wake);
  if (wake) this->wake(channel);
}

// ---------------------------------------------------------------------------
// Green pools: the hub's side.

void AppPool::run_hub(std::chrono::milliseconds grace) {
  GreenHub::Pool pool;
  pool.size = thread_count_;
  pool.queued = [this] {
    std::lock_guard lock(mu_);
    return jobs_.size();
  };
  pool.serve_one = [this] { return serve_one_green(); };
  pool.stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  hub_finished_ = green_->run(pool, grace);
}

void AppPool::stop_hub() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  green_->post();
}

bool AppPool::serve_one_green() {
  std::shared_ptr<ResponseChannel> job;
  size_t slot;
  {
    std::lock_guard lock(mu_);
    // Queued jobs are still served while stopping: their connections were
    // closed by then, and serve() skips them.
    if (jobs_.empty() || free_slots_.empty()) return false;
    job = std::move(jobs_.front());
    jobs_.pop_front();
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  // As on a pool thread: a failure ends this request only.
  try {
    serve(slot, job);
  } catch (const std::exception& e) {
    fail(slot, job, e.what());
  } catch (...) {
    fail(slot, job, "unknown exception");
  }
  {
    std::lock_guard lock(mu_);
    free_slots_.push_back(slot);
  }
  return true;
}

}  // namespace cppgunicorn::worker
