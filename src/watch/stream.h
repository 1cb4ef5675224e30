#pragma once
// watch::Stream: one client watch stream (etcd's WatchStream) as the hub sees
// it: a BOUNDED outbox of responses plus the "sink" that writes them to the
// transport (a gRPC reactor or the HTTP gateway).
//
// Flow control: the sink has at most ONE write outstanding. Enqueue*() hands
// the next response to the sink at once if nothing is in flight; otherwise it
// waits in the outbox until the sink calls WriteDone(). While it waits, later
// data responses of the same watch ID are merged into it (their events
// appended, header revision advanced; up to max_outbox_bytes/4, at most
// 256 KiB) unless a control response was queued after it -- so a slow
// transport gets fewer, fuller messages instead of a longer queue, and events
// only ever move earlier, never past a created/canceled/progress reply. Data responses are
// refused (TryEnqueueData returns false) once the outbox holds
// `max_outbox_bytes`; the hub then turns the watcher into a slow watcher that
// catches up from history later. Control responses (created, canceled,
// progress) are always accepted: they are bounded by the client's requests.
//
// Thread-safety: every method is thread-safe. Sink callbacks are invoked with
// the stream's mutex held, so a sink must not call back into the Stream from
// Deliver()/Close() (gRPC runs OnWriteDone on another thread, which is fine).
//
// Ownership: shared (hub + transport) through std::shared_ptr. The sink is
// borrowed; Close() detaches it, and after Close() returns the stream never
// calls it again, so the transport may then destroy it.

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mvcc/types.h"
#include "watch/watcher.h"

namespace tidemark::watch {

// An event shared by every response that carries it (one copy per applied
// event, however many watchers receive it).
using EventRef = std::shared_ptr<const mvcc::Event>;

// One WatchResponse in plain types (the transport converts it).
struct Response {
  int64_t watch_id = 0;
  // header.revision; 0 for a compacted cancel (etcd sends no revision there).
  int64_t revision = 0;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
  // The watcher asked for fragment=true: the transport may split big ones.
  bool allow_fragment = false;
  // The watcher asked for prev_kv: send Event::prev_kv when present.
  bool with_prev_kv = false;
  // Ascending revision, whole revisions; may span several revisions.
  std::vector<EventRef> events;

  // Rough encoded size, used for the outbox bound.
  size_t ApproxBytes() const;
};

// Implemented by the transport. Called with the stream mutex held.
class Sink {
 public:
  virtual ~Sink() = default;
  // Start writing `r`; call Stream::WriteDone() once the write completed.
  virtual void Deliver(Response r) = 0;
  // The hub ends the stream (server shutdown). Finish the transport.
  virtual void Close() = 0;
};

class Stream {
 public:
  explicit Stream(size_t max_outbox_bytes)
      : max_outbox_bytes_(max_outbox_bytes),
        max_merge_bytes_(std::min<size_t>(max_outbox_bytes / 4, 256 << 10)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void AttachSink(Sink* sink);
  // Detaches the sink (no more calls to it). If `notify`, calls Sink::Close()
  // first. Idempotent.
  void Close(bool notify);
  bool closed() const;

  // Always accepted (created / canceled / progress replies).
  void EnqueueControl(Response r);
  // Refused (false, `r` untouched) when the outbox is at its bound.
  bool TryEnqueueData(Response& r);
  // True if a data response would be accepted now.
  bool HasRoom() const;
  // Sink: the previous Deliver finished. Delivers the next response, if any.
  // Returns true if the outbox just dropped below half its bound after having
  // been full (the hub should look at its slow watchers again).
  bool WriteDone();

  size_t pending_responses() const;
  size_t pending_bytes() const;

  // ---- hub-private state (guarded by the hub's mutex, not by mu_) ----
  IdIndex watchers;
  int64_t next_auto_id = 0;
  size_t unsynced = 0;           // watchers of this stream not caught up
  bool progress_wanted = false;  // a WatchProgressRequest is pending
  int64_t progress_min_rev = 0;  // ...answer it at a revision >= this

 private:
  void PumpLocked();

  const size_t max_outbox_bytes_;
  const size_t max_merge_bytes_;
  mutable std::mutex mu_;
  std::deque<Response> outbox_;  // guarded by mu_
  std::deque<size_t> sizes_;     // ApproxBytes of each outbox_ entry (guarded by mu_)
  uint64_t front_seq_ = 0;       // sequence number of outbox_.front() (guarded by mu_)
  // watch ID -> sequence number of its newest data response queued after the
  // last control response (merge candidates). guarded by mu_.
  std::unordered_map<int64_t, uint64_t> mergeable_;
  size_t bytes_ = 0;             // guarded by mu_
  bool in_flight_ = false;       // guarded by mu_
  bool was_full_ = false;        // guarded by mu_
  bool closed_ = false;          // guarded by mu_
  Sink* sink_ = nullptr;         // guarded by mu_
};

}  // namespace tidemark::watch
