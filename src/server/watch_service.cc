// etcdserverpb.Watch on the callback API: one ServerBidiReactor per stream,
// bridging gRPC to a watch::Stream of the hub (src/watch). The hub queues
// responses in the stream's bounded outbox; this reactor keeps exactly one
// write outstanding and pulls the next response when it completes.
#include <atomic>
#include <deque>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "base/log.h"
#include "server/core.h"
#include "server/services.h"
#include "watch/hub.h"

#include "etcdserverpb/rpc.grpc.pb.h"

namespace tidemark::server {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
}

class WatchReactor final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse>,
                           public watch::Sink {
 public:
  explicit WatchReactor(Core* core) : core_(core), hub_(core->watch_hub.get()) {
    stream_ = hub_->NewStream();
    stream_->AttachSink(this);
    StartRead(&req_);
  }

  // ---- gRPC reactions ----
  void OnReadDone(bool ok) override {
    // !ok: client half-close or cancel. etcd keeps sending after a
    // half-close; the RPC ends on cancel (OnCancel).
    if (!ok) return;
    Handle(req_);
    req_.Clear();
    StartRead(&req_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;  // the RPC is going away; OnCancel/OnDone follow
    if (!out_.empty()) out_.pop_front();
    if (!out_.empty()) {
      StartWrite(&out_.front());
      return;
    }
    if (stream_->WriteDone()) hub_->Kick();
  }

  void OnCancel() override {
    hub_->CloseStream(stream_);
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "etcdserver: watch canceled"));
  }

  void OnDone() override {
    hub_->CloseStream(stream_);
    delete this;
  }

  // ---- watch::Sink (called with the stream mutex held) ----
  void Deliver(watch::Response r) override {
    size_t n = r.events.size();
    if (n > 0) core_->metrics->watch_events_total->Increment(static_cast<double>(n));
    core_->metrics->watch_responses_total->Increment();
    // msg_ is reused message after message: Clear() keeps its event, kv and
    // string allocations, so a steady stream of events allocates little.
    msg_.Clear();
    Convert(r, &msg_);
    const size_t limit = static_cast<size_t>(core_->options.max_request_bytes) + 512 * 1024;
    if (r.allow_fragment && msg_.events_size() >= 2 && msg_.ByteSizeLong() >= limit) {
      Fragment(msg_, limit);
      StartWrite(&out_.front());
    } else {
      StartWrite(&msg_);
    }
  }

  void Close() override {
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"));
  }

 private:
  void Handle(const WatchRequest& req) {
    if (req.has_create_request()) {
      const auto& cr = req.create_request();
      watch::WatchSpec spec;
      spec.key = cr.key().empty() ? std::string(1, '\0') : cr.key();
      spec.range_end = cr.range_end();
      spec.start_revision = cr.start_revision();
      spec.watch_id = cr.watch_id();
      spec.progress_notify = cr.progress_notify();
      spec.prev_kv = cr.prev_kv();
      spec.fragment = cr.fragment();
      for (int f : cr.filters()) {
        if (f == etcdserverpb::WatchCreateRequest::NOPUT) spec.no_put = true;
        if (f == etcdserverpb::WatchCreateRequest::NODELETE) spec.no_delete = true;
      }
      auto id = hub_->Watch(stream_.get(), spec);
      if (!id.ok()) {
        watch::Response fail;
        fail.watch_id = -1;
        fail.created = true;
        fail.canceled = true;
        fail.cancel_reason = id.status().message();
        fail.revision = core_->store->current_revision();
        stream_->EnqueueControl(std::move(fail));
      }
    } else if (req.has_cancel_request()) {
      hub_->Cancel(stream_.get(), req.cancel_request().watch_id());
    } else if (req.has_progress_request()) {
      hub_->RequestProgress(stream_.get());
    }
  }

  void Convert(const watch::Response& r, WatchResponse* msg) const {
    core_->FillHeader(msg->mutable_header(), r.revision);
    msg->set_watch_id(r.watch_id);
    msg->set_created(r.created);
    msg->set_canceled(r.canceled);
    msg->set_compact_revision(r.compact_revision);
    msg->set_cancel_reason(r.cancel_reason);
    for (const auto& ref : r.events) {
      const mvcc::Event& e = *ref;
      auto* pe = msg->add_events();
      pe->set_type(e.type == mvcc::EventType::kPut ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
      if (e.type == mvcc::EventType::kDelete) {
        pe->mutable_kv()->set_key(e.kv.key);
        pe->mutable_kv()->set_mod_revision(e.kv.mod_revision);
      } else {
        ToProto(e.kv, pe->mutable_kv());
      }
      if (r.with_prev_kv && e.prev_kv) ToProto(*e.prev_kv, pe->mutable_prev_kv());
    }
  }

  // etcd's sendFragments: fill each part up to `limit` (at least one event);
  // every part but the last carries fragment=true.
  void Fragment(WatchResponse& whole, size_t limit) {
    WatchResponse base = whole;
    base.clear_events();
    const size_t base_size = base.ByteSizeLong();
    int i = 0;
    const int n = whole.events_size();
    while (i < n) {
      WatchResponse part = base;
      size_t size = base_size;
      while (i < n) {
        size_t es = whole.events(i).ByteSizeLong() + 8;
        if (part.events_size() > 0 && size + es >= limit) break;
        *part.add_events() = std::move(*whole.mutable_events(i));
        size += es;
        ++i;
      }
      part.set_fragment(i < n);
      out_.push_back(std::move(part));
    }
  }

  void FinishOnce(grpc::Status s) {
    if (finished_.exchange(true)) return;
    Finish(std::move(s));
  }

  Core* core_;
  watch::Hub* hub_;
  std::shared_ptr<watch::Stream> stream_;
  WatchRequest req_;
  // The message being written, or -- for a fragmented response -- its parts
  // in out_ (front = being written). Touched only by Deliver and OnWriteDone,
  // which never overlap (one outstanding write).
  WatchResponse msg_;
  std::deque<WatchResponse> out_;
  std::atomic<bool> finished_{false};
};

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(Core* core) : core_(core) {}

  grpc::ServerBidiReactor<WatchRequest, WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override {
    return new WatchReactor(core_);
  }

 private:
  Core* core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWatchService(Core* core) {
  return std::make_unique<WatchService>(core);
}

