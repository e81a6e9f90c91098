// A worker process: its own libuv loop, its embedded interpreter and WSGI
// app, the listeners inherited from the master, and its connections.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/accept_board.h"
#include "base/clock.h"
#include "base/heartbeat.h"
#include "config/config.h"
#include "http/limits.h"
#include "log/access_log.h"
#include "metrics/worker_counters.h"
#include "net/handle.h"
#include "net/listener.h"
#include "net/tls.h"
#include "worker/forwarded.h"
#include "wsgi/interpreter.h"

namespace cppgunicorn::wsgi {
class Application;
class Interpreter;
class Reloader;
}  // namespace cppgunicorn::wsgi

namespace cppgunicorn::static_files {
class StaticFiles;
}

namespace cppgunicorn::worker {

class AppPool;
class Connection;
class StallFlusher;

// Exit codes shared with the master (gunicorn's values).
inline constexpr int kExitOk = 0;
inline constexpr int kExitWorkerBootError = 3;
inline constexpr int kExitAppLoadError = 4;

class Worker {
 public:
  // `preloaded`: the app the master imported (--preload); else the worker
  // starts its own interpreter and imports the app itself.
  Worker(const config::Config& config, const std::vector<net::ListenSocket>& listeners,
         log::AccessLog& access_log, base::Heartbeat* heartbeat, wsgi::Application* preloaded,
         const net::TlsContext* tls = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs once the interpreter is up, before the app is imported: the master
  // switches user/group there, so that the interpreter's own files are read
  // with the master's rights and the app is imported with the worker's (as
  // in gunicorn, where the master has started Python before any worker).
  void set_before_app_import(std::function<void()> hook) { before_app_import_ = std::move(hook); }

  // Where this worker counts what /metrics shows: the block the master
  // mapped before the fork. Without one the worker counts into its own
  // memory, which nobody reads.
  void set_counters(metrics::WorkerCounters* counters) {
    counters_ = counters != nullptr ? counters : &own_counters_;
  }
  // The master's board of every worker's connection count, and this
  // worker's slot on it: the worker leaves a new connection to a peer that
  // holds fewer (base/accept_board.h). Without one it accepts freely.
  void set_accept_board(base::AcceptBoard* board, int slot) {
    accept_board_ = slot >= 0 ? board : nullptr;
    board_slot_ = slot;
  }
  // In a host program's process (the in-process server, src/embed): no
  // signal handlers of its own, no parent to watch, no atexit functions
  // run at the end (the host's interpreter outlives us), and worker
  // threads still busy at the end are left behind rather than ending the
  // process. Set before run().
  void set_in_host_process(bool in_host) { in_host_ = in_host; }
  // Whether the worker takes TERM, INT, QUIT and USR1 (on by default; a
  // host that keeps its signals stops the worker with request_stop()).
  void set_handle_signals(bool on) { handle_signals_ = on; }

  // Boots (interpreter, app), serves until told to stop, returns the exit
  // code for the master.
  int run();

  // From any thread, before or during run(): stop accepting and finish.
  // `graceful`: in-flight requests get `grace_ms` to complete (then their
  // connections are cut); else every connection is dropped at once.
  void request_stop(bool graceful, uint64_t grace_ms);

  // For connections.
  uv_loop_t* loop() { return &loop_; }
  // The app runs on the loop thread (no pool): makes sure the loop thread
  // holds the GIL. It keeps it for the rest of the loop iteration, through
  // every request read in it, and drops it before the loop polls: one
  // take and drop per iteration rather than per request (and none in an
  // iteration that runs no Python). With a pool, the loop thread never
  // takes it.
  void hold_gil() {
    if (app_pool_) return;
    loop_gil_.hold();
    // Until the loop polls again it cannot accept: peers stop leaving
    // connections for it (base::AcceptBoard::set_busy).
    if (accept_board_ != nullptr && !board_busy_) {
      board_busy_ = true;
      accept_board_->set_busy(board_slot_, true);
    }
  }
  const wsgi::Application& app() const { return *app_; }
  bool stopping() const { return stopping_; }
  // Where a connection notes the request it serves; null with a pool
  // (--threads > 1, or streamed bodies), which notes the oldest app call.
  base::Heartbeat* heartbeat() { return app_pool_ ? nullptr : heartbeat_; }
  // The threads that call the app (--threads > 1, or one thread when bodies
  // are streamed); null: the loop thread does.
  AppPool* app_pool() { return app_pool_.get(); }
  const http::ParserOptions& parser_options() const { return parser_options_; }
  const config::Config& config() const { return config_; }
  // The master's TLS context when --certfile is set: every connection
  // speaks TLS. Null for plain HTTP.
  const net::TlsContext* tls() const { return tls_; }
  const ForwardedPolicy& forwarded() const { return forwarded_; }
  // The static mounts (--static-map, --static-from-app); null when none.
  const static_files::StaticFiles* static_files() const { return static_files_.get(); }
  log::AccessLog& access_log() { return access_log_; }
  // Written from the loop thread only (metrics::Counter is single-writer).
  metrics::WorkerCounters& counters() { return *counters_; }
  size_t duration_bucket(uint64_t us) const { return duration_buckets_.index(us); }
  std::string_view http_date() { return date_.now(); }
  char* read_buffer() { return read_buffer_.get(); }
  size_t read_buffer_size() const { return kReadBufferSize; }
  void connection_closed(Connection* c);
  void request_done();

  // Output corking. While the loop runs its I/O callbacks, a connection's
  // small responses are held (Connection::send) and written once those
  // callbacks are done, all together. A client waiting on several
  // connections is then woken once per batch instead of once per response:
  // on a busy worker that wake-up (a cross-CPU interrupt) costs more kernel
  // time than the write itself. A response still being produced, or the
  // next pipelined request, waits for the flush: the app is never called
  // again on a connection while bytes of it are held.
  bool corking() const { return corking_; }

  // Writes a connection's gathered body chunks when the app, running on
  // the loop thread, stalls before the next one (started on first use).
  StallFlusher* stall_flusher();
  void cork(Connection* c) { corked_.push_back(c); }
  void uncork(Connection* c);

 private:
  static constexpr size_t kReadBufferSize = 64 * 1024;
  // accept.cpp: the listeners and the accept path.
  struct ListenerHandle;
  static void on_listener_readable(uv_poll_t* poll, int status, int events);
  static void on_accept_retry(uv_timer_t* timer);
  // Why the listeners are not watched for now.
  enum class AcceptHold {
    kNone,
    kFull,        // at --worker-connections, until one closes
    kYield,       // ahead of a peer, until one closes or the peer stalls
    kOutOfFiles,  // EMFILE/ENFILE, until one closes or a moment passes
  };
  AcceptHold admission() const;
  void accept_from(ListenerHandle& l);
  void hold_accepting(AcceptHold why);
  void resume_accepting();
  void publish_connection_count();
  static void on_signal(uv_signal_t* handle, int signum);
  static void on_sweep(uv_timer_t* timer);
  // Before each poll: opens the cork, drops the loop's GIL.
  static void on_before_poll(uv_prepare_t* prepare);
  static void on_cork_flush(uv_check_t* check);
  static void on_stop_request(uv_async_t* async);

  bool boot();
  bool run_before_app_import();
  bool listen();
  void begin_graceful_stop();
  void begin_graceful_stop(uint64_t grace_ms);
  void quick_stop();
  void stop_listening();
  void maybe_finish();
  void close_all_handles();
  bool start_app_pool();
  // Opens the static mounts' directories (after the user switch, so they
  // are opened with the worker's rights) and reads the app's own with
  // --static-from-app.
  bool start_static_files();
  bool patch_for_greenlets();
  // gevent/eventlet: the loop on a thread of its own, the hub on this one.
  void run_loop_beside_hub();

  const config::Config& config_;
  const std::vector<net::ListenSocket>& sockets_;
  log::AccessLog& access_log_;
  http::ParserOptions parser_options_;
  ForwardedPolicy forwarded_;
  uv_loop_t loop_{};
  base::HttpDate date_;
  std::unique_ptr<char[]> read_buffer_;

  base::Heartbeat* heartbeat_;
  metrics::WorkerCounters own_counters_;
  metrics::WorkerCounters* counters_ = &own_counters_;
  metrics::DurationBuckets duration_buckets_;
  const net::TlsContext* tls_;
  std::unique_ptr<wsgi::Interpreter> own_interpreter_;
  std::unique_ptr<wsgi::Application> own_app_;
  std::unique_ptr<wsgi::Reloader> reloader_;  // --reload
  int sweeps_since_reload_check_ = 0;
  wsgi::Application* app_ = nullptr;
  std::function<void()> before_app_import_;

  struct ListenerHandle {
    // Watched for readability; the worker calls accept4 itself, so that it
    // can leave a connection in the queue for a peer (libuv's uv_listen
    // accepts before it asks).
    net::UvHandle<uv_poll_t> poll;
    const net::ListenSocket* socket = nullptr;
    bool watching = false;
    // The worker's copy of the socket is its to close (a poll handle does
    // not close its descriptor): once closed everywhere, new clients are
    // refused rather than queued for nobody.
    void close();
    ~ListenerHandle() { close(); }
  };
  std::vector<std::unique_ptr<ListenerHandle>> listeners_;
  std::vector<std::unique_ptr<net::UvHandle<uv_signal_t>>> signals_;
  net::UvHandle<uv_timer_t> sweep_timer_;
  // Corking: opened before the loop polls, flushed after its I/O callbacks
  // (declared before connections_, which unregister from it when destroyed).
  net::UvHandle<uv_prepare_t> cork_open_;
  net::UvHandle<uv_check_t> cork_flush_;
  bool corking_ = false;
  std::vector<Connection*> corked_;
  std::vector<Connection*> flushing_;  // corked_ of the flush under way
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  AcceptHold accept_hold_ = AcceptHold::kNone;
  // Ends a kYield (the peers took nothing meanwhile: take the queue) or a
  // kOutOfFiles hold.
  net::UvHandle<uv_timer_t> accept_retry_timer_;
  bool accept_retry_timer_initialised_ = false;
  // The peers' accept count when this worker yielded.
  uint64_t peer_accepts_at_yield_ = 0;
  // Set when the peers stalled: accept regardless of the board until the
  // queue is empty.
  bool accept_insist_ = false;
  base::AcceptBoard* accept_board_ = nullptr;
  int board_slot_ = -1;
  bool board_busy_ = false;  // set_busy(true) published, until the next poll
  uint64_t last_emfile_log_ms_ = 0;
  size_t max_connections_ = 1000;  // --worker-connections, fitted to RLIMIT_NOFILE
  // At the cap: closes the idle connection that waited longest, if any.
  void close_longest_idle();

  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
  int exit_code_ = kExitOk;
  pid_t parent_pid_ = 0;
  uint64_t requests_ = 0;
  uint64_t max_requests_ = 0;  // max_requests plus this worker's jitter

  // --threads
  std::unique_ptr<AppPool> app_pool_;
  std::unique_ptr<static_files::StaticFiles> static_files_;
  std::unique_ptr<StallFlusher> stall_flusher_;
  wsgi::HeldGil loop_gil_;

  bool in_host_ = false;
  bool handle_signals_ = true;
  // request_stop(): what was asked, and the loop's wake-up once it runs
  // (guarded by stop_mutex_, as is whether stop_async_ may be sent to).
  std::mutex stop_mutex_;
  net::UvHandle<uv_async_t> stop_async_;
  bool stop_async_open_ = false;
  enum class StopAsked { kNone, kGraceful, kQuick } stop_asked_ = StopAsked::kNone;
  uint64_t stop_grace_ms_ = 0;
};

}  // namespace cppgunicorn::worker
