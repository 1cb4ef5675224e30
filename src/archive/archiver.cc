#include "archive/archiver.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace tidemark::archive {
namespace {

constexpr size_t kEntryOverhead = 28;
constexpr int kBreakerThreshold = 3;

uint64_t EntryBytes(const wal::Entry& e) { return kEntryOverhead + e.payload.size(); }

// Sentinel used to stop Wal::ReadFrom early.
Status Enough() { return Status(Code::kOutOfRange, "archive: chunk full"); }

}  // namespace

Archiver::Archiver(ObjectStore* store, const wal::Wal* wal, BaseSource* base, Clock* clock,
                   ArchiverOptions options)
    : store_(store), wal_(wal), base_(base), clock_(clock), options_(options) {
  stats_.timeline = options_.timeline;
}

Archiver::~Archiver() { Stop(); }

void Archiver::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    committed_ = wal_->synced_index();
  }
  if (!options_.spool_dir.empty()) {
    // Leftovers of a process that died while building a base.
    if (Status s = ResetSpoolDir(options_.spool_dir); !s.ok()) {
      log::Warn("archive: cannot clean the base spool dir", {{"error", s.ToString()}});
    }
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "archiver");
    if (!options_.sync && options_.background_nice != 0) {
      // Linux: a thread's nice value is per thread (PRIO_PROCESS with a tid).
      if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.background_nice) != 0) {
        log::Warn("archive: cannot lower the archiver thread's priority",
                  {{"nice", static_cast<int64_t>(options_.background_nice)},
                   {"error", std::string(std::strerror(errno))}});
      }
    }
    Loop();
  });
}

void Archiver::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flushed_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Archiver::OnCommitted(const std::vector<wal::Entry>& entries) {
  if (entries.empty()) return;
  uint64_t bytes = 0;
  for (const auto& e : entries) bytes += EntryBytes(e);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries.back().index <= committed_) return;
    if (!queue_broken_ && (queue_.empty() || queue_.back().index + 1 == entries.front().index)) {
      if (queue_bytes_ + bytes > options_.memory_queue_bytes) {
        queue_.clear();
        queue_bytes_ = 0;
        queue_broken_ = true;  // read back from the WAL until caught up
      } else {
        for (const auto& e : entries) queue_.push_back(e);
        queue_bytes_ += bytes;
      }
    }
    committed_ = entries.back().index;
    pending_.push_back({committed_, entries.front().unix_nanos, bytes});
    spool_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    stats_.committed_index = committed_;
    wake = options_.sync || queue_bytes_ >= options_.max_chunk_bytes || pending_.size() == 1 ||
           (queue_bytes_ >= options_.busy_chunk_bytes &&
            queue_bytes_ - bytes < options_.busy_chunk_bytes);
  }
  if (wake) cv_.notify_one();
}

Status Archiver::Flush(int64_t timeout_nanos) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_nanos);
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = committed_;
  ++flush_waiters_;
  cv_.notify_all();
  flushed_cv_.wait_until(lock, deadline, [&] {
    return stop_ || !stats_.fenced.empty() ||
           (archived_.load() >= target && manifest_index_ >= target);
  });
  --flush_waiters_;
  const uint64_t archived = archived_.load();
  if (!stats_.fenced.empty() && archived < target) {
    return FailedPreconditionError("archive: not shipped: entries " +
                                   std::to_string(archived + 1) + ".." + std::to_string(target) +
                                   " (archiving stopped: " + stats_.fenced + ")");
  }
  if (archived < target) {
    return UnavailableError("archive: not shipped within the deadline: entries " +
                            std::to_string(archived + 1) + ".." + std::to_string(target) +
                            " (they remain in the local WAL; last error: " + last_error_ + ")");
  }
  return Status::Ok();
}

