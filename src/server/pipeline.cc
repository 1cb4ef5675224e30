#include "server/pipeline.h"

#include <pthread.h>

#include <chrono>

#include "apply/errors.h"
#include "base/log.h"

namespace tidemark::server {

Pipeline::Pipeline(wal::Wal* wal, apply::Applier* applier, Metrics* metrics, Clock* clock,
                   Options options)
    : wal_(wal), applier_(applier), metrics_(metrics), clock_(clock), options_(options) {}

Pipeline::~Pipeline() { Stop(); }

Status Pipeline::Recover() {
  const uint64_t applied = applier_->store()->applied_index();
  uint64_t replayed = 0;
  auto t0 = std::chrono::steady_clock::now();
  Status s = wal_->ReadFrom(applied + 1, [&](const wal::Entry& e) -> Status {
    internal::InternalRequest req;
    if (!req.ParseFromString(e.payload)) {
      return CorruptionError("wal: entry " + std::to_string(e.index) +
                             " does not decode as an InternalRequest");
    }
    ApplyOne(e.index, req, nullptr, /*idle_after=*/false);
    ++replayed;
    return Status::Ok();
  });
  TM_RETURN_IF_ERROR(s);
  uint64_t last = wal_->last_index();
  if (last < applied) {
    return CorruptionError("wal: last index " + std::to_string(last) +
                           " is behind the storage's applied index " + std::to_string(applied) +
                           " (WAL files missing?)");
  }
  committed_.store(last);
  applied_.store(last);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  log::Info("recovered from WAL", {{"storage-applied-index", applied},
                                   {"replayed-entries", replayed},
                                   {"last-index", last},
                                   {"took-ms", ms}});
  return Status::Ok();
}

void Pipeline::Start() {
  started_ = true;
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "wal-writer");
    WriterLoop();
  });
  applier_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "apply");
    ApplyLoop();
  });
}

void Pipeline::Stop() {
  {
    std::lock_guard<std::mutex> lock(in_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  in_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (applier_thread_.joinable()) applier_thread_.join();
}

void Pipeline::Propose(internal::InternalRequest req, Done done) {
  Proposal p;
  // Encode on the caller's thread: spreads serialization over gRPC threads.
  p.payload = req.SerializeAsString();
  p.req = std::move(req);
  p.done = std::move(done);
  {
    std::lock_guard<std::mutex> lock(in_mu_);
    if (stopping_ || !started_) {
      Status s = apply::Stopped();
      p.done(s, nullptr);
      return;
    }
    in_.push_back(std::move(p));
    pending_.fetch_add(1, std::memory_order_relaxed);
  }
  in_cv_.notify_one();
}

void Pipeline::WriterLoop() {
  uint64_t next_index = wal_->last_index() + 1;
  std::vector<wal::Entry> entries;
  for (;;) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(in_mu_);
      in_cv_.wait(lock, [&] { return stopping_ || !in_.empty(); });
      if (in_.empty() && stopping_) break;
      size_t n = std::min(in_.size(), options_.max_batch_entries);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(in_.front()));
        in_.pop_front();
      }
    }
    const int64_t now = clock_->NowNanos();
    entries.clear();
    entries.reserve(batch.size());
    uint64_t bytes = 0;
    for (auto& p : batch) {
      p.index = next_index++;
      bytes += p.payload.size();
      entries.push_back(wal::Entry{p.index, /*term=*/0, now, std::move(p.payload)});
    }
    Status s = wal_->AppendBatch(entries);
    auto t0 = std::chrono::steady_clock::now();
    if (s.ok()) s = wal_->Sync();
    if (s.ok() && options_.debug_after_sync) options_.debug_after_sync();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) {
      // Fail-stop: an unknown prefix of this batch may or may not be on disk;
      // only a restart (replay) can tell. Never acknowledge, never retry.
      log::Fatal("WAL write failed; stopping", {{"error", s.ToString()}});
    }
    metrics_->wal_fsync_seconds->Observe(secs);
    metrics_->wal_batch_entries->Observe(static_cast<double>(batch.size()));
    metrics_->wal_bytes_written->Increment(static_cast<double>(bytes));
    metrics_->proposals_committed->Increment(static_cast<double>(batch.size()));
    committed_.store(next_index - 1, std::memory_order_release);
    if (committed_hook_) committed_hook_(entries);

    // Segments wholly below what storage has durably flushed (and, with an
    // archive, what the archiver has shipped) may go.
    uint64_t durable = applier_->store()->durable_applied_index();
    if (release_gate_) durable = std::min(durable, release_gate_());
    if (durable > release_before_.load(std::memory_order_relaxed) + options_.release_every_entries ||
        (durable > 0 && release_before_.load() == 0)) {
      Status r = wal_->ReleaseBefore(durable + 1);
      if (!r.ok()) log::Warn("WAL release failed", {{"error", r.ToString()}});
      release_before_.store(durable);
    }
    {
      std::lock_guard<std::mutex> lock(apply_mu_);
      to_apply_.push_back(std::move(batch));
    }
    apply_cv_.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    writer_done_ = true;
  }
  apply_cv_.notify_one();
}

