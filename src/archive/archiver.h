#pragma once
// Archiver: ships committed WAL entries to an ObjectStore as hash-chained
// chunks, takes base snapshots, and tells the commit pipeline how far the
// archive has got (docs/design/archive.md).
//
// Data flow: the pipeline's wal-writer calls OnCommitted() with every
// durable batch (copied into a bounded in-memory queue); the "archiver"
// thread cuts a chunk when --archive-interval has passed since the oldest
// unshipped commit, or the queue holds max_chunk_bytes, or (sync mode) at
// once, and Puts it create-only. When the queue overflowed or after a
// restart, entries are read back from the WAL (Wal::ReadFrom) instead — the
// WAL keeps them because the pipeline releases a segment only once it is
// below archived_index() (the release gate).
//
// Failure policy: a failed Put is retried with exponential backoff (100 ms ..
// 30 s); after 3 consecutive failures the breaker is "open" (logged once,
// visible in stats). Nothing is ever dropped: unshipped entries stay in the
// local WAL; the server refuses writes once spool_bytes() exceeds its
// --archive-spool-limit. If the target already holds a chunk with the same
// name but other bytes, another writer uses this timeline: archiving stops
// for good (fenced(), logged as an error) and never overwrites.
//
// Bases are streamed with bounded memory: BaseSource::WriteBase -> zstd ->
// a spool file (options.spool_dir) -> ObjectStore::PutFile -> removed.
//
// Threads: OnCommitted from the single wal-writer thread; stats(),
// archived_index(), spool_bytes(), Flush() from any thread; Start/Stop by
// the owner. The on_archived callback runs on the archiver thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "archive/base_file.h"
#include "archive/catalog.h"
#include "archive/format.h"
#include "archive/object_store.h"
#include "base/clock.h"
#include "base/status.h"
#include "wal/wal.h"

