#include "storage/engine.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>

#include "base/check.h"
#include "storage/engine_rep.h"
#include "storage/iterator.h"
#include "storage/rocks_status.h"
#include "storage/write_batch.h"

namespace tidemark::storage {

namespace {

// Order fixes the ids of kDefaultCf, kKvCf, kHistoryCf, kMetaCf.
constexpr const char* kBuiltinCfs[] = {"default", "kv", "history", "meta"};

}  // namespace

// ---- Env -------------------------------------------------------------------

Env::Env(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Env::~Env() = default;

std::shared_ptr<Env> NewInMemoryEnv() {
  auto rep = std::make_unique<Env::Rep>();
  rep->env.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  return std::make_shared<Env>(std::move(rep));
}

// ---- MarkerTracker ---------------------------------------------------------

void MarkerTracker::OnWrite(uint64_t seq, uint64_t marker) {
  std::lock_guard lock(mu_);
  if (marker <= last_written_) {
    return;  // markers are non-decreasing; nothing new
  }
  last_written_ = marker;
  pending_.emplace_back(seq, marker);
}

void MarkerTracker::OnFlushed(uint64_t seq) {
  std::lock_guard lock(mu_);
  uint64_t best = durable_.load(std::memory_order_relaxed);
  while (!pending_.empty() && pending_.front().first <= seq) {
    best = std::max(best, pending_.front().second);
    pending_.pop_front();
  }
  durable_.store(best, std::memory_order_release);
}

void MarkerTracker::OnAllFlushed(uint64_t marker_before_flush) {
  std::lock_guard lock(mu_);
  uint64_t best = std::max(durable_.load(std::memory_order_relaxed), marker_before_flush);
  while (!pending_.empty() && pending_.front().second <= best) {
    pending_.pop_front();
  }
  durable_.store(best, std::memory_order_release);
}

uint64_t MarkerTracker::last_written() const {
  std::lock_guard lock(mu_);
  return last_written_;
}

// Learns about flushes RocksDB runs on its own (memtable full, CompactRange).
// With atomic_flush the results of all CFs are installed together before any
// OnFlushCompleted fires, so once one CF reports largest_seqno L every write
// with sequence number <= L is in SST files, in every CF.
class FlushListener : public rocksdb::EventListener {
 public:
  explicit FlushListener(std::shared_ptr<MarkerTracker> markers) : markers_(std::move(markers)) {}
  void OnFlushCompleted(rocksdb::DB* /*db*/, const rocksdb::FlushJobInfo& info) override {
    markers_->OnFlushed(info.largest_seqno);
  }

 private:
  std::shared_ptr<MarkerTracker> markers_;
};

// ---- Engine ----------------------------------------------------------------

rocksdb::ColumnFamilyHandle* Engine::Rep::handle(ColumnFamily cf) const {
  TM_CHECK(cf.id < handles.size());
  return handles[cf.id];
}

Engine::Engine(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

Engine::~Engine() {
  // Crash semantics: no flush here (the destructor performs no fallible I/O).
  CloseWithoutFlushForTesting();
}

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& dir, const Options& options) {
  auto rep = std::make_unique<Rep>();
  rep->dir = dir;
  rep->options = options;

  rocksdb::Options db_opts;
  db_opts.create_if_missing = options.create_if_missing;
  db_opts.create_missing_column_families = true;
  // Our WAL is the source of truth; a flush must persist every CF at the same
  // point in the write sequence so that data and applied index agree.
  db_opts.atomic_flush = true;
  // Close() flushes explicitly (and reports errors); the destructor must not.
  db_opts.avoid_flush_during_shutdown = true;
  db_opts.max_background_jobs = options.max_background_jobs;
  db_opts.write_buffer_size = options.write_buffer_bytes;
  db_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_opts.keep_log_file_num = 4;
  if (options.env) {
    db_opts.env = options.env->rep()->env.get();
  }
  rep->listener = std::make_shared<FlushListener>(rep->markers);
  db_opts.listeners.push_back(rep->listener);

  rocksdb::ColumnFamilyOptions cf_opts(db_opts);

  // Wanted CFs: built-ins, requested extras, then whatever else exists on disk
  // (RocksDB requires opening every existing CF).
  std::vector<std::string> names(std::begin(kBuiltinCfs), std::end(kBuiltinCfs));
  for (const auto& extra : options.extra_column_families) {
    if (std::find(names.begin(), names.end(), extra) == names.end()) {
      names.push_back(extra);
    }
  }
  std::vector<std::string> existing;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_opts, dir, &existing);
  if (ls.ok()) {
    for (const auto& name : existing) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(name);
      }
    }
  }  // else: a new database; ListColumnFamilies fails when there is none yet.

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(names.size());
  for (const auto& name : names) {
    descriptors.emplace_back(name, cf_opts);
  }

  rocksdb::DB* raw_db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_opts, dir, descriptors, &handles, &raw_db);
  if (!s.ok()) {
    return FromRocks(s, "open", "", dir);
  }
  rep->db.reset(raw_db);
  rep->handles = std::move(handles);
  rep->names = std::move(names);
  return std::unique_ptr<Engine>(new Engine(std::move(rep)));
}