ArchiverStats Archiver::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ArchiverStats s = stats_;
  s.archived_index = archived_.load();
  s.archived_commit_unix_nanos = archived_commit_nanos_;
  s.committed_index = committed_;
  s.spool_bytes = spool_bytes_.load();
  if (!pending_.empty()) {
    s.lag_seconds_x1000 = std::max<int64_t>(0, (clock_->NowNanos() - pending_.front().commit_nanos) / 1000000);
  }
  s.breaker_open = failures_snapshot_ >= kBreakerThreshold;
  return s;
}

void Archiver::Failure(const Status& s) {
  ++failures_;
  std::lock_guard<std::mutex> lock(mu_);
  failures_snapshot_ = failures_;
  ++stats_.requests_failed;
  last_error_ = s.ToString();
  if (failures_ == 1 || failures_ == kBreakerThreshold || failures_ % 50 == 0) {
    log::Warn(failures_ >= kBreakerThreshold ? "archive target failing; circuit breaker open"
                                             : "archive request failed; retrying",
              {{"error", s.ToString()}, {"consecutive-failures", static_cast<int64_t>(failures_)},
               {"archive", store_->url()}});
  }
}

void Archiver::Success() {
  std::lock_guard<std::mutex> lock(mu_);
  if (failures_ >= kBreakerThreshold) {
    log::Info("archive target reachable again; circuit breaker closed",
              {{"archive", store_->url()}});
  }
  failures_ = 0;
  failures_snapshot_ = 0;
  ++stats_.requests_ok;
  stats_.last_success_unix_nanos = clock_->NowNanos();
  last_request_nanos_ = clock_->NowNanos();
}

int64_t Archiver::ShipAgeNanos() const {
  // Cut early enough that the chunk is durable within the interval of its
  // oldest entry's commit: subtract the typical Put time (plus the loop's
  // wake-up granularity), but never cut more often than half the interval.
  const int64_t margin = std::min<int64_t>(options_.interval_nanos / 2,
                                           2 * put_ewma_nanos_ + 30'000'000);
  return options_.interval_nanos - margin;
}

int64_t Archiver::BackoffNanos() const {
  int64_t b = 100'000'000;
  for (int i = 1; i < failures_ && b < 30'000'000'000; ++i) b *= 2;
  return std::min<int64_t>(b, 30'000'000'000);
}

void Archiver::SleepInterruptible(int64_t nanos) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::nanoseconds(nanos), [&] { return stop_; });
}

