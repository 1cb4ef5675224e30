#include "watch/hub.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <utility>

#include "base/log.h"
#include "mvcc/errors.h"

namespace tidemark::watch {

// ---- Watcher ----

Watcher* Watcher::Create(std::string_view key, std::string_view range_end) {
  void* mem = ::operator new(sizeof(Watcher) + key.size() + range_end.size());
  auto* w = new (mem) Watcher();
  w->key_len = static_cast<uint32_t>(key.size());
  w->end_len = static_cast<uint32_t>(range_end.size());
  if (!key.empty()) std::memcpy(w->bytes(), key.data(), key.size());
  if (!range_end.empty()) std::memcpy(w->bytes() + key.size(), range_end.data(), range_end.size());
  return w;
}

void Watcher::Destroy(Watcher* w) {
  w->~Watcher();
  ::operator delete(w);
}

bool Watcher::Matches(std::string_view k) const {
  std::string_view key_v = key();
  if (has(kSingleKey)) return k == key_v;
  std::string_view end = range_end();
  if (k < key_v) return false;
  if (end == std::string_view("\0", 1)) return true;  // from key
  return k < end;
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
    for (Watcher* w : ws) Watcher::Destroy(w);
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

void Hub::Publish(std::vector<mvcc::Event>&& events, bool may_fan_out_inline) {
  if (events.empty()) return;
  const int64_t rev = events.back().kv.mod_revision;
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    if (!has_watchers_) {
      skipped_rev_ = rev;  // nobody to tell; Watch() starts from here
      return;
    }
  }
  Published p;
  p.revision = rev;
  p.events.reserve(events.size());
  for (auto& e : events) {
    p.bytes += 64 + e.kv.key.size() + e.kv.value.size() +
               (e.prev_kv ? e.prev_kv->key.size() + e.prev_kv->value.size() : 0);
    p.events.push_back(std::make_shared<const mvcc::Event>(std::move(e)));
  }
  queued_events_.fetch_add(p.events.size(), std::memory_order_relaxed);

  if (may_fan_out_inline && mu_.try_lock()) {
    std::unique_lock<std::mutex> hub_lock(mu_, std::adopt_lock);
    bool idle;
    {
      // Idle = nothing queued and the watch thread holds no swapped-out batch
      // (busy_ is set when it swaps): every earlier revision is fanned out,
      // so this one may go now without overtaking any.
      std::lock_guard<std::mutex> lock(q_mu_);
      idle = queue_.empty() && !busy_ && has_watchers_ && overflow_from_ == 0;
    }
    if (idle) {
      FanOutLocked(std::span<Published>(&p, 1));
      const bool follow_up = !unsynced_.empty() || progress_waiting_ > 0;
      hub_lock.unlock();
      if (follow_up) Kick();  // victims to catch up / progress to answer
      return;
    }
  }
  bool wake;
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    // A watcher may have come and gone since the check above: queueing
    // anyway is harmless (FanOut skips revisions it already covers).
    if (queued_bytes_ + p.bytes > options_.max_queue_bytes && !queue_.empty()) {
      // The watch thread fell this far behind: drop the queue (and this
      // revision); the watch thread makes every synced watcher re-read the
      // range from history. Revisions are applied, so history has them.
      if (overflow_from_ == 0) overflow_from_ = queue_.front().revision;
      overflow_to_ = rev;
      for (const auto& q : queue_) {
        queued_events_.fetch_sub(q.events.size(), std::memory_order_relaxed);
      }
      queued_events_.fetch_sub(p.events.size(), std::memory_order_relaxed);
      queue_.clear();
      queued_bytes_ = 0;
      kicked_ = true;
    } else {
      queued_bytes_ += p.bytes;
      queue_.push_back(std::move(p));
    }
    wake = !busy_;  // a busy watch thread looks at the queue before it sleeps
  }
  if (wake) q_cv_.notify_one();
}

