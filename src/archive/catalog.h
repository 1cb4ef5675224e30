#pragma once
// Catalog: what one timeline of an archive holds (from ONE List call), plus
// the restore planner and the verifier built on it.
//
// Round trips to plan a restore: List("timelines/") to pick the timeline
// (skipped when given), List("tl-<id>/") for bases and chunks; then only the
// objects actually needed are fetched.
//
// Thread-safety: free functions; the ObjectStore must be thread-safe.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "archive/base_file.h"
#include "archive/format.h"
#include "archive/object_store.h"
#include "base/status.h"
#include "wal/entry.h"

namespace tidemark::archive {

struct ChunkRef {
  std::string name;
  uint64_t first = 0, size = 0;  // the last index is only in the object's header
};
struct BaseRef {
  std::string name;
  uint64_t index = 0;
  int64_t revision = 0;
  int64_t unix_ms = 0;
  uint64_t size = 0;
};
struct TimelineRef {
  uint64_t id = 0;
  int64_t created_ms = 0;
  std::string name;  // the timelines/ record
};

struct Catalog {
  uint64_t timeline = 0;
  std::vector<BaseRef> bases;    // sorted by index
  std::vector<ChunkRef> chunks;  // sorted by first index
  std::vector<std::string> unknown;  // objects under the timeline not parsed
  struct Gap {
    std::string name;
    uint64_t from = 0, to = 0;
  };
  std::vector<Gap> gaps;  // recorded gaps (entries in no chunk), sorted
  struct HashKVRef {
    std::string name;
    uint64_t index = 0;
    int64_t revision = 0;
  };
  std::vector<HashKVRef> hashes;  // recorded HashKV values, sorted by index
  // From the manifest (a lower bound of what was archived when it was
  // written): chunks must exist through this index. 0 if no manifest.
  uint64_t manifest_archived_index = 0;
  std::string manifest_last_chunk;
};

// Manifest JSON, rewritten by the archiver every few seconds and at stop.
struct Manifest {
  uint64_t timeline = 0;
  uint64_t archived_index = 0;
  int64_t archived_revision = 0;  // store revision after archived_index; 0 = unknown
  int64_t archived_commit_unix_nanos = 0;
  std::string last_chunk;
  std::string last_digest;  // hex
  int64_t written_unix_nanos = 0;
};
std::string EncodeManifest(const Manifest& m);
Result<Manifest> DecodeManifest(std::string_view object, std::string_view json);

// HashKV record JSON (tl-<tl>/hashkv/<index>-<revision>.json): the server's
// HashKV (etcd's algorithm, mvcc::Store::HashKV) of its state after entry
// `index`, whose revision is `revision` and compact revision
// `compact_revision` (-1: never compacted). Written with each base snapshot
// (`base` names it) and periodically, only once `index` is archived.
struct HashKVRecord {
  uint64_t timeline = 0;
  uint64_t index = 0;
  int64_t revision = 0;
  int64_t compact_revision = -1;
  uint32_t hash = 0;
  std::string base;  // the base snapshot it describes, or empty (periodic)
  int64_t unix_nanos = 0;
};
std::string EncodeHashKVRecord(const HashKVRecord& r);
Result<HashKVRecord> DecodeHashKVRecord(std::string_view object, std::string_view json);

Result<std::vector<TimelineRef>> ListTimelines(ObjectStore* store);
// The most recently created timeline; kNotFound if the archive is empty.
Result<TimelineRef> NewestTimeline(ObjectStore* store);
Result<Catalog> LoadCatalog(ObjectStore* store, uint64_t timeline);

// Timeline record JSON (written once at timeline creation).
struct TimelineInfo {
  uint64_t id = 0;
  uint64_t parent = 0;        // 0 = none
  uint64_t parent_index = 0;  // restored up to this index of the parent
  int64_t created_unix_ms = 0;
};
std::string EncodeTimelineInfo(const TimelineInfo& t);
// Reads "timeline", "parent" and "parent_index" (the fields the archive's
// timeline records and a data dir's archive.json share); kCorruption naming
// `what` if they do not decode. created_unix_ms is left 0.
Result<TimelineInfo> DecodeTimelineInfo(std::string_view what, std::string_view json);
// The record of `timeline` (timelines/<created>-<tl>.json); kNotFound if none.
Result<TimelineInfo> LoadTimelineInfo(ObjectStore* store, uint64_t timeline);

// ---- restore ----
struct RestoreTarget {
  enum class Kind { kLatest, kRevision, kTime, kIndex } kind = Kind::kLatest;
  int64_t revision = 0;
  int64_t unix_nanos = 0;
  uint64_t index = 0;  // kIndex: the state right after this entry (verify --deep)
  // Non-zero: never replay past this index (set when a restore follows a
  // timeline's parent: the lineage left the parent at that index).
  uint64_t max_index = 0;
};

// What restore writes into: implemented by the server side (storage + the
// same Applier the server uses), so this module stays below mvcc/storage.
class RestoreSink {
 public:
  virtual ~RestoreSink() = default;
  // Loads a base snapshot into the empty store, reading its TMSNAP01 stream
  // from `snapshot` record by record (it is decompressed as it is read, and
  // was checked against the object's SHA-256 before), with memory bounded
  // independently of the snapshot size. Errors from `snapshot` must be
  // returned unchanged. What the sink leaves unread (the padding after the
  // end record) is read and checked by the caller.
  virtual Status LoadBase(const BaseHeader& header, ByteReader* snapshot) = 0;
  // Applies one committed entry (fail on storage errors only).
  virtual Status Apply(const wal::Entry& entry) = 0;
  virtual int64_t current_revision() const = 0;
};

struct RestoreResult {
  uint64_t timeline = 0;
  std::string base;        // object name of the base used
  uint64_t base_index = 0;
  uint64_t last_index = 0;  // last applied entry (== base_index if none)
  int64_t last_commit_unix_nanos = 0;  // commit time of last_index (base time if none)
  uint64_t entries = 0;
  uint64_t chunks = 0;
  uint64_t bytes_fetched = 0;
};

// Progress of a restore, reported after the base is loaded and then after
// every chunk (and at least every 4096 entries).
struct RestoreProgress {
  uint64_t entries = 0;        // replayed so far
  uint64_t entries_total = 0;  // planned: entries from the base to the end of the
                               // archive (an upper bound for --to-revision/--to-time)
  uint64_t chunks = 0;
  uint64_t bytes_fetched = 0;
  bool done = false;
};

// Picks the newest base at or before the target, then replays chunks in
// order, verifying digests, contiguity and the hash chain. Refuses (with an
// error naming the object) on any missing, corrupt, duplicated or reordered
// chunk on the path. `log` gets progress lines; may be empty.
// A target before the timeline's first base (e.g. a time before the restore
// that started it) is restored from its parent timeline, never past the index
// the lineage left the parent at, and so on up the lineage; the result names
// the timeline that was actually read.
// The base is read with bounded memory: in place when the store has a local
// path for it (directory), else downloaded (GetToFile) into a file in
// `spool_dir` (default $TMPDIR or /tmp) that is unlinked as soon as it is
// opened; then checked whole (SHA-256, header) and only then decompressed
// into the sink.
Result<RestoreResult> Restore(ObjectStore* store, uint64_t timeline, const RestoreTarget& target,
                              RestoreSink* sink,
                              const std::function<void(const std::string&)>& log = {},
                              const std::function<void(const RestoreProgress&)>& progress = {},
                              const std::string& spool_dir = {});

// ---- verify ----
struct VerifyReport {
  uint64_t chunks = 0, bases = 0, entries = 0, bytes = 0, hashkv_records = 0;
  std::vector<std::string> problems;  // each names the object(s)
  // Recorded gaps: loud, but expected (restorable again from the base after
  // them); they do not fail verify.
  std::vector<std::string> gaps;
  bool ok() const { return problems.empty(); }
};
// Checks every chunk (digest, header, name vs content, contiguity,
// duplicates/overlaps, chain) and every base (digest). `deep` also
// decompresses every chunk body and base. Bases are read as Restore reads
// them (bounded memory; remote ones downloaded into `spool_dir`).
Result<VerifyReport> Verify(ObjectStore* store, uint64_t timeline, bool deep,
                            const std::string& spool_dir = {});

// An open local file holding object `name`: the object itself when the
// store has a local path for it, else a download into `spool_dir` (default
// $TMPDIR or /tmp) unlinked right after it is opened, so it disappears when
// the descriptor is closed (or the process dies). kNotFound as Get.
class LocalObject {
 public:
  LocalObject() = default;
  explicit LocalObject(int fd) : fd_(fd) {}
  LocalObject(LocalObject&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  LocalObject& operator=(LocalObject&& o) noexcept;
  LocalObject(const LocalObject&) = delete;
  LocalObject& operator=(const LocalObject&) = delete;
  ~LocalObject();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};
// `expected_size` (from the listing; 0 = unknown): a download is refused up
// front with kResourceExhausted, naming the directory, when its file system
// has less free space than that (a restore downloads into the data dir it
// builds, which then has to hold the restored store too).
Result<LocalObject> OpenLocalObject(ObjectStore* store, const std::string& name,
                                    const std::string& spool_dir, uint64_t expected_size = 0);

}  // namespace tidemark::archive