Status Archiver::Resume() {
  const uint64_t tl = options_.timeline;
  // Timeline record (created once).
  TM_ASSIGN_OR_RETURN(auto timelines, ListTimelines(store_));
  bool have_record = false;
  for (const auto& t : timelines) have_record |= (t.id == tl);
  if (!have_record) {
    TimelineInfo info;
    info.id = tl;
    info.parent = options_.parent_timeline;
    info.parent_index = options_.parent_index;
    info.created_unix_ms = clock_->NowNanos() / 1000000;
    TM_RETURN_IF_ERROR(
        store_->Put(TimelineRecordName(info.created_unix_ms, tl), EncodeTimelineInfo(info)));
    log::Info("archive timeline created",
              {{"timeline", TimelineHex(tl)}, {"archive", store_->url()},
               {"parent", info.parent ? TimelineHex(info.parent) : std::string("none")}});
  }
  TM_ASSIGN_OR_RETURN(Catalog cat, LoadCatalog(store_, tl));
  uint64_t archived = 0;
  bool have_chain = false;
  if (!cat.chunks.empty()) {
    const ChunkRef* last = &cat.chunks.back();
    TM_ASSIGN_OR_RETURN(std::string bytes, store_->Get(last->name));
    TM_ASSIGN_OR_RETURN(DecodedChunk d, DecodeChunk(last->name, bytes));
    archived = d.header.last_index;
    // The archive's last entry must be our WAL's entry at that index (when
    // we still hold it): otherwise this data dir diverged from the timeline.
    if (!d.entries.empty() && archived >= wal_->first_index() && archived <= wal_->synced_index()) {
      const wal::Entry& theirs = d.entries.back();
      bool same = false;
      Status rs = wal_->ReadFrom(archived, [&](const wal::Entry& e) -> Status {
        same = e == theirs;
        return Enough();
      });
      if (!rs.ok() && rs.message() != Enough().message()) return rs;
      if (!same) {
        std::string why = "archive timeline " + TimelineHex(tl) + " in " + store_->url() +
                          " holds a different entry " + std::to_string(archived) + " (" +
                          last->name + ") than this data dir's WAL: another server writes this "
                          "timeline";
        std::lock_guard<std::mutex> lock(mu_);
        stats_.fenced = why;
        return FailedPreconditionError(why);
      }
    }
    prev_digest_ = d.digest;
    last_chunk_ = last->name;
    have_chain = true;
  }
  if (!cat.bases.empty()) {
    last_base_index_ = cat.bases.back().index;
    last_base_nanos_ = cat.bases.back().unix_ms * 1000000;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.oldest_base_revision = cat.bases.front().revision;
      stats_.oldest_base_unix_nanos = cat.bases.front().unix_ms * 1000000;
    }
    stats_.last_base = cat.bases.back().name;
    stats_.last_base_index = last_base_index_;
    if (!have_chain) archived = std::max(archived, cat.bases.back().index);
  }
  if (archived > wal_->last_index()) {
    std::string why = "archive timeline " + TimelineHex(tl) + " in " + store_->url() +
                      " is ahead of this data dir (archived through index " +
                      std::to_string(archived) + ", local WAL ends at " +
                      std::to_string(wal_->last_index()) +
                      "): another server writes this timeline, or this data dir is an old copy";
    std::lock_guard<std::mutex> lock(mu_);
    stats_.fenced = why;
    return FailedPreconditionError(why);
  }
  need_base_ = cat.bases.empty() || archived + 1 < wal_->first_index();
  if (!cat.bases.empty() && archived + 1 < wal_->first_index()) {
    log::Error("archive gap: the local WAL no longer holds the entries after the archive's end; "
               "taking a fresh base snapshot",
               {{"archived-index", archived}, {"wal-first-index", wal_->first_index()}});
  }
  // Spool: what is committed locally but not archived yet.
  uint64_t backlog = 0;
  if (!need_base_ && archived < wal_->synced_index()) {
    Status s = wal_->ReadFrom(archived + 1, [&](const wal::Entry& e) {
      backlog += EntryBytes(e);
      return Status::Ok();
    });
    if (!s.ok()) log::Warn("archive: cannot size the WAL backlog", {{"error", s.ToString()}});
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    archived_.store(archived, std::memory_order_release);
    stats_.archived_index = archived;
    manifest_index_ = cat.manifest_archived_index;
    manifest_dirty_ = archived > manifest_index_;
    if (backlog > 0) {
      pending_.push_front({wal_->synced_index(), clock_->NowNanos(), backlog});
      spool_bytes_.fetch_add(backlog);
    }
  }
  last_hash_nanos_ = clock_->NowNanos();  // periodic HashKV: one interval from now
  if (need_base_) TM_RETURN_IF_ERROR(ShipBase());
  last_request_nanos_ = clock_->NowNanos();
  resumed_.store(true);
  log::Info("archiver resumed", {{"timeline", TimelineHex(tl)},
                                 {"archive", store_->url()},
                                 {"archived-index", archived_.load()},
                                 {"committed-index", wal_->synced_index()}});
  return Status::Ok();
}

std::string Archiver::SpoolPath() {
  const std::string dir = options_.spool_dir.empty() ? DefaultScratchDir() : options_.spool_dir;
  return dir + "/base-" + TimelineHex(options_.timeline) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++spool_seq_) + ".spool";
}

Result<BaseFileInfo> Archiver::BuildBase(const std::string& path, BaseSnapshot* snap) {
  TM_ASSIGN_OR_RETURN(auto writer, BaseFileWriter::Create(path, options_.zstd_level));
  TM_ASSIGN_OR_RETURN(*snap, base_->WriteBase([&](std::string_view piece) {
    return writer->Append(piece);
  }));
  BaseHeader h;
  h.timeline = options_.timeline;
  h.index = snap->index;
  h.revision = snap->revision;
  h.unix_nanos = clock_->NowNanos();  // after the snapshot: >= commit time of `index`
  return writer->Finish(h);
}

