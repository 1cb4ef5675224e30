#pragma once
// mvcc::Store: etcd's multi-version key space (revisions, versions, history,
// compaction) on top of storage::Engine. docs/design/mvcc.md explains the
// design; docs/formats/storage.md the bytes.
//
// Revisions: a fresh store is at revision 1 with no keys; each WriteTxn that
// changes something gets exactly one new revision (current + 1).
//
// Threads:
//   * ONE writer thread (apply) calls BeginWrite()/WriteTxn/Compact(); at most
//     one WriteTxn exists at a time.
//   * Any thread may call Range, HashKV, Events and the accessors concurrently
//     with the writer. Readers never block the writer and never see a
//     half-applied revision: a revision becomes visible only after its whole
//     batch is in the engine.
//   * A background thread ("mvcc-compact") physically removes superseded
//     versions after Compact(); it never holds a lock across I/O and writes in
//     batches of at most StoreOptions::compaction_batch_limit deletions.
//
// Durability: every write (Commit, Compact) puts the applied index into the
// same engine batch as the data. Nothing is durable until the engine flushes
// (storage/engine.h); durable_applied_index() tells how far that has got.
//
// Memory: the writer keeps an in-memory index of every live key's newest
// revision (latest_ below, ~72 B per live key plus keys over 15 bytes; built by one kv scan
// at Open), as etcd keeps its key index in memory: a put then finds the
// version it replaces with one point read instead of a seek through every
// storage level.
//
// Ownership: `engine` must outlive the Store. Destroy (or Close()) the Store
// before closing the engine.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "mvcc/types.h"
#include "storage/engine.h"

namespace tidemark::mvcc {

class Compactor;
class WriteTxn;

struct StoreOptions {
  // Maximum deletions per background compaction batch (bounds how long one
  // batch can take; each batch is a separate engine write).
  size_t compaction_batch_limit = 1000;
  // false: Compact() only records the compact revision; physical removal
  // waits until a Store with a running compactor opens (tests).
  bool run_compactor = true;
  // Testing: the compactor halts (as if the process died) after this many
  // batches of a pass. -1 = never.
  int compaction_halt_after_batches_for_testing = -1;
  // Bulk replay only (`tidemark restore`): WriteTxn::Commit does not write the
  // applied index, current revision and key count meta records (the three
  // records every commit rewrites, most of a small write's memtable inserts);
  // FlushDeferredMeta() writes them once. Until then the engine's meta lags
  // its data, so a crash in between leaves a store that must be discarded:
  // use it only for a store that is thrown away on failure (restore builds
  // in <data-dir>.restoring and renames only after FlushDeferredMeta and a
  // flush). In-memory accessors are always current. Open in this mode accepts
  // a store already marked unfinished (restore marks it before loading the
  // base); never reopen an unfinished store to continue it.
  bool defer_meta_writes = false;
};

class Store {
 public:
  // Opens the MVCC state kept in `engine` (initializing a fresh one), and
  // resumes an unfinished physical compaction. Errors: kCorruption for
  // undecodable meta, kFailedPrecondition for an unknown format version,
  // storage errors.
  static Result<std::unique_ptr<Store>> Open(storage::Engine* engine, StoreOptions options = {});

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  Store(Store&&) = delete;
  Store& operator=(Store&&) = delete;
  ~Store();  // stops the compactor (an unfinished pass resumes after reopen)
  void Close();

  // Thread-safe accessors (published values; acquire loads).
  int64_t current_revision() const { return current_rev_.load(std::memory_order_acquire); }
  // -1 if never compacted.
  int64_t compact_revision() const { return compact_rev_.load(); }
  uint64_t applied_index() const { return applied_index_.load(std::memory_order_acquire); }
  // Largest applied index known durable in the engine (see storage::Engine).
  uint64_t durable_applied_index() const;
  // Number of live keys at current_revision() (etcd_debugging_mvcc_keys_total).
  uint64_t key_count() const { return key_count_.load(std::memory_order_acquire); }
  // Compact revision up to which superseded versions have been removed.
  int64_t physically_compacted_revision() const;

  // etcd 3.4 Range at req.revision (<= 0: current). Errors: kErrFutureRev if
  // req.revision > current, kErrCompacted if < compact revision (both
  // kOutOfRange); storage errors. result.revision = current revision.
  Result<RangeResult> Range(const RangeRequest& req) const;

