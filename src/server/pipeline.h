#pragma once
// The commit pipeline (docs/design/pipeline.md):
//
//   Propose() (any thread) -> queue -> "wal-writer": assign indexes, append
//   the whole batch, ONE fdatasync -> "apply": in index order, one storage
//   batch per entry (data + applied index), then complete the proposal.
//
// A proposal is acknowledged (its Done runs) only after its WAL entry is
// durable AND applied, so an acknowledged write survives any crash: on
// restart Recover() replays the WAL from the storage's applied index + 1.
//
// Failure policy: a failed WAL append/fsync or a storage error in apply is
// fail-stop (logged, process aborts); never retried.
//
// Threads: Propose/applied_index/pending are thread-safe. Done callbacks run
// on the apply thread and must not block. Start/Stop by the owner.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apply/applier.h"
#include "base/clock.h"
#include "base/status.h"
#include "mvcc/types.h"
#include "server/metrics.h"
#include "wal/wal.h"

#include "tidemark/internal.pb.h"

namespace tidemark::server {

class Pipeline {
 public:
  // Runs on the apply thread once the entry is applied. `resp` is valid only
  // during the call (the callee may Swap its contents out).
  using Done = std::function<void(const Status& status, internal::InternalResponse* resp)>;
  // Observer of every applied entry's events (watch hub, later the archiver).
  // `idle_after`: no further entry is ready to apply right now (the hook may
  // then do its work inline, before this entry is acknowledged).
  using AppliedHook =
      std::function<void(uint64_t index, std::vector<mvcc::Event>&& events, bool idle_after)>;

  struct Options {
    size_t max_batch_entries = 4096;
    // Release WAL segments (after a storage flush) every this many entries.
    uint64_t release_every_entries = 100000;
    // Debug only: runs on wal-writer after each successful Sync (latency
    // injection for `tidemark bench`; ServerOptions::debug_after_wal_sync).
    std::function<void()> debug_after_sync;
  };

  Pipeline(wal::Wal* wal, apply::Applier* applier, Metrics* metrics, Clock* clock,
           Options options);
  ~Pipeline();

  // Replays WAL entries after the storage's applied index. Call before Start().
  Status Recover();
  void Start();
  // Completes everything queued, then stops both threads. Later proposals
  // fail with "etcdserver: server stopped".
  void Stop();

  void Propose(internal::InternalRequest req, Done done);

  uint64_t applied_index() const { return applied_.load(std::memory_order_acquire); }
  uint64_t committed_index() const { return committed_.load(std::memory_order_acquire); }
  // Proposals accepted but not yet applied (etcd: committed - applied).
  uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }

  void set_applied_hook(AppliedHook hook) { applied_hook_ = std::move(hook); }

  // ---- archive gates (docs/design/archive.md); set before Start() ----
  // Called on the wal-writer thread with every batch once it is durable.
  using CommittedHook = std::function<void(const std::vector<wal::Entry>& entries)>;
  void set_committed_hook(CommittedHook hook) { committed_hook_ = std::move(hook); }
  // WAL segments are released only below min(storage-durable, gate()) + 1:
  // a segment is never deleted before the archiver shipped it.
  void set_release_gate(std::function<uint64_t()> gate) { release_gate_ = std::move(gate); }
  // Sync archive mode: a proposal's Done is held after apply until
  // OnArchived(i) with i >= its index (called by the archiver's thread,
  // which then runs the held Done callbacks). Reads may observe an applied
  // but not yet acknowledged write, as with any commit before its ack.
  void set_hold_acks_until_archived(bool hold) { hold_acks_ = hold; }
  void OnArchived(uint64_t index);
  // Completes every held Done with `status` (shutdown when the archive could
  // not be reached). Later proposals are not held any more.
  void FailHeldAcks(const Status& status);

 private:
  struct Proposal {
    internal::InternalRequest req;
    std::string payload;
    Done done;
    uint64_t index = 0;
  };
  using Batch = std::vector<Proposal>;

  void WriterLoop();
  void ApplyLoop();
  void ApplyOne(uint64_t index, const internal::InternalRequest& req, Done* done,
                bool idle_after);
  void MaybeReleaseWal();

  wal::Wal* wal_;
  apply::Applier* applier_;
  Metrics* metrics_;
  Clock* clock_;
  Options options_;
  AppliedHook applied_hook_;
  CommittedHook committed_hook_;
  std::function<uint64_t()> release_gate_;

  struct HeldAck {
    uint64_t index;
    Status status;
    internal::InternalResponse resp;
    Done done;
  };
  bool hold_acks_ = false;
  std::mutex held_mu_;
  std::deque<HeldAck> held_;        // guarded by held_mu_, in index order
  uint64_t acked_watermark_ = 0;    // guarded by held_mu_: archived index
  bool held_failed_ = false;        // guarded by held_mu_
  Status held_status_;              // guarded by held_mu_

  std::mutex in_mu_;
  std::condition_variable in_cv_;
  std::deque<Proposal> in_;  // guarded by in_mu_
  bool stopping_ = false;    // guarded by in_mu_

  std::mutex apply_mu_;
  std::condition_variable apply_cv_;
  std::deque<Batch> to_apply_;  // guarded by apply_mu_
  bool writer_done_ = false;    // guarded by apply_mu_

  std::atomic<uint64_t> committed_{0};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> release_before_{0};
  uint64_t last_release_check_ = 0;  // apply thread
  std::thread writer_;
  std::thread applier_thread_;
  bool started_ = false;
};

}  // namespace tidemark::server