// mu_ held. The first watcher turns queueing on: every revision published so
// far was either skipped or is in the queue, and none of them can concern a
// watcher that did not exist, so the hub jumps to the newest of them. Later
// revisions are queued (Publish checks the flag under q_mu_).
void Hub::SetHasWatchersLocked(bool has) {
  std::lock_guard<std::mutex> lock(q_mu_);
  if (has_watchers_ == has) return;
  has_watchers_ = has;
  if (!has) return;
  int64_t newest = std::max(skipped_rev_, overflow_to_);
  for (const auto& p : queue_) {
    newest = std::max(newest, p.revision);
    queued_events_.fetch_sub(p.events.size(), std::memory_order_relaxed);
  }
  queue_.clear();
  queued_bytes_ = 0;
  overflow_from_ = overflow_to_ = 0;  // nobody watched those revisions
  hub_rev_ = std::max(hub_rev_, newest);
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
  if (s->progress_wanted) {
    s->progress_wanted = false;
    --progress_waiting_;
  }
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
  if (watcher_count_ >= Watcher::kMaxSlot) {
    return UnavailableError("watch: too many watchers on this server");
  }
  SetHasWatchersLocked(true);
  const int64_t cur = store_->current_revision();
  Watcher* w = Watcher::Create(spec.key, spec.range_end);
  w->stream = s;
  w->id = id;
  w->next_rev = spec.start_revision != 0 ? spec.start_revision : cur + 1;
  w->last_sent = Ticks(clock_->MonotonicNanos());
  if (spec.prev_kv) w->set(Watcher::kPrevKv);
  if (spec.no_put) w->set(Watcher::kNoPut);
  if (spec.no_delete) w->set(Watcher::kNoDelete);
  if (spec.progress_notify) w->set(Watcher::kProgress);
  if (spec.fragment) w->set(Watcher::kFragment);
  if (spec.range_end.empty()) w->set(Watcher::kSingleKey);
  s->watchers.Insert(w);
  ++watcher_count_;

  Response created;
  created.watch_id = id;
  created.created = true;
  created.revision = cur;
  s->EnqueueControl(std::move(created));

  if (w->has(Watcher::kProgress)) progress_.insert(w);
  // etcd 3.4 compares the start revision with its compaction revision, which
  // is -1 before the first compaction: any negative start below that is
  // "compacted" (created, then canceled with compact_revision -1 or the
  // compaction), and -1 on a never-compacted store means "from now".
  const int64_t compact = store_->compact_revision();
  const int64_t etcd_compact = compact > 0 ? compact : -1;
  if (spec.start_revision < 0 && spec.start_revision >= etcd_compact) w->next_rev = cur + 1;
  if (spec.start_revision < 0 ? spec.start_revision < etcd_compact : w->next_rev < compact) {
    // etcd: created, then canceled with the compaction revision.
    unsynced_.insert(w);
    ++s->unsynced;
    CancelCompactedLocked(w, spec.start_revision < 0 ? etcd_compact : compact);
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
    if (!s->progress_wanted) ++progress_waiting_;
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

void Hub::TakeQueueLocked(std::vector<Published>* batch, int64_t* from, int64_t* to) {
  batch->swap(queue_);
  queued_bytes_ = 0;
  *from = overflow_from_;
  *to = overflow_to_;
  overflow_from_ = overflow_to_ = 0;
}

void Hub::ApplyOverflowLocked(int64_t from, int64_t to) {
  std::vector<Watcher*> synced;
  single_.ForAll([&](Watcher* w) { synced.push_back(w); });
  range_watchers_.ForAll([&](Watcher* w) { synced.push_back(w); });
  for (Watcher* w : synced) {
    // Everything before `from` was fanned out to it; a watcher starting in
    // the future keeps its start.
    MakeUnsyncedLocked(w, std::max(w->next_rev, from));
  }
  hub_rev_ = std::max(hub_rev_, to);
  log::Warn("watch: publish queue overflowed; synced watchers catch up from history",
            {{"from", from}, {"to", to}, {"watchers", static_cast<uint64_t>(synced.size())}});
}

void Hub::PauseForTesting(bool paused) {
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    paused_ = paused;
  }
  q_cv_.notify_all();
}

void Hub::Loop() {
  int64_t from = 0, to = 0;
  for (;;) {
    std::vector<Published> batch;
    {
      std::unique_lock<std::mutex> lock(q_mu_);
      busy_ = false;
      idle_cv_.notify_all();
      q_cv_.wait_for(lock, std::chrono::milliseconds(100),
                     [&] { return stop_ || (!paused_ && (kicked_ || !queue_.empty())); });
      if (stop_) return;
      if (paused_) continue;
      TakeQueueLocked(&batch, &from, &to);
      kicked_ = false;
      busy_ = true;
    }
    bool more = true;
    while (more) {
      std::lock_guard<std::mutex> lock(mu_);
      if (from != 0) ApplyOverflowLocked(from, to);
      from = to = 0;
      FanOutLocked(batch);
      batch.clear();
      more = CatchUpLocked();
      ProgressLocked(clock_->MonotonicNanos());
      StreamProgressLocked();
      if (more) {
        // Take newly published revisions before the next catch-up round,
        // so a long catch-up never delays live watchers.
        std::lock_guard<std::mutex> ql(q_mu_);
        TakeQueueLocked(&batch, &from, &to);
        kicked_ = false;
        if (stop_) return;
      }
    }
  }
}

void Hub::FanOutLocked(std::span<Published> batch) {
  // Build one response per watcher over all revisions of the batch (a new
  // one past max_merge_bytes), then queue them; a refused response makes its
  // watcher a victim that re-reads from the response's first revision.
  pending_.clear();
  pending_index_.clear();
  // Merged responses stay well under the outbox bound, so a stalled stream
  // holds at most its bound plus one such response.
  const size_t merge_limit = std::min(options_.max_merge_bytes, options_.max_outbox_bytes / 4);
  for (auto& p : batch) {
    queued_events_.fetch_sub(p.events.size(), std::memory_order_relaxed);
    const int64_t rev = p.revision;
    if (rev <= hub_rev_) continue;  // covered when queueing was turned on
    hub_rev_ = rev;
    for (size_t i = 0; i < p.events.size(); ++i) {
      const EventRef& ev = p.events[i];
      auto hit = [&](Watcher* w) {
        // Both indexes below only hand over watchers whose key/range holds the
        // event's key.
        if (w->next_rev > rev || !w->PassesFilters(*ev)) return;
        auto [it, inserted] = pending_index_.emplace(w, pending_.size());
        if (!inserted) {
          Pending& cur = pending_[it->second];
          // Start a new response at a revision boundary once this one is big.
          if (cur.r.revision != rev && cur.bytes >= merge_limit) {
            it->second = pending_.size();
            inserted = true;
          }
        }
        if (inserted) {
          Pending np{w, rev, 64, {}};
          np.r.watch_id = w->id;
          np.r.allow_fragment = w->has(Watcher::kFragment);
          np.r.with_prev_kv = w->has(Watcher::kPrevKv);
          pending_.push_back(std::move(np));
        }
        Pending& pd = pending_[it->second];
        pd.r.revision = rev;
        pd.r.events.push_back(ev);
        pd.bytes += 48 + ev->kv.key.size() + ev->kv.value.size();
        if (pd.r.with_prev_kv && ev->prev_kv) {
          pd.bytes += 32 + ev->prev_kv->key.size() + ev->prev_kv->value.size();
        }
      };
      single_.ForEach(ev->kv.key, hit);
      range_watchers_.ForEachMatching(ev->kv.key, hit);
    }
  }
  if (pending_.empty()) return;
  const int64_t now = clock_->MonotonicNanos();
  for (Pending& pd : pending_) {
    Watcher* w = pd.w;
    if (!w->has(Watcher::kSynced)) continue;  // refused earlier in this batch
    const size_t n = pd.r.events.size();
    if (w->stream->TryEnqueueData(pd.r)) {
      w->last_sent = Ticks(now);
      events_sent_.fetch_add(n, std::memory_order_relaxed);
    } else {
      MakeUnsyncedLocked(w, pd.first_rev);  // victim: re-read from there later
    }
  }
  // Synced watchers have now seen everything up to hub_rev_.
  for (Pending& pd : pending_) {
    if (pd.w->has(Watcher::kSynced)) pd.w->next_rev = hub_rev_ + 1;
  }
  pending_.clear();
  pending_index_.clear();
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
  std::vector<EventRef> shared;
  shared.reserve(events->size());
  for (auto& e : *events) shared.push_back(std::make_shared<const mvcc::Event>(std::move(e)));
  const int64_t now = clock_->MonotonicNanos();
  bool progressed = false;
  for (Watcher* w : ready) {
    if (w->next_rev > hi) continue;
    Response r;
    r.watch_id = w->id;
    r.revision = hi;
    r.allow_fragment = w->has(Watcher::kFragment);
    r.with_prev_kv = w->has(Watcher::kPrevKv);
    for (const auto& e : shared) {
      if (e->kv.mod_revision < w->next_rev || !w->Wants(*e)) continue;
      r.events.push_back(e);
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
    if (!w->has(Watcher::kSynced) ||
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
    --progress_waiting_;
    Response r;
    r.watch_id = -1;
    r.revision = hub_rev_;
    s->EnqueueControl(std::move(r));
  }
}

void Hub::AddSyncedLocked(Watcher* w) {
  w->set(Watcher::kSynced);
  if (w->has(Watcher::kSingleKey)) {
    single_.Insert(w);
  } else {
    range_watchers_.Insert(w);
  }
}

void Hub::RemoveSyncedLocked(Watcher* w) {
  w->clear(Watcher::kSynced);
  if (w->has(Watcher::kSingleKey)) {
    single_.Remove(w);
  } else {
    range_watchers_.Remove(w);
  }
}

void Hub::MakeUnsyncedLocked(Watcher* w, int64_t next_rev) {
  RemoveSyncedLocked(w);
  w->next_rev = next_rev;
  unsynced_.insert(w);
  ++w->stream->unsynced;
}

void Hub::RemoveWatcherLocked(Watcher* w) {
  if (w->has(Watcher::kSynced)) {
    RemoveSyncedLocked(w);
  } else if (unsynced_.erase(w)) {
    --w->stream->unsynced;
  }
  progress_.erase(w);
  w->stream->watchers.Remove(w);
  --watcher_count_;
  Watcher::Destroy(w);
  if (watcher_count_ == 0) SetHasWatchersLocked(false);
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
