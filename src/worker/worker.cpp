#include "worker/worker.h"

#include <pybind11/embed.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <thread>

#include "log/logger.h"
#include "worker/app_pool.h"
#include "worker/connection.h"
#include "worker/stall_flusher.h"
#include "worker/green_hub.h"
#include "worker/http_options.h"
#include "static_files/open_beneath.h"
#include "static_files/static_files.h"
#include "wsgi/app_loader.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/objects.h"
#include "wsgi/python_config.h"
#include "wsgi/reloader.h"

namespace cppgunicorn::worker {

namespace {
// Also the heartbeat period: well under the smallest --timeout (1 s).
constexpr uint64_t kSweepIntervalMs = 250;
// While stopping gracefully, idle keep-alive connections get this long.
constexpr uint64_t kStopIdleMs = 1000;
}  // namespace

namespace {
// Descriptors a worker needs besides its clients: listeners, logs, the
// heartbeat, the loop's own, and whatever the app opens.
constexpr rlim_t kReservedFds = 32;

// --worker-connections, lowered to fit the open-files limit: a worker that
// runs out of descriptors cannot accept, and its clients wait in the backlog.
size_t connection_cap(int worker_connections) {
  size_t cap = static_cast<size_t>(worker_connections);
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
      nofile.rlim_cur < cap + kReservedFds) {
    size_t fit = nofile.rlim_cur > kReservedFds + 1 ? nofile.rlim_cur - kReservedFds : 1;
    log::error_log().warning("worker_connections " + std::to_string(cap) + " lowered to " +
                             std::to_string(fit) + " to fit the open-files limit (" +
                             std::to_string(nofile.rlim_cur) + ")");
    cap = fit;
  }
  return cap;
}
}  // namespace

Worker::Worker(const config::Config& config, const std::vector<net::ListenSocket>& listeners,
               log::AccessLog& access_log, base::Heartbeat* heartbeat,
               wsgi::Application* preloaded, const net::TlsContext* tls)
    : config_(config),
      sockets_(listeners),
      access_log_(access_log),
      parser_options_(worker::parser_options(config)),
      forwarded_(config),
      // Not zeroed: the kernel writes only what it reads, so an idle worker
      // keeps the untouched pages of this 64 KiB out of its memory.
      read_buffer_(std::make_unique_for_overwrite<char[]>(kReadBufferSize)),
      heartbeat_(heartbeat),
      duration_buckets_(config.metrics_buckets),
      tls_(tls),
      app_(preloaded) {}

Worker::~Worker() = default;

bool Worker::run_before_app_import() {
  if (!before_app_import_) return true;
  try {
    before_app_import_();
  } catch (const std::exception& e) {
    log::error_log().error(std::string("Exception in worker process: ") + e.what());
    exit_code_ = kExitWorkerBootError;
    return false;
  }
  return true;
}

namespace {
}  // namespace

bool Worker::patch_for_greenlets() {
  std::string backend = config_.green_backend();
  if (backend.empty()) return true;
  if (GreenHub::patch(backend)) return true;
  exit_code_ = kExitWorkerBootError;
  return false;
}

bool Worker::boot() {
  // gunicorn's gevent and eventlet workers patch first thing after fork,
  // --preload or not (a preloaded app was imported unpatched; gunicorn's
  // documentation says to patch in the config file for that case).
  if (app_ != nullptr) return patch_for_greenlets() && run_before_app_import();
  wsgi::InterpreterOptions options;
  options.argv = {"cppgunicorn"};
  options.pythonpath = config_.pythonpath;
  options.fault_fd = log::error_log().file().fileno();
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) options.app_dir = cwd;
  // A master that read a Python config file runs Python already: this
  // worker inherited its interpreter (ForkGuard ran PyOS_AfterFork_Child).
  bool inherited = wsgi::Interpreter::running();
  std::optional<wsgi::Gil> gil;
  try {
    if (inherited) {
      gil.emplace();
      wsgi::Interpreter::prepare_for_app(options);
    } else {
      own_interpreter_ = std::make_unique<wsgi::Interpreter>(options);
    }
  } catch (const std::exception& e) {
    log::error_log().error(std::string("Exception in worker process: ") + e.what());
    exit_code_ = kExitWorkerBootError;
    return false;
  }
  if (!patch_for_greenlets() || !run_before_app_import()) return false;
  wsgi::EnvironOptions env;
  env.multithread = config_.concurrent_app();
  env.multiprocess = config_.workers > 1;
  if (const char* sn = std::getenv("SCRIPT_NAME")) env.script_name = sn;
  try {
    own_app_ = std::make_unique<wsgi::Application>(config_.app_uri, env);
    app_ = own_app_.get();
  } catch (const wsgi::AppLoadError& e) {
    log::error_log().error(e.what());
    exit_code_ = dynamic_cast<const wsgi::AppModuleNotFound*>(&e) != nullptr ? kExitWorkerBootError
                                                                            : kExitAppLoadError;
    return false;
  } catch (pybind11::error_already_set& e) {
    // gunicorn: any other exception while loading is a worker boot error.
    e.restore();
    wsgi::log_python_error("Exception in worker process");
    exit_code_ = kExitWorkerBootError;
    return false;
  }
  if (own_interpreter_) own_interpreter_->release_gil();
  return true;
}