Status Engine::Close() {
  std::lock_guard lock(rep_->close_mu);
  if (rep_->closed) {
    return Status::Ok();
  }
  TM_CHECK(rep_->live_readers.load() == 0 && "release iterators and snapshots before Close()");
  Status flushed = Flush();
  for (auto* h : rep_->handles) {
    rocksdb::Status ds = rep_->db->DestroyColumnFamilyHandle(h);
    ds.PermitUncheckedError();  // cannot fail for handles we own
  }
  rep_->handles.clear();
  rocksdb::Status cs = rep_->db->Close();
  rep_->db.reset();
  rep_->closed = true;
  TM_RETURN_IF_ERROR(flushed);
  return FromRocks(cs, "close", "", rep_->dir);
}

void Engine::CloseWithoutFlushForTesting() {
  std::lock_guard lock(rep_->close_mu);
  if (rep_->closed) {
    return;
  }
  if (rep_->live_readers.load() != 0) {
    std::fprintf(stderr, "FATAL storage: engine %s closed with %lld live iterators/snapshots\n",
                 rep_->dir.c_str(), static_cast<long long>(rep_->live_readers.load()));
    std::abort();
  }
  for (auto* h : rep_->handles) {
    rocksdb::Status ds = rep_->db->DestroyColumnFamilyHandle(h);
    ds.PermitUncheckedError();  // cannot fail for handles we own
  }
  rep_->handles.clear();
  // avoid_flush_during_shutdown is set, so unflushed memtables are dropped.
  rocksdb::Status cs = rep_->db->Close();
  cs.PermitUncheckedError();  // crash semantics: nothing to report to
  rep_->db.reset();
  rep_->closed = true;
}

const std::string& Engine::dir() const {
  return rep_->dir;
}

Result<ColumnFamily> Engine::FindColumnFamily(std::string_view name) const {
  for (uint32_t i = 0; i < rep_->names.size(); ++i) {
    if (rep_->names[i] == name) {
      return ColumnFamily{i};
    }
  }
  return NotFoundError(fmt::format("storage: no column family named '{}' in {}", name, rep_->dir));
}

const std::string& Engine::ColumnFamilyName(ColumnFamily cf) const {
  TM_CHECK(cf.id < rep_->names.size());
  return rep_->names[cf.id];
}

Status Engine::Write(const WriteBatch& batch) {
  TM_CHECK(batch.engine() == this);
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  rocksdb::Status s = rep_->db->Write(wo, &batch.rep()->batch);
  if (!s.ok()) {
    return FromRocks(s, "write batch", "", rep_->dir);
  }
  if (batch.durability_marker() != 0) {
    // The latest sequence number is >= this batch's last one; using it can
    // only make the marker wait for a later flush, never an earlier one.
    rep_->markers->OnWrite(rep_->db->GetLatestSequenceNumber(), batch.durability_marker());
  }
  return Status::Ok();
}

