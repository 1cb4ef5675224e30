#pragma once
// watch::Hub: etcd's watchable store (mvcc/watchable_store.go) for tidemark.
// docs/design/watch.md explains the design.
//
//  * Publish(events) is called by the apply thread after each applied
//    revision. It only appends to a queue (short mutex, no I/O, no client
//    work) and wakes the "watch" thread, which fans the events out. While no
//    watcher exists it queues nothing (it only remembers the revision), so a
//    store nobody watches pays no watch cost per write.
//  * The watch thread takes everything queued at once: a watcher receives the
//    events of all queued revisions it wants in ONE response (whole
//    revisions, ascending; header revision = its last event's), so a busy
//    store needs far fewer responses than revisions.
//  * Synced watchers get live events. Watchers whose next revision is in the
//    past (start revision in history, or fell behind because their stream's
//    bounded outbox was full = "slow"/victim) are unsynced: the watch thread
//    reads mvcc history for them (Store::Events, <= 1000 revisions a round,
//    whole revisions) once their stream has room, and moves them to the
//    synced group when they reach the hub revision: no gap, no duplicate.
//  * A watcher whose next revision fell below the compaction revision gets a
//    canceled response with compact_revision (header revision 0).
//  * Progress: per-watcher progress_notify every `progress_interval` when the
//    watcher is synced and sent nothing in the interval; RequestProgress()
//    answers (watch_id -1, hub revision) once every watcher of the stream is
//    synced. A progress revision is never 0 and never ahead of an event not
//    yet queued for that stream.
//
// Thread-safety: all public methods are thread-safe. Publish never blocks on
// clients or I/O. Watch/Cancel/RequestProgress/CloseStream take the hub mutex
// (held by the watch thread while it fans out or reads history).
//
// Ownership: `store` and `clock` are borrowed and must outlive the hub. Call
// Stop() (or destroy the hub) before destroying them.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "mvcc/store.h"
#include "mvcc/types.h"
#include "watch/range_watchers.h"
#include "watch/stream.h"
#include "watch/watcher.h"

namespace tidemark::watch {

inline constexpr char kErrEmptyRange[] = "mvcc: watcher range is empty";
inline constexpr char kErrDuplicateId[] = "mvcc: duplicate watch ID provided on the WatchStream";

struct HubOptions {
  // etcd --experimental-watch-progress-notify-interval (default 10 min).
  int64_t progress_interval_ns = 600LL * 1000 * 1000 * 1000;
  // Per-stream outbox bound (data responses).
  size_t max_outbox_bytes = 4 << 20;
  // Revisions read from history per catch-up round.
  int64_t catchup_batch_revisions = 1000;
  // Bound of the publish queue (events the watch thread has not fanned out
  // yet, approximate bytes). Past it the queue is dropped and every synced
  // watcher re-reads those revisions from history (etcd's victims), so a
  // watch thread that falls behind the writers never grows memory.
  size_t max_queue_bytes = 64 << 20;
  // A live response stops taking further revisions past this size (or a
  // quarter of max_outbox_bytes); a single revision is never split
  // (fragment=true lets the transport split).
  size_t max_merge_bytes = 256 << 10;
};

// A WatchCreateRequest in plain types. key must be non-empty (the transport
// maps "" to "\0"); range_end as in Range: "" single key, "\0" from key.
struct WatchSpec {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;  // 0 = from now; negative: as etcd 3.4 (Hub::Watch)
  int64_t watch_id = 0;        // 0 = assign (first auto ID is 0)
  bool progress_notify = false;
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
  bool fragment = false;
};

class Hub {
 public:
  struct Stats {
    uint64_t watchers = 0;
    uint64_t streams = 0;
    uint64_t slow_watchers = 0;
    uint64_t pending_events = 0;
    uint64_t events_sent = 0;
  };