void Pipeline::ApplyLoop() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(apply_mu_);
      apply_cv_.wait(lock, [&] { return writer_done_ || !to_apply_.empty(); });
      if (to_apply_.empty() && writer_done_) break;
      batch = std::move(to_apply_.front());
      to_apply_.pop_front();
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& p = batch[i];
      bool idle_after = false;
      if (i + 1 == batch.size()) {
        std::lock_guard<std::mutex> lock(apply_mu_);
        idle_after = to_apply_.empty();
      }
      ApplyOne(p.index, p.req, &p.done, idle_after);
      pending_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

void Pipeline::ApplyOne(uint64_t index, const internal::InternalRequest& req, Done* done,
                        bool idle_after) {
  internal::InternalResponse resp;
  std::vector<mvcc::Event> events;
  bool fatal = false;
  auto t0 = std::chrono::steady_clock::now();
  Status s = applier_->Apply(index, req, &resp, &events, &fatal);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (fatal) {
    log::Fatal("apply failed on a storage error; stopping",
               {{"index", index}, {"error", s.ToString()}});
  }
  metrics_->apply_seconds->Observe(secs);
  metrics_->backend_commit_seconds->Observe(secs);
  if (secs > 0.1) metrics_->slow_apply_total->Increment();
  metrics_->proposals_applied->Increment();
  if (!s.ok()) metrics_->proposals_failed->Increment();
  applied_.store(index, std::memory_order_release);
  if (applied_hook_ && !events.empty()) applied_hook_(index, std::move(events), idle_after);
  if (done == nullptr || !*done) return;
  if (hold_acks_) {
    std::unique_lock<std::mutex> lock(held_mu_);
    if (held_failed_) {
      Status failed = held_status_;
      lock.unlock();
      (*done)(failed, nullptr);
      return;
    }
    if (index > acked_watermark_) {
      held_.push_back(HeldAck{index, s, std::move(resp), std::move(*done)});
      return;
    }
  }
  (*done)(s, &resp);
}

void Pipeline::OnArchived(uint64_t index) {
  std::deque<HeldAck> ready;
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    acked_watermark_ = std::max(acked_watermark_, index);
    while (!held_.empty() && held_.front().index <= index) {
      ready.push_back(std::move(held_.front()));
      held_.pop_front();
    }
  }
  for (auto& h : ready) h.done(h.status, &h.resp);
}

void Pipeline::FailHeldAcks(const Status& status) {
  std::deque<HeldAck> failed;
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    held_failed_ = true;
    held_status_ = status;
    failed.swap(held_);
  }
  for (auto& h : failed) h.done(status, nullptr);
}

}  // namespace tidemark::server