Status Archiver::CheckSpoolRoom(const std::string& dir) {
  const uint64_t need = base_->EstimateBaseBytes();
  const std::optional<uint64_t> free = FreeBytes(dir);
  if (!free) return Status::Ok();  // unknown: let the write tell
  const uint64_t free_bytes = *free;
  if (need > free_bytes || free_bytes - need < options_.min_free_bytes) {
    return Status(Code::kResourceExhausted,
        "archive: not enough free space to build a base snapshot in " + dir + ": the store is ~" +
        std::to_string(need) + " bytes and " + std::to_string(options_.min_free_bytes) +
        " must stay free, but only " + std::to_string(free_bytes) +
        " are free; archiving waits for the base (free space, or move the data dir)");
  }
  return Status::Ok();
}

Status Archiver::ShipBase() {
  // The object is built in a spool file and uploaded from it: memory stays
  // bounded whatever the store size. The file is removed on every path.
  if (!options_.spool_dir.empty()) {
    ::mkdir(options_.spool_dir.c_str(), 0755);  // removed since Start? (EEXIST is the rule)
  }
  const std::string spool = SpoolPath();
  if (Status room = CheckSpoolRoom(spool.substr(0, spool.rfind('/'))); !room.ok()) {
    Failure(room);
    return room;
  }
  struct Remove {
    const std::string& path;
    ~Remove() { ::unlink(path.c_str()); }
  } cleanup{spool};
  BaseSnapshot snap;
  TM_ASSIGN_OR_RETURN(BaseFileInfo built, BuildBase(spool, &snap));
  const BaseHeader& h = built.header;
  const std::string name = BaseName(h.timeline, h.index, h.revision, h.unix_nanos);
  bool gap = false;
  uint64_t gap_from = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool had_history = prev_digest_.has_value() || !stats_.last_base.empty();
    gap_from = archived_.load() + 1;
    gap = need_base_ && had_history && h.index >= gap_from && gap_from < wal_->first_index();
  }
  if (gap) {
    // Entries gap_from..first_index-1 are gone from the local WAL without
    // having been archived: say so in the archive, loudly, before the base
    // that makes the store restorable again.
    nlohmann::json j = {{"format", 1},
                        {"from_index", gap_from},
                        {"to_index", h.index},
                        {"base", name},
                        {"reason", "local WAL released before archiving (archive spool limit "
                                   "exceeded with --archive-spool-policy continue, or WAL lost)"},
                        {"time", FormatRfc3339(h.unix_nanos)}};
    Status gs = store_->Put(GapName(h.timeline, gap_from, h.index), j.dump(2) + "\n");
    if (!gs.ok()) {
      Failure(gs);
      return gs;
    }
    log::Error("archive gap recorded", {{"from-index", gap_from}, {"to-index", h.index},
                                        {"base", name}});
  }
  Status s = store_->PutFile(name, spool);
  if (!s.ok()) {
    Failure(s);
    return s;
  }
  Success();
  last_base_index_ = h.index;
  last_base_nanos_ = h.unix_nanos;
  if (snap.hash_kv && snap.hash_kv->index == h.index) {
    // The base itself restores this state: the record needs no chunk.
    last_hash_nanos_ = clock_->NowNanos();
    if (Status hs = PutHashKVRecord(*snap.hash_kv, name); !hs.ok()) {
      pending_hash_ = snap.hash_kv;  // retried by MaybeRecordHashKV
      pending_hash_base_ = name;
    }
  }
  log::Info("archive base snapshot shipped", {{"object", name},
                                              {"bytes", built.size},
                                              {"raw-bytes", h.raw_bytes},
                                              {"revision", h.revision}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stats_.oldest_base_unix_nanos == 0) {
      stats_.oldest_base_revision = h.revision;
      stats_.oldest_base_unix_nanos = h.unix_nanos;
    }
    stats_.last_base = name;
    stats_.last_base_index = h.index;
    stats_.bytes_shipped += built.size;
    if (gap) ++stats_.gaps;
    if (need_base_ && h.index > archived_.load()) {
      // Entries up to the base are covered by it; the chain restarts after it.
      prev_digest_.reset();
      last_chunk_.clear();
    }
  }
  if (need_base_ && h.index > archived_.load()) {
    Advance(h.index, h.unix_nanos, std::nullopt, "", 0);
  }
  need_base_ = false;
  return Status::Ok();
}

