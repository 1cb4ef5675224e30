#pragma once
// wal::Wal: Tidemark's write-ahead log, the source of truth of the commit
// pipeline (DESIGN.md section 2). A directory of segment files, each
// preallocated and filled with CRC32C-framed entry records; format in
// docs/formats/wal.md, overview in src/wal/README.md.
//
// Threads:
//   * ONE writer thread at a time owns Append, AppendBatch, Flush, Sync and
//     Close (the commit pipeline's wal-writer). They must not race each
//     other.
//   * Any thread, concurrently with the writer and with each other:
//     first_index, last_index, synced_index, health, Segments, ReadFrom,
//     ReleaseBefore, recovery_info, dir.
//   * The destructor must not race anything.
//
// Durability: Append/AppendBatch only buffer (and may hand data to the
// kernel). An entry is durable once a later Sync() returns OK; Sync issues a
// single fdatasync for everything appended so far (the caller does group
// commit). Rotation syncs the full segment before starting the next one, so
// every segment but the last is complete and durable.
//
// Fail-stop: if a write or fdatasync ever fails, the WAL is poisoned: that
// call and every later writer call return the same error, and health()
// reports it. Nothing is retried (after a failed fsync the kernel may have
// dropped the dirty pages); the process must restart and recover.
//
// Recovery (Open): every segment is read and checked. A torn tail in the last
// segment is cut off (reported in recovery_info() and via options.log); any
// other damage, or an index gap, fails Open with kCorruption naming the file
// and byte offset. The server then refuses to start; repairing is a
// deliberate offline act.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "fs/file_system.h"
#include "wal/entry.h"
#include "wal/segment_writer.h"

namespace tidemark::wal {

struct WalOptions {
  // Target segment size: new segments are preallocated to it, and the writer
  // moves to a new segment once the current one holds at least this many
  // bytes (the entry that crosses the size stays whole, so a segment can end
  // up larger by up to one entry).
  uint64_t segment_size = 64u << 20;
  // Index of the first entry when the directory holds no segment yet
  // (e.g. restored applied index + 1). Ignored otherwise. Must be >= 1.
  uint64_t initial_index = 1;
  // Append hands buffered records to the kernel once this many bytes are
  // buffered (no fdatasync), bounding the writer's memory between Syncs.
  size_t flush_threshold = 1u << 20;
  // Hold an flock on "<dir>/LOCK" while open, so two processes cannot write
  // the same WAL.
  bool lock_dir = true;
  // Informational messages (torn tail truncated, temp files removed). May be
  // empty. Called from the calling thread, never with internal locks held.
  std::function<void(const std::string&)> log;
};

// What Open found and repaired.
struct RecoveryInfo {
  size_t segment_count = 0;
  uint64_t first_index = 0;  // of the first retained segment
  uint64_t last_index = 0;   // last recovered entry (first_index - 1 if none)
  // The last segment's tail was cut at tail_offset of tail_file, because of
  // tail_reason; `discarded_bytes` non-zero bytes were dropped.
  bool tail_truncated = false;
  std::string tail_file;
  uint64_t tail_offset = 0;
  std::string tail_reason;
  uint64_t discarded_bytes = 0;
  std::vector<std::string> removed_temp_files;
};

// One segment, for the archiver and for `tidemark wal` tooling.
struct SegmentInfo {
  std::string path;
  uint64_t sequence = 0;
  uint64_t first_index = 0;
  // Last entry in the segment: for the active segment, the last appended
  // entry (possibly not yet durable). first_index - 1 if empty.
  uint64_t last_index = 0;
  // Sealed segments are complete, durable and never written again.
  bool sealed = false;
};

class Wal {
 public:
  // Opens (creating if needed) the WAL in `dir` and recovers it (see the file
  // comment). `fs` must outlive the Wal.
  // Errors: kInvalidArgument (options), kUnavailable (LOCK held elsewhere),
  // kCorruption (damage outside the torn tail; index gaps), kFailedPrecondition
  // (segment of a newer format version), file-system errors.
  static Result<std::unique_ptr<Wal>> Open(fs::FileSystem* fs, std::string dir,
                                           WalOptions options = {});