namespace tidemark::archive {

// The server's HashKV (etcd's algorithm) of its state right after entry
// `index`, at `revision`, with compact revision `compact_revision`.
struct HashKVPoint {
  uint64_t index = 0;
  int64_t revision = 0;
  int64_t compact_revision = -1;
  uint32_t hash = 0;
};

// Receives the TMSNAP01 stream of a base snapshot piece by piece, in order.
// An error aborts the snapshot (e.g. the spool disk is full).
using SnapshotSink = std::function<Status(std::string_view piece)>;

// What a base snapshot written by BaseSource::WriteBase describes.
struct BaseSnapshot {
  uint64_t index = 0;     // store applied index the snapshot reflects
  int64_t revision = 0;   // store revision at that index
  // HashKV of exactly this snapshot's state, when the server could compute
  // it consistently (recorded next to the base as a HashKV record).
  std::optional<HashKVPoint> hash_kv;
};
// What the server provides to the archiver (src/server/archive_glue.cc), so
// that this module never links mvcc/storage/server.
class BaseSource {
 public:
  virtual ~BaseSource() = default;
  // Writes one consistent logical snapshot of the store (a TMSNAP01 file,
  // docs/formats/snapshot.md) into `out`, in pieces, holding only a bounded
  // part of it in memory at any time (a piece of ~1 MiB, or one record if
  // larger), whatever the store size; returns what it describes. Errors
  // from `out` are returned unchanged. Archiver thread; must not block the
  // commit path for long (it reads a storage snapshot).
  virtual Result<BaseSnapshot> WriteBase(const SnapshotSink& out) = 0;
  // HashKV of the current state (a full scan: archiver thread, rarely).
  // nullopt when it cannot be taken consistently right now (retry later).
  virtual Result<std::optional<HashKVPoint>> CurrentHashKV() {
    return std::optional<HashKVPoint>();
  }
  // Store revision right after entry `index`, if known exactly; 0 otherwise.
  virtual int64_t RevisionAtIndex(uint64_t index) {
    (void)index;
    return 0;
  }
  // An upper estimate of a base's size in bytes (the store's size on disk),
  // 0 if unknown. Before building a base the archiver checks that the spool
  // dir's file system has this much free besides `min_free_bytes`.
  virtual uint64_t EstimateBaseBytes() { return 0; }
};

struct ArchiverOptions {
  uint64_t timeline = 0;       // required, non-zero
  uint64_t parent_timeline = 0;
  uint64_t parent_index = 0;
  int64_t interval_nanos = 1'000'000'000;        // --archive-interval
  uint64_t max_chunk_bytes = 8u << 20;           // cut sooner at this raw size
  // Under load, cut as soon as this much is queued instead of waiting for the
  // interval: bounds the archive lag of a busy server while keeping objects
  // large (at most one request per MiB written; an idle-ish server still
  // ships once per interval).
  uint64_t busy_chunk_bytes = 1u << 20;
  int64_t heartbeat_nanos = 300'000'000'000;     // idle heartbeat object
  int64_t manifest_nanos = 5'000'000'000;        // manifest rewrite period (when busy)
  int64_t base_interval_nanos = 3600'000'000'000;  // periodic base snapshots
  uint64_t base_every_entries = 1'000'000;
  // HashKV records besides the ones with each base; 0 = only with bases.
  int64_t hashkv_interval_nanos = 600'000'000'000;
  // Where base objects are built before upload (<data-dir>/archive-spool):
  // one file of about the compressed store size while a base ships, removed
  // after. The archiver owns it: Start() creates it and removes leftover
  // "*.spool" files. Empty: $TMPDIR (or /tmp), nothing removed at Start.
  std::string spool_dir;
  bool sync = false;                             // --archive-sync: ship immediately
  // Without --archive-sync the archiver is background work (the lag target
  // is a second, its CPU ~1.3 us per put): its thread runs at this nice value
  // so that on a saturated machine it yields to the request path, as
  // RocksDB's compaction threads do. 0 = unchanged. Ignored in sync mode,
  // where every ack waits for the archiver.
  int background_nice = 5;
  // A base is built only while the spool dir's file system keeps at least
  // this much free after it (EstimateBaseBytes): the spool file must never
  // fill the disk the WAL is on (a failed WAL write stops the server). The
  // base is then retried with backoff; archiving waits (spool policy).
  uint64_t min_free_bytes = 64u << 20;
  uint64_t memory_queue_bytes = 64u << 20;
  int zstd_level = 3;
};

struct ArchiverStats {
  uint64_t timeline = 0;
  uint64_t committed_index = 0;
  uint64_t archived_index = 0;
  int64_t lag_seconds_x1000 = 0;  // age of the oldest unshipped commit, ms
  uint64_t spool_bytes = 0;
  int64_t last_success_unix_nanos = 0;
  uint64_t last_base_index = 0;
  std::string last_base;
  // Restorable window of this timeline: its oldest base (revision -1 and
  // time 0 until one exists) and the commit time of the newest archived entry.
  int64_t oldest_base_revision = -1;
  int64_t oldest_base_unix_nanos = 0;
  int64_t archived_commit_unix_nanos = 0;
  uint64_t chunks_shipped = 0;
  uint64_t bytes_shipped = 0;
  uint64_t requests_ok = 0;
  uint64_t requests_failed = 0;
  uint64_t gaps = 0;
  uint64_t hashkv_records = 0;
  bool breaker_open = false;
  std::string fenced;  // non-empty: archiving stopped, why
};

class Archiver {
 public:
  // `store`, `wal`, `base`, `clock` must outlive the Archiver.
  Archiver(ObjectStore* store, const wal::Wal* wal, BaseSource* base, Clock* clock,
           ArchiverOptions options);
  ~Archiver();
  Archiver(const Archiver&) = delete;
  Archiver& operator=(const Archiver&) = delete;

  // Called with the index the pipeline will commit next - 1 (nothing is
  // archived past it yet). Starts the thread (which resumes from the
  // archive's state, creating the timeline / first base as needed).
  void Start();
  // Stops the thread without flushing (Flush first for a clean shutdown).
  void Stop();

  // wal-writer thread, after the batch is durable.
  void OnCommitted(const std::vector<wal::Entry>& entries);

  // Ships everything committed so far; waits up to `timeout_nanos`. Errors:
  // kUnavailable naming the unshipped index range (target down / timeout),
  // kFailedPrecondition when fenced.
  Status Flush(int64_t timeout_nanos);

  // Everything <= archived_index() is durable in the archive (0 until the
  // archiver has resumed).
  uint64_t archived_index() const { return archived_.load(std::memory_order_acquire); }
  // Highest index the WAL may release below (+1): == archived_index(), but
  // held at 0 until resumed so nothing unshipped is ever released.
  uint64_t release_limit() const { return archived_index(); }
  uint64_t spool_bytes() const { return spool_bytes_.load(std::memory_order_relaxed); }
  ArchiverStats stats() const;
  bool resumed() const { return resumed_.load(); }