Status Archiver::CollectEntries(uint64_t from, uint64_t upto, std::vector<wal::Entry>* out) {
  uint64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_broken_ && !queue_.empty() && queue_.front().index <= from &&
        queue_.back().index >= from) {
      for (size_t i = from - queue_.front().index; i < queue_.size(); ++i) {
        const auto& e = queue_[i];
        if (e.index > upto) break;
        out->push_back(e);
        bytes += EntryBytes(e);
        if (bytes >= options_.max_chunk_bytes) break;
      }
      return Status::Ok();
    }
  }
  Status s = wal_->ReadFrom(from, [&](const wal::Entry& e) -> Status {
    if (e.index > upto) return Enough();
    out->push_back(e);
    bytes += EntryBytes(e);
    if (bytes >= options_.max_chunk_bytes) return Enough();
    return Status::Ok();
  });
  if (!s.ok() && s.message() != Enough().message()) return s;
  return Status::Ok();
}

Status Archiver::PutChunk(const std::string& name, const std::string& bytes) {
  Status s = store_->PutIfAbsent(name, bytes);
  if (s.code() != Code::kFailedPrecondition) return s;
  // Already there: ours (an earlier attempt whose reply was lost) or a
  // second writer's. Never overwrite.
  TM_ASSIGN_OR_RETURN(std::string existing, store_->Get(name));
  if (existing == bytes) return Status::Ok();
  std::string why = "object " + name + " in " + store_->url() +
                    " already exists with different content: another server is writing "
                    "timeline " + TimelineHex(options_.timeline);
  log::Error("archiving stopped (fenced)", {{"reason", why}});
  if (on_fenced_) on_fenced_(why);  // before Flush waiters can see it
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.fenced = why;
  }
  flushed_cv_.notify_all();
  return FailedPreconditionError(why);
}

Status Archiver::ShipChunk(uint64_t upto) {
  const uint64_t from = archived_.load() + 1;
  if (unacked_ && unacked_->chunk.header.first_index == from) {
    return PutEncodedChunk(std::move(unacked_->name), std::move(unacked_->chunk));
  }
  unacked_.reset();
  std::vector<wal::Entry> entries;
  Status s = CollectEntries(from, upto, &entries);
  if (s.code() == Code::kOutOfRange) {
    // The WAL released entries that were never archived: must not happen
    // with the release gate; recover with a fresh base and record the gap.
    if (!need_base_) {
      log::Error("archive gap: entries missing from the local WAL", {{"from", from},
                                                                      {"error", s.ToString()}});
    }
    need_base_ = true;
    // Probe the target with a small write first: while it is down, a retry
    // must not take a full storage snapshot each time.
    nlohmann::json j = {{"archived_index", archived_.load()},
                        {"time", FormatRfc3339(clock_->NowNanos())}};
    if (Status ps = store_->Put(HeartbeatName(options_.timeline), j.dump() + "\n"); !ps.ok()) {
      Failure(ps);
      return ps;
    }
    return ShipBase();
  }
  TM_RETURN_IF_ERROR(s);
  if (entries.empty()) return Status::Ok();
  if (entries.front().index != from) {
    return InternalError("archive: expected entry " + std::to_string(from) + ", got " +
                         std::to_string(entries.front().index));
  }
  TM_ASSIGN_OR_RETURN(EncodedChunk c,
                      EncodeChunk(options_.timeline, entries, prev_digest_, options_.zstd_level));
  std::string name = ChunkName(options_.timeline, c.header.first_index);
  return PutEncodedChunk(std::move(name), std::move(c));
}