  // Releases files without syncing: entries not yet covered by a successful
  // Sync() may be lost, exactly as in a crash. Call Close() to sync.
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;
  Wal(Wal&&) = delete;
  Wal& operator=(Wal&&) = delete;

  // Buffers `entry`. Its index must be last_index() + 1 and its payload at
  // most kMaxEntryPayload bytes, else kInvalidArgument (nothing is written).
  // May rotate to a new segment (which syncs the old one) and may hand
  // buffered data to the kernel. Not durable until Sync(). Writer thread.
  Status Append(const Entry& entry);

  // Appends `entries` in order; all are validated before any is buffered.
  Status AppendBatch(std::span<const Entry> entries);

  // Hands buffered records to the kernel without fdatasync (survives a
  // process crash, not a power loss). Writer thread.
  Status Flush();

  // Makes every appended entry durable with one fdatasync (no-op if nothing
  // new). On failure the WAL is poisoned. Writer thread.
  Status Sync();

  // Sync, then close the active segment. Later writer calls fail with
  // kFailedPrecondition. Writer thread.
  Status Close();

  // Calls `fn` for each durable entry with index >= `first_index`, in order,
  // up to synced_index() as of the call; stops at and returns the first
  // non-OK status from `fn`. Sees only synced entries, so it is safe next to
  // the writer. Errors: kOutOfRange if `first_index` < this->first_index()
  // (released), kCorruption if a segment changed under it, I/O errors.
  // first_index > synced_index() yields no calls and OK.
  Status ReadFrom(uint64_t first_index, const std::function<Status(const Entry&)>& fn) const;

  // Removes whole segments whose entries are all < `index` (never the
  // active one), oldest first, syncing the directory after each removal so a
  // crash can never leave a gap. The caller guarantees storage has flushed
  // (and the archiver shipped) everything below `index`.
  Status ReleaseBefore(uint64_t index);

  // Index of the oldest retained entry (== last_index() + 1 when empty).
  uint64_t first_index() const { return first_index_.load(std::memory_order_acquire); }
  // Index of the last appended entry (may not be durable yet).
  uint64_t last_index() const { return last_index_.load(std::memory_order_acquire); }
  // Index of the last durable entry.
  uint64_t synced_index() const { return synced_index_.load(std::memory_order_acquire); }

  // OK, or the error that poisoned the WAL.
  Status health() const;

  // Snapshot of the retained segments, oldest first; the last is active.
  std::vector<SegmentInfo> Segments() const;

  const RecoveryInfo& recovery_info() const { return recovery_; }
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    std::string path;
    uint64_t sequence = 0;
    uint64_t first_index = 0;
    uint64_t last_index = 0;   // valid once sealed
    uint64_t durable_end = 0;  // byte offset up to which data is durable
    bool sealed = false;
  };

  Wal(fs::FileSystem* fs, std::string dir, WalOptions options);

  Status Recover();
  Status CheckWritable() const;
  Status Poison(const Status& cause);
  Status AppendOne(const Entry& entry);
  Status Rotate();
  void Log(const std::string& message) const;

  fs::FileSystem* const fs_;
  const std::string dir_;
  const WalOptions options_;
  std::unique_ptr<fs::FileLock> lock_;
  RecoveryInfo recovery_;  // immutable after Open

  // Writer-thread state.
  std::unique_ptr<SegmentWriter> active_;
  uint64_t active_durable_end_ = 0;  // active_->size() at its last successful sync
  bool closed_ = false;
  // Written only by the writer thread, under mu_; the writer reads it without
  // the lock, other threads with it.
  Status poisoned_;

  std::mutex release_mu_;  // serializes ReleaseBefore; acquired before mu_
  mutable std::mutex mu_;
  std::deque<Segment> segments_;  // guarded by mu_; back() is the active segment

  std::atomic<uint64_t> first_index_{1};
  std::atomic<uint64_t> last_index_{0};
  std::atomic<uint64_t> synced_index_{0};
};

}  // namespace tidemark::wal