  // Called (archiver thread) after each chunk is durable, with its last index.
  void set_on_archived(std::function<void(uint64_t)> fn) { on_archived_ = std::move(fn); }
  // Called once (archiver thread) when archiving stops for good (fenced),
  // with the reason. Set before Start().
  void set_on_fenced(std::function<void(const std::string&)> fn) { on_fenced_ = std::move(fn); }

 private:
  struct Pending {  // one committed batch not yet archived
    uint64_t last_index;
    int64_t commit_nanos;
    uint64_t bytes;
  };

  void Loop();
  Status Resume();
  Status ShipBase();
  // Builds the complete base object in the file `path` (bounded memory);
  // *snap gets what the source said it describes. The caller removes `path`,
  // whatever the outcome.
  Result<BaseFileInfo> BuildBase(const std::string& path, BaseSnapshot* snap);
  // A fresh spool file name (options_.spool_dir, or $TMPDIR).
  std::string SpoolPath();
  // kResourceExhausted (naming the dir and the numbers) when building a base
  // in `dir` could leave less than options_.min_free_bytes free.
  Status CheckSpoolRoom(const std::string& dir);
  Status ShipChunk(uint64_t upto);
  // Puts one encoded chunk (create-only) and advances; keeps it in unacked_
  // for an exact retry when the Put fails.
  Status PutEncodedChunk(std::string name, EncodedChunk c);
  Status CollectEntries(uint64_t from, uint64_t upto, std::vector<wal::Entry>* out);
  Status PutChunk(const std::string& name, const std::string& bytes);
  Status WriteManifest();
  Status PutHashKVRecord(const HashKVPoint& p, const std::string& base);
  void MaybeRecordHashKV(int64_t now);
  void Advance(uint64_t last_index, int64_t last_nanos, const std::optional<Digest>& digest,
               const std::string& name, uint64_t bytes);
  void Failure(const Status& s);
  void Success();
  int64_t BackoffNanos() const;
  int64_t ShipAgeNanos() const;  // mu_ held
  void SleepInterruptible(int64_t nanos);

  ObjectStore* const store_;
  const wal::Wal* const wal_;
  BaseSource* const base_;
  Clock* const clock_;
  const ArchiverOptions options_;
  std::function<void(uint64_t)> on_archived_;
  std::function<void(const std::string&)> on_fenced_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // wakes the archiver thread
  std::condition_variable flushed_cv_;  // wakes Flush waiters
  std::deque<wal::Entry> queue_;      // guarded by mu_; contiguous, in memory
  uint64_t queue_bytes_ = 0;          // guarded by mu_
  bool queue_broken_ = false;         // guarded by mu_: dropped entries; read back from WAL
  std::deque<Pending> pending_;       // guarded by mu_
  uint64_t committed_ = 0;            // guarded by mu_
  bool stop_ = false;                 // guarded by mu_
  int flush_waiters_ = 0;             // guarded by mu_
  ArchiverStats stats_;               // guarded by mu_
  int failures_snapshot_ = 0;         // guarded by mu_
  std::string last_error_;            // guarded by mu_
  uint64_t manifest_index_ = 0;       // guarded by mu_: archived index in the last manifest
  bool manifest_dirty_ = false;       // guarded by mu_
  int64_t archived_commit_nanos_ = 0; // guarded by mu_
  int64_t put_ewma_nanos_ = 0;        // guarded by mu_: typical chunk Put latency

  // Archiver-thread state.
  std::optional<Digest> prev_digest_;
  std::string last_chunk_;
  // The last chunk whose Put failed. A failed Put may still have been
  // stored (the reply was lost: connection reset, timeout), so it is retried
  // with exactly these bytes; a chunk re-cut from a longer queue would have
  // other bytes under the same name, which PutChunk must read as a second
  // writer. Dropped once archived_ moves past its start (a base). Archiver
  // thread only.
  struct UnackedChunk {
    std::string name;
    EncodedChunk chunk;
  };
  std::optional<UnackedChunk> unacked_;
  int64_t last_manifest_nanos_ = 0;
  int64_t last_request_nanos_ = 0;
  int64_t last_base_nanos_ = 0;
  uint64_t last_base_index_ = 0;
  bool need_base_ = false;
  int failures_ = 0;
  int64_t last_hash_nanos_ = 0;
  std::optional<HashKVPoint> pending_hash_;  // taken, written once archived
  std::string pending_hash_base_;
  uint64_t spool_seq_ = 0;

  std::atomic<uint64_t> archived_{0};
  std::atomic<uint64_t> spool_bytes_{0};
  std::atomic<bool> resumed_{false};
  std::thread thread_;
};

}  // namespace tidemark::archive