Status Archiver::PutEncodedChunk(std::string name, EncodedChunk c) {
  const int64_t put_start = clock_->MonotonicNanos();
  Status s = PutChunk(name, c.bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t took = clock_->MonotonicNanos() - put_start;
    put_ewma_nanos_ = put_ewma_nanos_ == 0 ? took : (put_ewma_nanos_ * 7 + took) / 8;
  }
  if (!s.ok()) {
    if (s.code() != Code::kFailedPrecondition) {
      Failure(s);
      unacked_ = UnackedChunk{std::move(name), std::move(c)};  // retried as is
    } else {
      unacked_.reset();  // fenced: archiving has stopped
    }
    return s;
  }
  unacked_.reset();
  Success();
  prev_digest_ = c.digest;
  last_chunk_ = name;
  Advance(c.header.last_index, c.header.last_unix_nanos, c.digest, name, c.bytes.size());
  return Status::Ok();
}

void Archiver::Advance(uint64_t last_index, int64_t last_nanos, const std::optional<Digest>& digest,
                       const std::string& name, uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    archived_.store(last_index, std::memory_order_release);
    stats_.archived_index = last_index;
    archived_commit_nanos_ = last_nanos;
    if (!name.empty()) {
      ++stats_.chunks_shipped;
      stats_.bytes_shipped += bytes;
    }
    while (!queue_.empty() && queue_.front().index <= last_index) {
      queue_bytes_ -= EntryBytes(queue_.front());
      queue_.pop_front();
    }
    while (!pending_.empty() && pending_.front().last_index <= last_index) {
      spool_bytes_.fetch_sub(std::min(spool_bytes_.load(), pending_.front().bytes));
      pending_.pop_front();
    }
    if (pending_.empty()) spool_bytes_.store(0);
    if (queue_broken_ && last_index >= committed_) {
      queue_broken_ = false;
      queue_.clear();
      queue_bytes_ = 0;
    }
    manifest_dirty_ = true;
  }
  (void)digest;
  flushed_cv_.notify_all();
  if (on_archived_) on_archived_(last_index);
}

Status Archiver::PutHashKVRecord(const HashKVPoint& p, const std::string& base) {
  HashKVRecord r;
  r.timeline = options_.timeline;
  r.index = p.index;
  r.revision = p.revision;
  r.compact_revision = p.compact_revision;
  r.hash = p.hash;
  r.base = base;
  r.unix_nanos = clock_->NowNanos();
  Status s = store_->Put(HashKVName(r.timeline, r.index, r.revision), EncodeHashKVRecord(r));
  if (!s.ok()) {
    Failure(s);
    return s;
  }
  Success();
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.hashkv_records;
  return Status::Ok();
}

// Periodic HashKV records: take the server's HashKV every
// hashkv_interval_nanos, write the record once its index is archived (so
// `archive verify --deep` can always restore to it).
void Archiver::MaybeRecordHashKV(int64_t now) {
  if (pending_hash_) {
    if (archived_.load() < pending_hash_->index) return;
    if (PutHashKVRecord(*pending_hash_, pending_hash_base_).ok()) {
      pending_hash_.reset();
      pending_hash_base_.clear();
    } else {
      SleepInterruptible(BackoffNanos());
    }
    return;
  }
  if (options_.hashkv_interval_nanos <= 0 || now - last_hash_nanos_ < options_.hashkv_interval_nanos) {
    return;
  }
  last_hash_nanos_ = now;
  auto p = base_->CurrentHashKV();
  if (!p.ok()) {
    log::Warn("archive: cannot take HashKV", {{"error", p.status().ToString()}});
    return;
  }
  if (*p) {
    pending_hash_ = **p;
    pending_hash_base_.clear();
  }
}