bool Worker::start_static_files() {
  std::vector<static_files::MountPoint> mounts;
  for (const config::Config::StaticMount& m : config_.static_map) {
    mounts.push_back({m.url_prefix, m.directory});
  }
  if (config_.static_from_app) {
    std::pair<std::string, std::string> app_mount;
    std::string error;
    {
      wsgi::Gil gil;  // the exception, a Python one too, is handled under it
      try {
        app_mount = app_->static_mount();
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    if (!error.empty()) {
      log::error_log().error("Invalid value for static_from_app: " + error);
      exit_code_ = kExitAppLoadError;
      return false;
    }
    auto& [url_path, folder] = app_mount;
    while (url_path.size() > 1 && url_path.back() == '/') url_path.pop_back();
    bool taken = false;
    for (const auto& m : mounts) taken = taken || m.url_prefix == url_path;
    // An explicit --static-map of the same prefix wins.
    if (!taken) mounts.push_back({url_path, folder});
  }
  if (mounts.empty()) return true;
  try {
    static_files::Options options;
    options.fallthrough = config_.static_fallthrough;
    options.allow_hidden = config_.static_allow_hidden;
    options.cache_control = config_.static_cache_control;
    static_files_ = std::make_unique<static_files::StaticFiles>(std::move(mounts), options);
  } catch (const std::exception& e) {
    log::error_log().error(std::string("Invalid value for static_map: ") + e.what());
    exit_code_ = kExitWorkerBootError;
    return false;
  }
  for (const auto& m : static_files_->mounts()) {
    log::error_log().debug("Static files: " + m.point.url_prefix + " -> " + m.point.directory);
  }
  if (!static_files::kernel_has_openat2()) {
    log::error_log().info("Static files: openat2(2) is not available; names are resolved one "
                          "component at a time and symlinks are not followed");
  }
  return true;
}

void Worker::close_longest_idle() {
  Connection* oldest = nullptr;
  for (const auto& [c, owned] : connections_) {
    if (c->closing()) return;  // one is going already: its slot is next
    if (c->idle() && (oldest == nullptr || c->last_activity_ms() < oldest->last_activity_ms())) {
      oldest = c;
    }
  }
  if (oldest != nullptr) oldest->close();
}

void Worker::connection_closed(Connection* c) {
  connections_.erase(c);
  counters_->connections_closed.inc();
  if (!stopping_) {
    publish_connection_count();
    // Held back at --worker-connections or for a peer: with one fewer,
    // look at the queue again.
    if (accept_hold_ != AcceptHold::kNone) resume_accepting();
  }
  maybe_finish();
}

// (flushing_ is empty outside on_cork_flush, and no connection is destroyed
// while that runs.)
void Worker::uncork(Connection* c) { std::erase(corked_, c); }

StallFlusher* Worker::stall_flusher() {
  if (!stall_flusher_) stall_flusher_ = std::make_unique<StallFlusher>();
  return stall_flusher_.get();
}

void Worker::on_before_poll(uv_prepare_t* prepare) {
  Worker* self = static_cast<Worker*>(prepare->loop->data);
  self->corking_ = true;
  // The loop is about to wait for I/O: never with the GIL (other Python
  // threads of the app, a green hub, may need it meanwhile).
  self->loop_gil_.release();
  if (self->board_busy_) {
    self->board_busy_ = false;
    self->accept_board_->set_busy(self->board_slot_, false);
  }
}

void Worker::on_cork_flush(uv_check_t* check) {
  Worker* self = static_cast<Worker*>(check->loop->data);
  self->corking_ = false;
  // Two vectors swapped, so neither is reallocated from one loop to the next.
  std::vector<Connection*>& corked = self->flushing_;
  corked.swap(self->corked_);
  // A connection is destroyed only in a close callback, after this phase.
  // Every cork is written before any response goes on: going on calls the
  // app, which may take its time.
  for (Connection* c : corked) c->flush_cork();
  for (Connection* c : corked) c->continue_after_flush();
  corked.clear();
}

void Worker::request_done() {
  ++requests_;
  if (config_.max_requests > 0 && !stopping_) {
    if (requests_ >= max_requests_) {
      log::error_log().info("Autorestarting worker after current request.");
      counters_->exit_cause.store(static_cast<uint32_t>(metrics::ExitCause::kMaxRequests),
                                  std::memory_order_relaxed);
      begin_graceful_stop();
    }
  }
}

void Worker::on_signal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Worker*>(handle->loop->data);
  switch (signum) {
    case SIGTERM:
      self->begin_graceful_stop();
      break;
    case SIGINT:
    case SIGQUIT:
      if (auto* hooks = wsgi::PythonConfig::hooks()) hooks->worker_hook("worker_int", {::getpid(), 0}, false);
      self->quick_stop();
      break;
    case SIGUSR1:
      log::error_log().file().reopen();
      self->access_log_.file().reopen();
      log::capture_output_into_error_log(self->config_.capture_output, self->config_.errorlog);
      break;
    default:
      break;
  }
}

void Worker::on_sweep(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->loop->data);
  uint64_t now = uv_now(&self->loop_);
  // The loop is alive: tell the master. A worker stuck in one request
  // never gets here, and the master's --timeout catches it.
  if (self->heartbeat_ && self->app_pool_) {
    self->app_pool_->beat(*self->heartbeat_);
  } else if (self->heartbeat_) {
    self->heartbeat_->beat();
  }
  // --reload: once a second, as gunicorn's poll reloader.
  if (self->reloader_ && !self->stopping_ && ++self->sweeps_since_reload_check_ >= 4) {
    self->sweeps_since_reload_check_ = 0;
    std::string changed = self->reloader_->changed();
    if (!changed.empty()) {
      log::error_log().info("Worker reloading: " + changed + " modified");
      self->begin_graceful_stop();
    }
  }
  if (!self->in_host_ && !self->stopping_ && ::getppid() != self->parent_pid_) {
    // gunicorn's words; "%s" of its worker object is "<Worker PID>".
    log::error_log().info("Parent changed, shutting down: <Worker " + std::to_string(::getpid()) + ">");
    self->begin_graceful_stop();
  }
  bool force = self->stopping_ && now >= self->stop_deadline_ms_;
  uint64_t keepalive_ms = static_cast<uint64_t>(self->config_.keepalive) * 1000;
  std::vector<Connection*> all;
  all.reserve(self->connections_.size());
  for (auto& [c, owned] : self->connections_) all.push_back(c);
  for (Connection* c : all) {
    if (force) {
      c->close();
    } else if (self->stopping_) {
      // A client may be sending its next request on an idle keep-alive
      // connection right now: give it a moment, and answer it with
      // "Connection: close", rather than cutting the connection under it.
      c->sweep(now, std::min<uint64_t>(keepalive_ms ? keepalive_ms : kStopIdleMs, kStopIdleMs));
    } else {
      c->sweep(now, keepalive_ms);
    }
  }
}