Result<std::optional<std::string>> Engine::Get(ColumnFamily cf, std::string_view key,
                                               const Snapshot* snapshot) const {
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) {
    ro.snapshot = snapshot->rep()->snapshot;
  }
  std::string value;
  rocksdb::Status s =
      rep_->db->Get(ro, rep_->handle(cf), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) {
    return std::optional<std::string>();
  }
  if (!s.ok()) {
    return FromRocks(s, "get", ColumnFamilyName(cf), rep_->dir);
  }
  return std::optional<std::string>(std::move(value));
}

std::shared_ptr<const Snapshot> Engine::GetSnapshot() const {
  auto rep = std::make_unique<Snapshot::Rep>();
  rep->db = rep_->db.get();
  rep->snapshot = rep_->db->GetSnapshot();
  rep->live_readers = &rep_->live_readers;
  rep_->live_readers.fetch_add(1);
  return std::make_shared<const Snapshot>(std::move(rep));
}

std::unique_ptr<Iterator> Engine::NewIterator(ColumnFamily cf, ReadOptions options) const {
  auto rep = std::make_unique<Iterator::Rep>();
  rocksdb::ReadOptions ro;
  ro.fill_cache = options.fill_cache;
  if (options.snapshot != nullptr) {
    ro.snapshot = options.snapshot->rep()->snapshot;
  }
  if (options.lower_bound) {
    rep->lower = std::move(*options.lower_bound);
    rep->lower_slice = rocksdb::Slice(rep->lower);
    ro.iterate_lower_bound = &rep->lower_slice;
  }
  if (options.upper_bound) {
    rep->upper = std::move(*options.upper_bound);
    rep->upper_slice = rocksdb::Slice(rep->upper);
    ro.iterate_upper_bound = &rep->upper_slice;
  }
  rep->it.reset(rep_->db->NewIterator(ro, rep_->handle(cf)));
  rep->live_readers = &rep_->live_readers;
  rep->cf_name = ColumnFamilyName(cf);
  rep->dir = rep_->dir;
  rep_->live_readers.fetch_add(1);
  return std::make_unique<Iterator>(std::move(rep));
}

Status Engine::Flush() {
  uint64_t marker = rep_->markers->last_written();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  std::vector<rocksdb::ColumnFamilyHandle*> all(rep_->handles.begin(), rep_->handles.end());
  rocksdb::Status s = rep_->db->Flush(fo, all);
  if (!s.ok()) {
    return FromRocks(s, "flush", "", rep_->dir);
  }
  rep_->markers->OnAllFlushed(marker);
  return Status::Ok();
}

uint64_t Engine::durable_marker() const {
  return rep_->markers->durable();
}

Result<uint64_t> Engine::ApproximateSizeBytes() const {
  uint64_t sst = 0;
  uint64_t mem = 0;
  if (!rep_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst) ||
      !rep_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &mem)) {
    return InternalError(fmt::format("storage: size properties unavailable (dir {})", rep_->dir));
  }
  return sst + mem;
}

Status Engine::CompactRange() {
  rocksdb::CompactRangeOptions co;
  co.exclusive_manual_compaction = false;  // let automatic compactions continue
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (uint32_t i = 0; i < rep_->handles.size(); ++i) {
    rocksdb::Status s = rep_->db->CompactRange(co, rep_->handles[i], nullptr, nullptr);
    if (!s.ok()) {
      return FromRocks(s, "compact range", rep_->names[i], rep_->dir);
    }
  }
  return Status::Ok();
}

Status Engine::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(rep_->db.get(), &raw);
  if (!s.ok()) {
    return FromRocks(s, "checkpoint create", "", rep_->dir);
  }
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  // log_size_for_flush = 0: always flush first. With the WAL off, unflushed
  // data would otherwise be missing from the checkpoint.
  s = cp->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  if (!s.ok()) {
    return FromRocks(s, fmt::format("checkpoint to {}", dir), "", rep_->dir);
  }
  return Status::Ok();
}

int64_t Engine::live_readers() const {
  return rep_->live_readers.load();
}

}  // namespace tidemark::storage