  Hub(const mvcc::Store* store, Clock* clock, HubOptions options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  void Start();  // starts the "watch" thread
  // Stops the thread and closes every stream (Sink::Close). Idempotent.
  void Stop();

  // Apply thread: the events of one applied revision (consumed). Never waits
  // for clients. With `may_fan_out_inline` (the caller has nothing else to
  // do right now) and an idle watch thread, the calling thread fans the
  // revision out itself, so watchers are told before the writer is
  // acknowledged (as etcd's notify-in-apply) and no thread hand-off is paid;
  // otherwise the revision is queued for the watch thread, which batches.
  void Publish(std::vector<mvcc::Event>&& events, bool may_fan_out_inline = false);

  std::shared_ptr<Stream> NewStream();
  // Drops every watcher of the stream and detaches its sink.
  void CloseStream(const std::shared_ptr<Stream>& s);

  // Creates a watcher and queues its `created` reply (before any event of
  // it). On failure queues nothing and returns InvalidArgument with etcd's
  // cancel reason (kErrEmptyRange, kErrDuplicateId). A start revision below
  // the compaction revision yields created + compacted cancel.
  Result<int64_t> Watch(Stream* s, const WatchSpec& spec);
  // Queues {watch_id, canceled}; false (nothing queued) for an unknown ID.
  bool Cancel(Stream* s, int64_t watch_id);
  void RequestProgress(Stream* s);
  // The stream's outbox drained: look at its slow watchers again.
  void Kick();
  // Tests: holds the watch thread before it takes the next batch.
  void PauseForTesting(bool paused);

  int64_t current_revision() const { return store_->current_revision(); }
  Stats stats() const;

  // Tests: waits until the watch thread has processed everything published
  // and has no catch-up work it could do now.
  void WaitIdleForTesting();

 private:
  struct Published {
    int64_t revision;
    std::vector<EventRef> events;
    size_t bytes = 0;  // approximate, for max_queue_bytes
  };
  // A response being built by FanOutLocked for one watcher.
  struct Pending {
    Watcher* w;
    int64_t first_rev;  // revision of its first event
    size_t bytes;       // Response::ApproxBytes(), kept as events are added
    Response r;
  };

  // Watcher::last_sent units: 0.1 s since the hub started (int32: 6.8 years).
  static constexpr int64_t kTickNs = 100'000'000;
  int32_t Ticks(int64_t mono_ns) const {
    return static_cast<int32_t>((mono_ns - epoch_ns_) / kTickNs);
  }

  void Loop();
  // Consumes the events of `batch` (revisions ascending).
  void FanOutLocked(std::span<Published> batch);
  // q_mu_ held: moves the queue into *batch; returns the dropped range
  // (overflow) as [from, to], or from = 0.
  void TakeQueueLocked(std::vector<Published>* batch, int64_t* from, int64_t* to);
  // mu_ held: revisions from..to were dropped; synced watchers re-read them.
  void ApplyOverflowLocked(int64_t from, int64_t to);
  void SetHasWatchersLocked(bool has);
  bool CatchUpLocked();  // true if it did work
  void ProgressLocked(int64_t now);
  void StreamProgressLocked();
  void AddSyncedLocked(Watcher* w);
  void RemoveSyncedLocked(Watcher* w);
  void MakeUnsyncedLocked(Watcher* w, int64_t next_rev);
  void RemoveWatcherLocked(Watcher* w);
  void CancelCompactedLocked(Watcher* w, int64_t compact_rev);

  const mvcc::Store* store_;
  Clock* clock_;
  const HubOptions options_;
  int64_t epoch_ns_ = 0;

  // Publish queue (apply thread -> watch thread).
  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::vector<Published> queue_;  // guarded by q_mu_
  // Publish queues only while a watcher exists; otherwise it records the
  // revision here. Both guarded by q_mu_; has_watchers_ changes under mu_ too.
  bool has_watchers_ = false;
  int64_t skipped_rev_ = 0;
  size_t queued_bytes_ = 0;      // guarded by q_mu_
  int64_t overflow_from_ = 0;    // dropped revisions [from, to] (guarded by q_mu_)
  int64_t overflow_to_ = 0;
  bool paused_ = false;          // guarded by q_mu_ (tests)
  bool kicked_ = false;          // guarded by q_mu_
  bool stop_ = false;            // guarded by q_mu_
  bool busy_ = false;            // guarded by q_mu_ (tests)
  std::condition_variable idle_cv_;
  std::atomic<uint64_t> queued_events_{0};

  mutable std::mutex mu_;
  int64_t hub_rev_ = 0;  // last revision fanned out (guarded by mu_)
  std::unordered_set<std::shared_ptr<Stream>> streams_;
  KeyIndex single_;  // synced single-key watchers
  RangeWatchers range_watchers_;  // synced range watchers, grouped by range
  std::unordered_set<Watcher*> unsynced_;
  std::unordered_set<Watcher*> progress_;  // watchers with progress_notify
  int64_t next_progress_check_ns_ = 0;
  uint64_t watcher_count_ = 0;
  // FanOutLocked scratch (reused; guarded by mu_).
  std::vector<Pending> pending_;
  std::unordered_map<Watcher*, size_t> pending_index_;
  std::atomic<uint64_t> events_sent_{0};
  size_t progress_waiting_ = 0;  // streams with progress_wanted (guarded by mu_)

  std::thread thread_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace tidemark::watch