void Worker::stop_listening() {
  listeners_.clear();  // each ListenerHandle closes its poll and socket
  accept_hold_ = AcceptHold::kNone;
  if (accept_retry_timer_initialised_) uv_timer_stop(accept_retry_timer_.get());
  // Peers stop leaving connections for a worker that takes no more.
  if (accept_board_ != nullptr) accept_board_->withdraw(board_slot_);
}

void Worker::begin_graceful_stop() {
  begin_graceful_stop(static_cast<uint64_t>(config_.graceful_timeout) * 1000);
}

void Worker::begin_graceful_stop(uint64_t grace_ms) {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ms_ = uv_now(&loop_) + grace_ms;
  stop_listening();
  maybe_finish();
}

void Worker::quick_stop() {
  // Drop every connection now.
  stopping_ = true;
  stop_listening();
  std::vector<Connection*> all;
  for (auto& [c, owned] : connections_) all.push_back(c);
  for (Connection* c : all) c->close();
  maybe_finish();
}

void Worker::request_stop(bool graceful, uint64_t grace_ms) {
  std::lock_guard lock(stop_mutex_);
  if (stop_asked_ == StopAsked::kQuick) return;
  stop_asked_ = graceful ? StopAsked::kGraceful : StopAsked::kQuick;
  stop_grace_ms_ = grace_ms;
  if (stop_async_open_) uv_async_send(stop_async_.get());
}