Status StartWatchHub(Core* core) {
  watch::HubOptions o;
  auto interval = ParseRetentionDuration(core->options.watch_progress_notify_interval);
  if (!interval.ok() || *interval <= 0) {
    return InvalidArgumentError("--experimental-watch-progress-notify-interval: bad duration \"" +
                                core->options.watch_progress_notify_interval + "\"");
  }
  o.progress_interval_ns = *interval;
  core->watch_hub = std::make_unique<watch::Hub>(core->store.get(), core->clock.get(), o);
  watch::Hub* hub = core->watch_hub.get();
  core->pipeline->set_applied_hook(
      [hub](uint64_t, std::vector<mvcc::Event>&& events, bool idle_after) {
        hub->Publish(std::move(events), /*may_fan_out_inline=*/idle_after);
      });
  hub->Start();
  return Status::Ok();
}

void StopWatchHub(Core* core) {
  if (core->watch_hub) core->watch_hub->Stop();
}

void RefreshWatchGauges(Core* core) {
  if (!core->watch_hub) return;
  auto st = core->watch_hub->stats();
  core->metrics->watcher_total->Set(static_cast<double>(st.watchers));
  core->metrics->watch_stream_total->Set(static_cast<double>(st.streams));
  core->metrics->slow_watcher_total->Set(static_cast<double>(st.slow_watchers));
  core->metrics->pending_events_total->Set(static_cast<double>(st.pending_events));
}

}  // namespace tidemark::server