  // Starts the write transaction of the apply thread. Aborts the process if
  // another WriteTxn is alive (single-writer contract).
  std::unique_ptr<WriteTxn> BeginWrite();

  // Records compact revision `rev` together with `applied_index` in one batch,
  // then schedules physical removal. Reads below `rev` fail from the moment
  // this returns. Errors: kErrCompacted if rev <= compact revision,
  // kErrFutureRev if rev > current revision, storage errors. Must be called
  // from the writer thread with no WriteTxn open.
  Status Compact(int64_t rev, uint64_t applied_index);
  // Blocks until physical removal for compact revision `rev` (default: the
  // current compact revision) has finished (etcd's physical=true). OK at once
  // if nothing is pending; kUnavailable if the compactor stopped or halted
  // first; the compactor's storage error if a pass failed.
  Status WaitForCompaction(int64_t rev = 0) const;

  // With StoreOptions::defer_meta_writes: writes the applied index, current
  // revision and key count of the published state in one batch (a no-op
  // write otherwise harmless). Writer thread, no WriteTxn open.
  Status FlushDeferredMeta();

  // Restore only (etcdutl's --bump-revision N --mark-compacted): the current
  // revision jumps by `amount` (> 0) without changing any key, and the new
  // current revision becomes the compaction point, so no revision a client
  // saw before the restore is reused and every older one reads as compacted.
  // Writer thread, no WriteTxn open.
  Status BumpRevisionAndMarkCompacted(int64_t amount);

  // CRC-32C over every MVCC version visible at `rev` that survives
  // compaction: versions with revision in (compact, rev] plus, per key, the
  // newest version <= compact unless it is a tombstone. Deterministic: same
  // writes and compactions => same hash, whether or not physical removal
  // has run. rev <= 0 = current. Errors: kErrCompacted if 0 < rev <= compact
  // revision, kErrFutureRev if rev > current.
  Result<HashKVResult> HashKV(int64_t rev) const;

  // The events of revisions [from_rev, to_rev] in order (to_rev <= 0 or >
  // current: up to current), with prev_kv when it exists and is not
  // compacted. Stops after `max` events (0 = no limit) but never splits a
  // revision. Errors: kErrCompacted if from_rev < compact revision.
  Result<std::vector<Event>> Events(int64_t from_rev, int64_t to_rev, size_t max) const;

  storage::Engine* engine() const { return engine_; }

  // Optional observer of every published (revision, applied index), called
  // on the writer thread right after the state is visible. Must be cheap and
  // must not call into the store. Set before writes start (e.g. the archive's
  // revision-lag tracking, server/archive_glue.cc).
  using PublishObserver = std::function<void(int64_t revision, uint64_t applied_index)>;
  void set_publish_observer(PublishObserver fn) { publish_observer_ = std::move(fn); }

 private:
  friend class WriteTxn;
  Store(storage::Engine* engine, StoreOptions options);
  Status Load();
  // Fills latest_ from the kv CF (newest version of each key, if live).
  Status LoadLatestIndex();
  // After a commit is in the engine: the txn's writes (nullopt = deleted).
  void UpdateLatestIndex(std::string_view key, const std::optional<KeyValue>& kv);
  // Called by WriteTxn after its batch is in the engine.
  void Publish(int64_t revision, uint64_t applied_index, uint64_t key_count);
  void EndWrite() { txn_open_.store(false, std::memory_order_release); }

  storage::Engine* const engine_;
  const StoreOptions options_;
  // Writer-published state. current_rev_ is stored last with release order so
  // a reader that sees revision R also sees R's applied index and key count.
  std::atomic<int64_t> current_rev_{1};
  std::atomic<uint64_t> applied_index_{0};
  std::atomic<uint64_t> key_count_{0};
  // seq_cst: readers take their engine snapshot BEFORE loading it (see
  // docs/design/mvcc.md "reads and compaction").
  std::atomic<int64_t> compact_rev_{-1};
  uint64_t opened_applied_index_ = 0;
  std::atomic<bool> txn_open_{false};
  // Set when a commit failed after partially changing state; every later
  // write returns it (fail-stop: recover by restarting and replaying the WAL).
  Status poisoned_;  // writer thread only
  std::unique_ptr<Compactor> compactor_;
  PublishObserver publish_observer_;

  // Writer thread only. user key -> mod revision of its newest version, for
  // every key whose newest version is live (not a tombstone). Compaction
  // never removes a live key's newest version, so only commits change it.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> latest_;
};

}  // namespace tidemark::mvcc
