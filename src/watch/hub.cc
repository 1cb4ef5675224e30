#include "watch/hub.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "base/log.h"
#include "mvcc/errors.h"

namespace tidemark::watch {

// ---- Watcher ----

bool Watcher::Matches(const std::string& k) const {
  std::string_view key_v = key();
  if (flags & kSingleKey) return k == key_v;
  std::string_view end = range_end();
  if (k < key_v) return false;
  if (end == std::string_view("\0", 1)) return true;  // from key
  return k < end;
}

bool Watcher::Wants(const mvcc::Event& e) const {
  if (e.type == mvcc::EventType::kPut && (flags & kNoPut)) return false;
  if (e.type == mvcc::EventType::kDelete && (flags & kNoDelete)) return false;
  return Matches(e.kv.key);
}

// ---- Hub ----

Hub::Hub(const mvcc::Store* store, Clock* clock, HubOptions options)
    : store_(store), clock_(clock), options_(options) {
  hub_rev_ = store_->current_revision();
  epoch_ns_ = clock_->MonotonicNanos();
}

Hub::~Hub() {
  Stop();
  for (const auto& s : streams_) {
    std::vector<Watcher*> ws;
    s->watchers.ForAll([&](Watcher* w) { ws.push_back(w); });
    for (Watcher* w : ws) delete w;
  }
}

void Hub::Start() {
  started_ = true;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "watch");
    Loop();
  });
}

void Hub::Stop() {
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
  }
  q_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.assign(streams_.begin(), streams_.end());
  }
  // Outside mu_: a sink may finish its RPC, whose teardown calls CloseStream.
  for (const auto& s : streams) s->Close(/*notify=*/true);
}

void Hub::Publish(std::vector<mvcc::Event> events) {
  if (events.empty()) return;
  int64_t rev = events.back().kv.mod_revision;
  queued_events_.fetch_add(events.size(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    queue_.push_back(Published{rev, std::move(events)});
  }
  q_cv_.notify_one();
}

void Hub::Kick() {
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    kicked_ = true;
  }
  q_cv_.notify_one();
}

std::shared_ptr<Stream> Hub::NewStream() {
  auto s = std::make_shared<Stream>(options_.max_outbox_bytes);
  std::lock_guard<std::mutex> lock(mu_);
  streams_.insert(s);
  return s;
}

