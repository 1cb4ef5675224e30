// GrpcTarget::OpenWatchers: etcd Watch streams with the gRPC callback API
// (one ClientBidiReactor per stream). Writes on a stream are serialized: the
// next create request is written from OnWriteDone.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "bench/grpc_target_rep.h"
#include "bench/timer_queue.h"

namespace tidemark::bench {
namespace {

class WatchStream final
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(etcdserverpb::Watch::Stub* stub, std::vector<std::string> keys,
              const GrpcTarget::EventFn* on_event, std::atomic<uint64_t>* events)
      : keys_(std::move(keys)), on_event_(on_event), events_(events) {
    stub->async()->Watch(&ctx_, this);
    StartRead(&resp_);
    WriteNext();
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok)
      return;  // the stream is ending; OnDone reports it
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
    }
    WriteNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok)
      return;
    int64_t now = NowNs();
    if (resp_.created()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++created_;
      cv_.notify_all();
    }
    for (const auto& ev : resp_.events()) {
      (*on_event_)(ev.kv().value(), now);
      events_->fetch_add(1, std::memory_order_relaxed);
    }
    StartRead(&resp_);
  }

  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    status_ = s;
    cv_.notify_all();
  }

  // Waits until every watcher of this stream is created (true) or the
  // stream ended / the deadline passed (false, *why set).
  bool WaitCreated(std::chrono::steady_clock::time_point deadline, std::string* why) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return done_ || created_ >= keys_.size(); });
    if (created_ >= keys_.size())
      return true;
    *why = done_ ? "watch stream ended: " + status_.error_message()
                 : std::to_string(created_) + " of " + std::to_string(keys_.size()) +
                       " watchers created before the deadline";
    return false;
  }

  void CancelAndWait() {
    ctx_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  // StartWrite is called without mu_ held: gRPC may run reactions inline.
  void WriteNext() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || next_ >= keys_.size())
        return;
      req_.Clear();
      req_.mutable_create_request()->set_key(keys_[next_++]);
      writing_ = true;
    }
    StartWrite(&req_);
  }

  grpc::ClientContext ctx_;
  etcdserverpb::WatchRequest req_;
  etcdserverpb::WatchResponse resp_;
  const std::vector<std::string> keys_;  // one watcher per entry
  const GrpcTarget::EventFn* on_event_;
  std::atomic<uint64_t>* events_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0;
  bool writing_ = false;
  size_t created_ = 0;
  bool done_ = false;
  grpc::Status status_;
};

class Session final : public GrpcTarget::WatchSession {
 public:
  explicit Session(GrpcTarget::EventFn fn) : on_event_(std::move(fn)) {}
  ~Session() override {
    for (auto& s : streams_)
      s->CancelAndWait();
  }
  uint64_t events() const override { return events_.load(); }

  GrpcTarget::EventFn on_event_;
  std::atomic<uint64_t> events_{0};
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> stubs_;
  std::vector<std::unique_ptr<WatchStream>> streams_;
};

}  // namespace

Result<std::unique_ptr<GrpcTarget::WatchSession>> GrpcTarget::OpenWatchers(
    int watchers, int streams, const std::vector<std::string>& keys, EventFn on_event,
    int64_t timeout_ms) {
  if (watchers < 1 || streams < 1 || keys.empty()) {
    return InvalidArgumentError("watch: need at least one watcher, stream and key");
  }
  if (streams > watchers)
    streams = watchers;
  auto session = std::make_unique<Session>(std::move(on_event));
  for (size_t c = 0; c < rep_->channels.size(); ++c) {
    session->stubs_.push_back(etcdserverpb::Watch::NewStub(rep_->channels[c]));
  }
  std::vector<std::vector<std::string>> per_stream(static_cast<size_t>(streams));
  for (int w = 0; w < watchers; ++w) {
    per_stream[static_cast<size_t>(w % streams)].push_back(
        keys[static_cast<size_t>(w) % keys.size()]);
  }
  for (int s = 0; s < streams; ++s) {
    auto* stub = session->stubs_[static_cast<size_t>(s) % session->stubs_.size()].get();
    session->streams_.push_back(
        std::make_unique<WatchStream>(stub, std::move(per_stream[static_cast<size_t>(s)]),
                                      &session->on_event_, &session->events_));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto& s : session->streams_) {
    std::string why;
    if (!s->WaitCreated(deadline, &why)) {
      return UnavailableError("watch on " + rep_->options.endpoint + ": " + why);
    }
  }
  return std::unique_ptr<WatchSession>(std::move(session));
}

}  // namespace tidemark::bench