void Worker::on_stop_request(uv_async_t* async) {
  auto* self = static_cast<Worker*>(async->loop->data);
  StopAsked asked;
  uint64_t grace_ms;
  {
    std::lock_guard lock(self->stop_mutex_);
    asked = self->stop_asked_;
    grace_ms = self->stop_grace_ms_;
  }
  if (asked == StopAsked::kQuick) {
    self->quick_stop();
  } else if (asked == StopAsked::kGraceful) {
    self->begin_graceful_stop(grace_ms);
  }
}

void Worker::maybe_finish() {
  if (stopping_ && connections_.empty()) close_all_handles();
}

void Worker::close_all_handles() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_async_open_ = false;
    stop_async_.close();
  }
  stop_listening();
  accept_retry_timer_initialised_ = false;
  accept_retry_timer_.close();
  sweep_timer_.close();
  cork_open_.close();
  cork_flush_.close();
  signals_.clear();  // each UvHandle closes its handle
  if (app_pool_) app_pool_->close_handle();
}

bool Worker::start_app_pool() {
  if (std::string backend = config_.green_backend(); !backend.empty()) {
    // gunicorn's Pool(worker_connections): as many greenlets as clients.
    app_pool_ = std::make_unique<AppPool>(&loop_, *app_, backend, max_connections_,
                                          access_log_.environ_keys());
  } else {
    // With --threads 1 the loop thread calls the app, unless bodies are
    // streamed: an app waiting in wsgi.input.read() for the client must not
    // hold the loop, so one pool thread calls it instead (still one app call
    // at a time).
    if (config_.threads <= 1 && config_.request_buffering) return true;
    app_pool_ = std::make_unique<AppPool>(&loop_, *app_, std::max(config_.threads, 1),
                                          access_log_.environ_keys());
  }
  if (int rc = app_pool_->start(); rc != 0) {
    log::error_log().error(std::string("cannot start the worker threads: ") + uv_strerror(rc));
    app_pool_.reset();
    return false;
  }
  return true;
}

void Worker::run_loop_beside_hub() {
  // gevent's and eventlet's hubs (and monkey-patching) belong to the main
  // thread, which also holds Python's signal and fork state: the hub stays
  // here and the loop, which never needs the GIL, moves to a thread.
  std::thread loop_thread([this] {
    uv_run(&loop_, UV_RUN_DEFAULT);
    app_pool_->stop_hub();
  });
  try {
    // As the threads' grace below: under the master's 1 s before SIGKILL.
    app_pool_->run_hub(std::chrono::milliseconds(500));
  } catch (pybind11::error_already_set& e) {
    {
      wsgi::Gil gil;
      e.restore();
      wsgi::log_python_error("Exception in the worker's hub");
    }
    // The loop thread serves on without a hub: nothing would answer.
    ::_exit(kExitWorkerBootError);
  } catch (const std::exception& e) {
    log::error_log().error(std::string("Exception in the worker's hub: ") + e.what());
    ::_exit(kExitWorkerBootError);
  }
  loop_thread.join();
}

