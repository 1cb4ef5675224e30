#pragma once
// storage::Engine: Tidemark's ordered key-value engine (RocksDB underneath).
//
// The engine is the only place that knows about RocksDB; no RocksDB type
// appears in this module's public headers. Data lives in named column
// families ("CFs"): `default`, `kv`, `history`, `meta` always exist; callers
// may ask for more by name (Options::extra_column_families, e.g. "lease").
//
// Durability model (docs/design/mvcc.md, DESIGN.md section 2): RocksDB's own
// WAL is OFF. Tidemark's WAL is the source of truth, and the caller writes
// its applied index in the same WriteBatch as the data. A write is durable
// only once a flush that covers it has completed:
//   * Flush() returned OK  =>  every Write() that returned before the call
//     started is durable (in SST files, all CFs, atomically);
//   * durable_marker() tells the largest WriteBatch::durability_marker() (the
//     applied index, by convention) whose batch is known durable, including
//     flushes RocksDB ran on its own (memtable full). Markers must be
//     non-decreasing across writes.
// Flushes are atomic across CFs (atomic_flush), so after a crash the engine
// always holds a prefix of the write sequence: data and applied index agree.
// A crash loses every write not covered by a completed flush.
//
// Thread safety: all methods are thread-safe. Reads never block writes.
// Lifetime: every Iterator and Snapshot must be destroyed before Close() (or
// the destructor); Close() aborts the process otherwise (RocksDB in Debian is
// built with assertions and would abort less helpfully).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tidemark::storage {

class Iterator;
class Snapshot;
class WriteBatch;

// Names a column family of one Engine. The four built-in CFs have fixed ids;
// extra CFs get theirs from Engine::FindColumnFamily().
struct ColumnFamily {
  uint32_t id = 0;
  friend bool operator==(ColumnFamily a, ColumnFamily b) = default;
};
inline constexpr ColumnFamily kDefaultCf{0};
inline constexpr ColumnFamily kKvCf{1};
inline constexpr ColumnFamily kHistoryCf{2};
inline constexpr ColumnFamily kMetaCf{3};

// An opaque environment (file system) for the engine. Null in Options means
// the real file system. NewInMemoryEnv() is for fast tests: the same Env
// object can be passed to several Open() calls to simulate restarts.
class Env {
 public:
  struct Rep;
  explicit Env(std::unique_ptr<Rep> rep);
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  Env(Env&&) = delete;
  Env& operator=(Env&&) = delete;
  ~Env();
  Rep* rep() const { return rep_.get(); }

 private:
  std::unique_ptr<Rep> rep_;
};
std::shared_ptr<Env> NewInMemoryEnv();

struct Options {
  bool create_if_missing = true;
  // CFs opened (and created if missing) besides default/kv/history/meta.
  std::vector<std::string> extra_column_families;
  // Memtable size per CF before RocksDB flushes on its own.
  uint64_t write_buffer_bytes = 64ull << 20;
  int max_background_jobs = 2;
  std::shared_ptr<Env> env;  // null: real file system
};

struct ReadOptions {
  // Read from this snapshot (must come from the same engine); null = latest.
  const Snapshot* snapshot = nullptr;
  // Iterator bounds: keys outside [lower_bound, upper_bound) are invisible.
  std::optional<std::string> lower_bound;
  std::optional<std::string> upper_bound;
  bool fill_cache = true;
};

class Engine {
 public:
  // Opens (creating if allowed) the database in `dir`. Errors: kIoError,
  // kCorruption, kInvalidArgument (e.g. missing dir and !create_if_missing),
  // each naming the dir.
  static Result<std::unique_ptr<Engine>> Open(const std::string& dir, const Options& options);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  Engine(Engine&&) = delete;
  Engine& operator=(Engine&&) = delete;
  // Closes without flushing if Close() was not called; unflushed writes are
  // then lost exactly as in a crash (our WAL replays them).
  ~Engine();

  // Flushes all CFs and closes. Idempotent; the engine is unusable after.
  Status Close();
  // Test helper: closes WITHOUT flushing, dropping every write not covered by
  // a completed flush (what a power loss does).
  void CloseWithoutFlushForTesting();

  const std::string& dir() const;
  // kNotFound if no CF of that name was opened.
  Result<ColumnFamily> FindColumnFamily(std::string_view name) const;
  const std::string& ColumnFamilyName(ColumnFamily cf) const;

  // Applies `batch` atomically (readers see all of it or none of it). Not
  // durable until a flush covers it (see the file comment). `batch` must have
  // been created for this engine. Errors: kIoError/kCorruption/kInternal;
  // after an error the caller must fail-stop.
  Status Write(const WriteBatch& batch);

  // Point read. nullopt if absent.
  Result<std::optional<std::string>> Get(ColumnFamily cf, std::string_view key,
                                         const Snapshot* snapshot = nullptr) const;

  // A consistent point-in-time view of all CFs. Cheap; release it promptly,
  // it pins memtables and SST files.
  std::shared_ptr<const Snapshot> GetSnapshot() const;

  // An iterator over `cf`. Without options.snapshot it reads an implicit
  // snapshot taken now. Not thread-safe itself (one thread per iterator).
  std::unique_ptr<Iterator> NewIterator(ColumnFamily cf, ReadOptions options = {}) const;

  // Synchronously flushes the memtables of all CFs into SST files, atomically.
  // OK => every write that returned before this call is durable.
  Status Flush();
  // Largest durability marker known durable (0 if none since Open).
  uint64_t durable_marker() const;

  // Approximate on-disk plus in-memory size in bytes (SST files + memtables),
  // the equivalent of etcd's dbSize.
  Result<uint64_t> ApproximateSizeBytes() const;

  // Compacts every CF over its full key range (used by Defragment). Runs in
  // the calling thread; concurrent writers and readers are not blocked.
  Status CompactRange();

  // Writes a consistent, openable copy of the database into `dir`, which
  // must not exist. Flushes memtables first (needed since the WAL is off).
  Status Checkpoint(const std::string& dir);

  // Number of live iterators and snapshots (for tests and Close() checks).
  int64_t live_readers() const;

  struct Rep;  // implementation; defined in storage/engine_rep.h
  Rep* rep() const { return rep_.get(); }

 private:
  explicit Engine(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace tidemark::storage