void Hub::CloseStream(const std::shared_ptr<Stream>& s) {
  s->Close(/*notify=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Watcher*> ws;
  ws.reserve(s->watchers.size());
  s->watchers.ForAll([&](Watcher* w) { ws.push_back(w); });
  for (Watcher* w : ws) RemoveWatcherLocked(w);
  streams_.erase(s);
}

Result<int64_t> Hub::Watch(Stream* s, const WatchSpec& spec) {
  if (!spec.range_end.empty() && spec.range_end != std::string_view("\0", 1) &&
      spec.range_end <= spec.key) {
    return InvalidArgumentError(kErrEmptyRange);
  }
  std::lock_guard<std::mutex> lock(mu_);
  int64_t id = spec.watch_id;
  if (id != 0) {
    if (s->watchers.Find(id)) return InvalidArgumentError(kErrDuplicateId);
  } else {
    while (s->watchers.Find(s->next_auto_id)) ++s->next_auto_id;
    id = s->next_auto_id++;
  }
  const int64_t cur = store_->current_revision();
  auto* w = new Watcher();
  w->stream = s;
  w->range = spec.key + spec.range_end;
  w->key_len = static_cast<uint32_t>(spec.key.size());
  w->id = id;
  w->next_rev = spec.start_revision > 0 ? spec.start_revision : cur + 1;
  w->last_sent = Ticks(clock_->MonotonicNanos());
  if (spec.prev_kv) w->flags |= Watcher::kPrevKv;
  if (spec.no_put) w->flags |= Watcher::kNoPut;
  if (spec.no_delete) w->flags |= Watcher::kNoDelete;
  if (spec.progress_notify) w->flags |= Watcher::kProgress;
  if (spec.fragment) w->flags |= Watcher::kFragment;
  if (spec.range_end.empty()) w->flags |= Watcher::kSingleKey;
  s->watchers.Insert(w);
  ++watcher_count_;

  Response created;
  created.watch_id = id;
  created.created = true;
  created.revision = cur;
  s->EnqueueControl(std::move(created));

  if (w->flags & Watcher::kProgress) progress_.insert(w);
  if (const int64_t compact = store_->compact_revision(); w->next_rev < compact) {
    // etcd: created, then canceled with the compaction revision.
    unsynced_.insert(w);
    ++s->unsynced;
    CancelCompactedLocked(w, compact);
  } else if (w->next_rev <= hub_rev_) {
    // In the past: catch up from history on the watch thread.
    unsynced_.insert(w);
    ++s->unsynced;
    Kick();
  } else {
    // Now or future: every revision >= next_rev is still to be fanned out.
    AddSyncedLocked(w);
  }
  return id;
}

bool Hub::Cancel(Stream* s, int64_t watch_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Watcher* w = s->watchers.Find(watch_id);
  if (w == nullptr) return false;
  RemoveWatcherLocked(w);
  Response r;
  r.watch_id = watch_id;
  r.canceled = true;
  r.revision = store_->current_revision();
  s->EnqueueControl(std::move(r));
  return true;
}

void Hub::RequestProgress(Stream* s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    s->progress_wanted = true;
    s->progress_min_rev = std::max(s->progress_min_rev, store_->current_revision());
  }
  Kick();
}

Hub::Stats Hub::stats() const {
  Stats st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.watchers = watcher_count_;
    st.streams = streams_.size();
    st.slow_watchers = unsynced_.size();
  }
  st.pending_events = queued_events_.load(std::memory_order_relaxed);
  st.events_sent = events_sent_.load(std::memory_order_relaxed);
  return st;
}

void Hub::WaitIdleForTesting() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(q_mu_);
      idle_cv_.wait(lock, [&] { return (queue_.empty() && !busy_ && !kicked_) || stop_; });
      if (stop_) return;
    }
    // Idle means: nothing queued and no slow watcher that has room.
    std::lock_guard<std::mutex> lock(mu_);
    bool work = false;
    for (Watcher* w : unsynced_) {
      if (w->stream->HasRoom()) work = true;
    }
    if (!work) return;
    Kick();
    std::this_thread::yield();
  }
}

// ---- watch thread ----

void Hub::Loop() {
  for (;;) {
    std::deque<Published> batch;
    {
      std::unique_lock<std::mutex> lock(q_mu_);
      busy_ = false;
      idle_cv_.notify_all();
      q_cv_.wait_for(lock, std::chrono::milliseconds(100),
                     [&] { return stop_ || kicked_ || !queue_.empty(); });
      if (stop_) return;
      batch.swap(queue_);
      kicked_ = false;
      busy_ = true;
    }
    bool more = true;
    while (more) {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& p : batch) FanOutLocked(p);
      batch.clear();
      more = CatchUpLocked();
      ProgressLocked(clock_->MonotonicNanos());
      StreamProgressLocked();
      if (more) {
        // Take newly published revisions before the next catch-up round,
        // so a long catch-up never delays live watchers.
        std::lock_guard<std::mutex> ql(q_mu_);
        batch.swap(queue_);
        kicked_ = false;
        if (stop_) return;
      }
    }
  }
}

void Hub::FanOutLocked(Published& p) {
  queued_events_.fetch_sub(p.events.size(), std::memory_order_relaxed);
  const int64_t rev = p.revision;
  hub_rev_ = rev;
  // Per watcher, the events of this revision it wants (in order).
  std::vector<std::pair<Watcher*, std::vector<uint32_t>>> hits;
  std::unordered_map<Watcher*, size_t> index;
  auto hit = [&](Watcher* w, uint32_t i) {
    if (w->next_rev > rev || !w->Wants(p.events[i])) return;
    auto [it, inserted] = index.emplace(w, hits.size());
    if (inserted) hits.push_back({w, {}});
    hits[it->second].second.push_back(i);
  };
  for (uint32_t i = 0; i < p.events.size(); ++i) {
    single_.ForEach(p.events[i].kv.key, [&](Watcher* w) { hit(w, i); });
    for (Watcher* w : range_watchers_) hit(w, i);
  }
  const int64_t now = hits.empty() ? 0 : clock_->MonotonicNanos();
  for (auto& [w, idx] : hits) {
    Response r;
    r.watch_id = w->id;
    r.revision = rev;
    r.allow_fragment = (w->flags & Watcher::kFragment) != 0;
    r.events.reserve(idx.size());
    for (uint32_t i : idx) {
      r.events.push_back(p.events[i]);
      if (!(w->flags & Watcher::kPrevKv)) r.events.back().prev_kv.reset();
    }
    size_t n = r.events.size();
    if (w->stream->TryEnqueueData(r)) {
      w->next_rev = rev + 1;
      w->last_sent = Ticks(now);
      events_sent_.fetch_add(n, std::memory_order_relaxed);
    } else {
      MakeUnsyncedLocked(w, rev);  // victim: re-read from `rev` later
    }
  }
  // Everyone else synced has now seen `rev` too.
}

bool Hub::CatchUpLocked() {
  if (unsynced_.empty()) return false;
  const int64_t compact = store_->compact_revision();
  std::vector<Watcher*> ready;
  std::vector<Watcher*> compacted;
  int64_t lo = INT64_MAX;
  for (Watcher* w : unsynced_) {
    if (w->next_rev < compact) {
      compacted.push_back(w);
      continue;
    }
    if (!w->stream->HasRoom()) continue;
    ready.push_back(w);
    lo = std::min(lo, w->next_rev);
  }
  for (Watcher* w : compacted) CancelCompactedLocked(w, compact);
  if (ready.empty()) return !compacted.empty();
  if (lo > hub_rev_) {
    for (Watcher* w : ready) {
      unsynced_.erase(w);
      --w->stream->unsynced;
      AddSyncedLocked(w);
    }
    return true;
  }
  const int64_t hi = std::min(hub_rev_, lo + options_.catchup_batch_revisions - 1);
  auto events = store_->Events(lo, hi, 0);
  if (!events.ok()) {
    if (!mvcc::IsCompacted(events.status())) {
      log::Error("watch: reading history", {{"from", lo}, {"to", hi},
                                            {"error", events.status().ToString()}});
    }
    return false;  // compacted meanwhile: the next round cancels
  }
  const int64_t now = clock_->MonotonicNanos();
  bool progressed = false;
  for (Watcher* w : ready) {
    if (w->next_rev > hi) continue;
    Response r;
    r.watch_id = w->id;
    r.revision = hi;
    r.allow_fragment = (w->flags & Watcher::kFragment) != 0;
    for (const auto& e : *events) {
      if (e.kv.mod_revision < w->next_rev || !w->Wants(e)) continue;
      r.events.push_back(e);
      if (!(w->flags & Watcher::kPrevKv)) r.events.back().prev_kv.reset();
    }
    if (!r.events.empty()) {
      size_t n = r.events.size();
      if (!w->stream->TryEnqueueData(r)) continue;  // full again: retry later
      w->last_sent = Ticks(now);
      events_sent_.fetch_add(n, std::memory_order_relaxed);
    }
    w->next_rev = hi + 1;
    progressed = true;
    if (hi == hub_rev_) {
      unsynced_.erase(w);
      --w->stream->unsynced;
      AddSyncedLocked(w);
    }
  }
  return progressed;
}

void Hub::ProgressLocked(int64_t now) {
  if (progress_.empty() || now < next_progress_check_ns_) return;
  const int64_t interval = options_.progress_interval_ns;
  next_progress_check_ns_ = now + std::max<int64_t>(interval / 10, 1);
  for (Watcher* w : progress_) {
    if (!(w->flags & Watcher::kSynced) ||
        static_cast<int64_t>(Ticks(now) - w->last_sent) * kTickNs < interval) {
      continue;
    }
    Response r;
    r.watch_id = w->id;
    r.revision = hub_rev_;
    w->stream->EnqueueControl(std::move(r));
    w->last_sent = Ticks(now);
  }
}

void Hub::StreamProgressLocked() {
  for (const auto& s : streams_) {
    if (!s->progress_wanted || s->unsynced != 0 || hub_rev_ < s->progress_min_rev) continue;
    s->progress_wanted = false;
    Response r;
    r.watch_id = -1;
    r.revision = hub_rev_;
    s->EnqueueControl(std::move(r));
  }
}

void Hub::AddSyncedLocked(Watcher* w) {
  w->flags |= Watcher::kSynced;
  if (w->flags & Watcher::kSingleKey) {
    single_.Insert(w);
  } else {
    w->slot = static_cast<uint32_t>(range_watchers_.size());
    range_watchers_.push_back(w);
  }
}

void Hub::RemoveSyncedLocked(Watcher* w) {
  w->flags &= static_cast<uint8_t>(~Watcher::kSynced);
  if (w->flags & Watcher::kSingleKey) {
    single_.Remove(w);
  } else {
    Watcher* last = range_watchers_.back();
    range_watchers_[w->slot] = last;
    last->slot = w->slot;
    range_watchers_.pop_back();
  }
}

void Hub::MakeUnsyncedLocked(Watcher* w, int64_t next_rev) {
  RemoveSyncedLocked(w);
  w->next_rev = next_rev;
  unsynced_.insert(w);
  ++w->stream->unsynced;
}

void Hub::RemoveWatcherLocked(Watcher* w) {
  if (w->flags & Watcher::kSynced) {
    RemoveSyncedLocked(w);
  } else if (unsynced_.erase(w)) {
    --w->stream->unsynced;
  }
  progress_.erase(w);
  w->stream->watchers.Remove(w);
  --watcher_count_;
  delete w;
}

void Hub::CancelCompactedLocked(Watcher* w, int64_t compact_rev) {
  Response r;
  r.watch_id = w->id;
  r.canceled = true;
  r.compact_revision = compact_rev;
  r.revision = 0;
  Stream* s = w->stream;
  RemoveWatcherLocked(w);
  s->EnqueueControl(std::move(r));
}

}  // namespace tidemark::watch