int Worker::run() {
  parent_pid_ = ::getppid();
  if (config_.max_requests > 0) {
    // The jitter spreads restarts so that workers do not all retire at once.
    // getrandom(2), not std::random_device: libstdc++ 12 draws that from
    // arc4random, which would raise the glibc our wheels need to 2.36.
    uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed)) {
      seed = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull;
    }
    uint64_t jitter = config_.max_requests_jitter > 0
                          ? seed % (static_cast<uint64_t>(config_.max_requests_jitter) + 1)
                          : 0;
    max_requests_ = static_cast<uint64_t>(config_.max_requests) + jitter;
  }
  max_connections_ = connection_cap(config_.worker_connections);
  std::signal(SIGPIPE, SIG_IGN);
  if (uv_loop_init(&loop_) != 0) return kExitWorkerBootError;
  loop_.data = this;
  if (!boot()) {
    uv_loop_close(&loop_);
    return exit_code_;
  }
  if (!start_static_files()) {
    if (own_app_) {
      wsgi::Gil gil;
      own_app_.reset();
    }
    uv_loop_close(&loop_);
    return exit_code_;
  }
  if (config_.reload) reloader_ = std::make_unique<wsgi::Reloader>(config_.reload_extra_files);
  for (int signum : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1}) {
    if (!handle_signals_) break;  // the host's signals, not ours
    auto h = std::make_unique<net::UvHandle<uv_signal_t>>();
    uv_signal_init(&loop_, h->get());
    h->mark_initialised();
    uv_signal_start(h->get(), on_signal, signum);
    signals_.push_back(std::move(h));
  }
  // As gunicorn: signal handlers first, then post_worker_init.
  wsgi::PythonConfig* hooks = wsgi::PythonConfig::hooks();
  if (hooks) {
    hooks->worker_hook("post_worker_init", {::getpid(), 0}, false);
    hooks->install_worker_abort();
  }
  // request_stop() from other threads; asked before the loop ran: now.
  uv_async_init(&loop_, stop_async_.get(), on_stop_request);
  stop_async_.mark_initialised();
  {
    std::lock_guard lock(stop_mutex_);
    stop_async_open_ = true;
    if (stop_asked_ != StopAsked::kNone) uv_async_send(stop_async_.get());
  }
  uv_timer_init(&loop_, sweep_timer_.get());
  sweep_timer_.mark_initialised();
  uv_timer_start(sweep_timer_.get(), on_sweep, kSweepIntervalMs, kSweepIntervalMs);
  // Neither keeps the loop alive (unref): they only bracket each poll.
  uv_prepare_init(&loop_, cork_open_.get());
  cork_open_.mark_initialised();
  uv_prepare_start(cork_open_.get(), on_before_poll);
  uv_unref(cork_open_.as_handle());
  uv_check_init(&loop_, cork_flush_.get());
  cork_flush_.mark_initialised();
  uv_check_start(cork_flush_.get(), on_cork_flush);
  uv_unref(cork_flush_.as_handle());
  if (!start_app_pool() || !listen()) {
    exit_code_ = kExitWorkerBootError;
    stopping_ = true;
    close_all_handles();
  } else if (heartbeat_) {
    heartbeat_->set_ready();
  }
  if (app_pool_ && app_pool_->green()) {
    run_loop_beside_hub();
  } else {
    uv_run(&loop_, UV_RUN_DEFAULT);
    loop_gil_.release();  // the last iteration's, if it took it
  }
  uv_loop_close(&loop_);
  // Threads are idle here unless connections were cut (quick stop, or the
  // graceful timeout): then give them a moment, less than the master's 1 s
  // before SIGKILL.
  if (app_pool_ && !app_pool_->stop(std::chrono::milliseconds(500))) {
    if (in_host_) {
      // The host's process goes on: the pool (and the app it calls) must
      // outlive those threads, which end once the app returns to them.
      log::error_log().warning("Worker threads still busy in the application; left running");
      (void)app_pool_.release();
      own_app_.release();
    } else {
      // Finalising Python under a thread still inside the app could crash.
      log::error_log().warning("Worker threads still busy in the application; exiting now");
      ::_exit(exit_code_);
    }
  }
  app_pool_.reset();
  if (hooks) hooks->worker_hook("worker_exit", {::getpid(), 0}, true);
  reloader_.reset();
  if (own_app_) {
    wsgi::Gil gil;
    own_app_.reset();
  }
  if (own_interpreter_) {
    own_interpreter_.reset();  // Py_Finalize runs the atexit functions
  } else if (wsgi::Interpreter::running() && !in_host_) {
    // The interpreter came from the master, which finalises its own; this
    // process ends with _exit, so do here what finalising would do for it.
    wsgi::Interpreter::run_exit_functions();
  }
  return exit_code_;
}

}  // namespace cppgunicorn::worker