Status Archiver::WriteManifest() {
  Manifest m;
  m.timeline = options_.timeline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    m.archived_index = archived_.load();
    m.archived_commit_unix_nanos = archived_commit_nanos_;
    manifest_dirty_ = false;
  }
  m.archived_revision = base_->RevisionAtIndex(m.archived_index);
  m.last_chunk = last_chunk_;
  m.last_digest = prev_digest_ ? DigestHex(*prev_digest_) : "";
  m.written_unix_nanos = clock_->NowNanos();
  Status s = store_->Put(ManifestName(options_.timeline), EncodeManifest(m));
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    manifest_dirty_ = true;
    return s;
  }
  Success();
  {
    std::lock_guard<std::mutex> lock(mu_);
    manifest_index_ = m.archived_index;
  }
  last_manifest_nanos_ = clock_->NowNanos();
  flushed_cv_.notify_all();
  return Status::Ok();
}

void Archiver::Loop() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    if (!resumed_.load()) {
      Status s = Resume();
      if (!s.ok()) {
        std::string fenced;
        {
          std::lock_guard<std::mutex> lock(mu_);
          fenced = stats_.fenced;
        }
        if (!fenced.empty()) {
          log::Error("archiver cannot resume", {{"error", s.ToString()}});
          flushed_cv_.notify_all();
          if (on_fenced_) on_fenced_(fenced);
          break;
        }
        Failure(s);
        SleepInterruptible(BackoffNanos());
      }
      continue;
    }
    uint64_t upto = 0;
    bool ship = false, manifest = false, flushing = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto decide = [&] {
        const int64_t now = clock_->NowNanos();
        upto = committed_;
        flushing = flush_waiters_ > 0;
        ship = committed_ > archived_.load() &&
               (options_.sync || flushing || queue_broken_ ||
                queue_bytes_ >= std::min(options_.max_chunk_bytes, options_.busy_chunk_bytes) ||
                (!pending_.empty() && now - pending_.front().commit_nanos >= ShipAgeNanos()));
        manifest = manifest_dirty_ &&
                   (flushing || now - last_manifest_nanos_ >= options_.manifest_nanos);
        return stop_ || ship || manifest || !stats_.fenced.empty();
      };
      if (!decide()) {
        cv_.wait_for(lock, std::chrono::milliseconds(options_.sync ? 50 : 20), [&] { return decide(); });
      }
      if (stop_ || !stats_.fenced.empty()) {
        if (!stats_.fenced.empty()) flushed_cv_.notify_all();
        if (stop_) return;
        lock.unlock();
        SleepInterruptible(1'000'000'000);
        continue;
      }
    }
    if (ship) {
      Status s = ShipChunk(upto);
      if (!s.ok()) {
        if (s.code() != Code::kFailedPrecondition) SleepInterruptible(BackoffNanos());
        continue;
      }
      continue;  // re-decide: more may be due (large backlog)
    }
    const int64_t now = clock_->NowNanos();
    if (manifest) {
      Status s = WriteManifest();
      if (!s.ok()) {
        Failure(s);
        SleepInterruptible(BackoffNanos());
      }
      continue;
    }
    if (!flushing && (now - last_base_nanos_ >= options_.base_interval_nanos ||
                      archived_.load() >= last_base_index_ + options_.base_every_entries)) {
      Status s = ShipBase();
      if (!s.ok()) SleepInterruptible(BackoffNanos());
      continue;
    }
    MaybeRecordHashKV(now);
    if (now - last_request_nanos_ >= options_.heartbeat_nanos) {
      nlohmann::json j = {{"archived_index", archived_.load()},
                          {"time", FormatRfc3339(now)}};
      Status s = store_->Put(HeartbeatName(options_.timeline), j.dump() + "\n");
      if (s.ok()) {
        Success();
      } else {
        Failure(s);
        SleepInterruptible(BackoffNanos());
      }
    }
  }
}

}  // namespace tidemark::archive
