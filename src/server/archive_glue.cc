#include "server/archive_glue.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "apply/applier.h"
#include "archive/archiver.h"
#include "archive/object_store.h"
#include "base/coding.h"
#include "base/log.h"
#include "lease/lessor.h"
#include "mvcc/codec.h"
#include "mvcc/store.h"
#include "server/core.h"
#include "server/snapshot_writer.h"
#include "storage/engine.h"
#include "storage/write_batch.h"

namespace tidemark::server {
namespace {

// ---- the TMSNAP01 stream (docs/formats/snapshot.md) ----
struct SnapRecord {
  uint8_t cf;
  std::string_view key, value;
};

// Reads TMSNAP01 records from a byte stream, one at a time, with a buffer of
// ~1 MiB (or one record, if larger): memory does not grow with the snapshot.
// Stops at the end record; what follows it (padding) is left unread.
class SnapRecordReader {
 public:
  explicit SnapRecordReader(archive::ByteReader* in) : in_(in) {}

  // Checks the magic.
  Status Start() {
    mark_ = pos_ = 0;
    TM_ASSIGN_OR_RETURN(size_t have, Fill(8));
    if (have < 8 || std::string_view(buf_).substr(pos_, 8) != "TMSNAP01") {
      return CorruptionError("base snapshot: bad magic");
    }
    pos_ += 8;
    return Status::Ok();
  }

  // The next record (views valid until the next call); false after the end
  // record (whose count is checked).
  Result<bool> Next(SnapRecord* r) {
    mark_ = pos_;  // the buffer keeps this record's bytes until it is returned
    TM_ASSIGN_OR_RETURN(size_t have, Fill(1));
    if (have == 0) return CorruptionError("base snapshot: no end record");
    const uint8_t cf = static_cast<uint8_t>(buf_[pos_++]);
    if (cf == 0xFF) {
      uint64_t n = 0;
      TM_ASSIGN_OR_RETURN(bool ok, Varint(&n));
      if (!ok || n != count_) return CorruptionError("base snapshot: end record count mismatch");
      return false;
    }
    uint64_t kl = 0, vl = 0;
    TM_ASSIGN_OR_RETURN(bool ok, Varint(&kl));
    if (!ok || kl > kMaxField) return CorruptionError("base snapshot: bad key");
    TM_ASSIGN_OR_RETURN(have, Fill(kl));
    if (have < kl) return CorruptionError("base snapshot: bad key");
    const size_t key_rel = pos_ - mark_;  // Fill may move the bytes, not this offset
    pos_ += kl;
    TM_ASSIGN_OR_RETURN(ok, Varint(&vl));
    if (!ok || vl > kMaxField) return CorruptionError("base snapshot: bad value");
    TM_ASSIGN_OR_RETURN(have, Fill(vl));
    if (have < vl) return CorruptionError("base snapshot: bad value");
    r->cf = cf;
    r->key = std::string_view(buf_).substr(mark_ + key_rel, kl);
    r->value = std::string_view(buf_).substr(pos_, vl);
    pos_ += vl;
    ++count_;
    return true;
  }

 private:
  static constexpr size_t kChunk = 1 << 20;
  static constexpr uint64_t kMaxField = 1ull << 32;  // no key or value is near this

  // Makes `n` bytes available at pos_ (fewer only at the end of the stream);
  // returns how many are. Drops the bytes before mark_ (already returned),
  // which moves pos_ and mark_ alike.
  Result<size_t> Fill(uint64_t n) {
    if (buf_.size() - pos_ >= n) return static_cast<size_t>(n);
    if (mark_ > 0) {
      buf_.erase(0, mark_);
      pos_ -= mark_;
      mark_ = 0;
    }
    while (buf_.size() - pos_ < n && !eof_) {
      const size_t old = buf_.size();
      const size_t want = std::max<size_t>(kChunk, static_cast<size_t>(n - (old - pos_)));
      buf_.resize(old + want);
      auto got = in_->Read(buf_.data() + old, want);
      if (!got.ok()) {
        buf_.resize(old);
        return got.status();
      }
      buf_.resize(old + *got);
      if (*got == 0) eof_ = true;
    }
    return static_cast<size_t>(std::min<uint64_t>(n, buf_.size() - pos_));
  }

  // LEB128 at pos_; false if malformed or cut short.
  Result<bool> Varint(uint64_t* v) {
    TM_ASSIGN_OR_RETURN(size_t have, Fill(10));
    std::string_view in = std::string_view(buf_).substr(pos_, have);
    uint64_t r = 0;
    for (size_t i = 0; i < in.size() && i < 10; ++i) {
      const uint8_t b = static_cast<uint8_t>(in[i]);
      r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        pos_ += i + 1;
        *v = r;
        return true;
      }
    }
    return false;
  }

  archive::ByteReader* in_;
  std::string buf_;
  size_t pos_ = 0;   // next byte to parse
  size_t mark_ = 0;  // start of the record being parsed (bytes before it are done)
  bool eof_ = false;
  uint64_t count_ = 0;
};

uint64_t Be64(std::string_view v) {
  uint64_t r = 0;
  for (char c : v) r = (r << 8) | static_cast<uint8_t>(c);
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Store revision right after each applied entry, for the entries not yet
// archived, as runs in which index and revision both advance by one per
// entry (a burst of puts is one run). Feeds tidemark_archive_lag_revisions
// and the manifest's archived_revision. Observe() on the apply thread,
// everything else from any thread.
class RevisionTracker {
 public:
  static constexpr size_t kMaxRuns = 1 << 20;  // ~24 MiB; past it, lookups are bounds

  void Observe(int64_t revision, uint64_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    if (revision == last_rev_ && !runs_.empty()) return;
    last_rev_ = revision;
    if (!runs_.empty()) {
      Run& b = runs_.back();
      if (b.index + b.n == index && b.revision + static_cast<int64_t>(b.n) == revision) {
        ++b.n;
        return;
      }
    }
    runs_.push_back({index, revision, 1});
    if (runs_.size() > kMaxRuns) runs_.pop_front();
  }

  // Revision right after entry `index`. *exact is false when `index` is older
  // than anything observed (after a restart with an unarchived backlog, or
  // past kMaxRuns): then the result is the LOWEST revision it can be (each
  // entry adds at most one revision), so a lag computed from it is an upper
  // bound.
  int64_t At(uint64_t index, bool* exact) const {
    std::lock_guard<std::mutex> lock(mu_);
    *exact = false;
    if (runs_.empty()) return 0;
    auto it = std::upper_bound(runs_.begin(), runs_.end(), index,
                               [](uint64_t i, const Run& r) { return i < r.index; });
    if (it == runs_.begin()) {
      const Run& f = runs_.front();
      const uint64_t back = f.index - index;
      return back >= static_cast<uint64_t>(f.revision) ? 0 : f.revision - static_cast<int64_t>(back);
    }
    --it;
    *exact = true;
    return it->revision + static_cast<int64_t>(std::min<uint64_t>(it->n - 1, index - it->index));
  }

  // Forgets runs wholly before `index` (keeps the one holding it).
  void TrimBefore(uint64_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    while (runs_.size() >= 2 && runs_[1].index <= index) runs_.pop_front();
  }

 private:
  struct Run {
    uint64_t index;
    int64_t revision;
    uint64_t n;
  };
  mutable std::mutex mu_;
  std::deque<Run> runs_;  // guarded by mu_, sorted by index
  int64_t last_rev_ = 0;  // guarded by mu_
};

// Applied index, revision and compact revision as one storage snapshot has
// them (written in the same batch by the store), so a HashKV of that revision
// with that compact revision describes exactly the state after that index.
struct MetaState {
  uint64_t index = 0;
  int64_t revision = 0;
  int64_t compact = -1;
};

Result<MetaState> ReadMetaState(storage::Engine* engine, const storage::Snapshot* snap) {
  MetaState m;
  auto get = [&](const char* key, bool required, uint64_t* out) -> Result<bool> {
    TM_ASSIGN_OR_RETURN(auto v, engine->Get(storage::kMetaCf, key, snap));
    if (!v) {
      if (required) return CorruptionError(std::string("archive: store meta ") + key + " missing");
      return false;
    }
    TM_ASSIGN_OR_RETURN(*out, mvcc::codec::DecodeU64(*v, key));
    return true;
  };
  uint64_t v = 0;
  TM_ASSIGN_OR_RETURN(bool have, get(mvcc::codec::kMetaAppliedIndex, false, &v));
  m.index = have ? v : 0;
  TM_ASSIGN_OR_RETURN(have, get(mvcc::codec::kMetaCurrentRev, true, &v));
  m.revision = static_cast<int64_t>(v);
  TM_ASSIGN_OR_RETURN(have, get(mvcc::codec::kMetaCompactRev, false, &v));
  m.compact = have ? static_cast<int64_t>(v) : -1;
  return m;
}

class StorageBaseSource final : public archive::BaseSource {
 public:
  StorageBaseSource(storage::Engine* engine, mvcc::Store* store, RevisionTracker* revisions)
      : engine_(engine), store_(store), revisions_(revisions) {}

  // The store's size on disk (SST files + memtables): a base holds the same
  // records, zstd-compressed, so this bounds its spool file from above.
  uint64_t EstimateBaseBytes() override {
    auto size = engine_->ApproximateSizeBytes();
    return size.ok() ? *size : 0;
  }

  // Streams the storage snapshot into `out` (no copy of it is kept); index,
  // revision and compact revision come from its own meta records, which are
  // written last.
  Result<archive::BaseSnapshot> WriteBase(const archive::SnapshotSink& out) override {
    archive::BaseSnapshot b;
    int64_t compact = -1;
    TM_ASSIGN_OR_RETURN(SnapshotInfo info,
                        WriteSnapshot(engine_, out,
                                      [&](uint8_t cf, std::string_view key, std::string_view value) {
                                        if (cf != storage::kMetaCf.id || value.size() != 8) return;
                                        if (key == mvcc::codec::kMetaAppliedIndex) b.index = Be64(value);
                                        if (key == mvcc::codec::kMetaCurrentRev) {
                                          b.revision = static_cast<int64_t>(Be64(value));
                                        }
                                        if (key == mvcc::codec::kMetaCompactRev) {
                                          compact = static_cast<int64_t>(Be64(value));
                                        }
                                      }));
    (void)info;
    b.hash_kv = HashAt(MetaState{b.index, b.revision, compact});
    return b;
  }

  Result<std::optional<archive::HashKVPoint>> CurrentHashKV() override {
    MetaState m;
    {
      std::shared_ptr<const storage::Snapshot> snap = engine_->GetSnapshot();
      TM_ASSIGN_OR_RETURN(m, ReadMetaState(engine_, snap.get()));
    }
    return HashAt(m);
  }

  int64_t RevisionAtIndex(uint64_t index) override {
    bool exact = false;
    int64_t r = revisions_->At(index, &exact);
    return exact ? r : 0;
  }

 private:
  // HashKV of the live store at m.revision equals the hash of the state in m
  // as long as the compact revision is still m.compact (versions <= the
  // revision never change otherwise; physical compaction does not change
  // the hash). nullopt when a compaction raced in.
  std::optional<archive::HashKVPoint> HashAt(const MetaState& m) {
    auto h = store_->HashKV(m.revision);
    if (!h.ok() || h->compact_revision != m.compact || h->hash_revision != m.revision) {
      log::Warn("archive: HashKV not recorded (compaction in between; next time)",
                {{"revision", m.revision},
                 {"error", h.ok() ? std::string("compact revision changed") : h.status().ToString()}});
      return std::nullopt;
    }
    return archive::HashKVPoint{m.index, m.revision, m.compact, h->hash};
  }

  storage::Engine* engine_;
  mvcc::Store* store_;
  RevisionTracker* revisions_;
};

uint64_t RandomTimeline() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<uint64_t>(
                          std::chrono::system_clock::now().time_since_epoch().count()));
  uint64_t v = 0;
  while (v == 0) v = rng();
  return v;
}

struct TimelineFile {
  uint64_t timeline = 0, parent = 0, parent_index = 0;
};

// fsync(2) of a file or a directory (a rename is durable once its directory is).
Status FsyncPath(const std::string& path, bool dir) {
  const std::string p = path.empty() ? std::string(".") : path;
  int fd = ::open(p.c_str(), (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + p + " to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("cannot fsync " + p);
  return Status::Ok();
}

Status WriteTimelineFile(const std::string& path, const TimelineFile& t) {
  nlohmann::json j = {{"format", 1},
                      {"timeline", archive::TimelineHex(t.timeline)},
                      {"parent", t.parent ? archive::TimelineHex(t.parent) : ""},
                      {"parent_index", t.parent_index}};
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) return IoError("archive: cannot write " + tmp);
  }
  TM_RETURN_IF_ERROR(FsyncPath(tmp, false));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return IoError("archive: cannot rename " + tmp);
  return FsyncPath(std::filesystem::path(path).parent_path().string(), true);
}

Result<std::optional<TimelineFile>> ReadTimelineFile(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) return std::optional<TimelineFile>();
  auto info = archive::DecodeTimelineInfo("data dir: " + path, ReadFile(path));
  if (!info.ok()) {
    return CorruptionError(info.status().message() + " (not a valid archive timeline file)");
  }
  return std::optional<TimelineFile>(TimelineFile{info->id, info->parent, info->parent_index});
}

}  // namespace

struct ArchiveRuntime {
  std::unique_ptr<archive::ObjectStore> store;
  RevisionTracker revisions;
  std::unique_ptr<StorageBaseSource> base;
  std::unique_ptr<archive::Archiver> archiver;
  TimelineFile timeline;
  prometheus::Gauge* lag_seconds = nullptr;
  prometheus::Gauge* lag_revisions = nullptr;
  prometheus::Gauge* spool_bytes = nullptr;
  prometheus::Gauge* last_success = nullptr;
  prometheus::Gauge* gaps = nullptr;
  prometheus::Gauge* requests_ok = nullptr;
  prometheus::Gauge* requests_failed = nullptr;
  prometheus::Gauge* archived_index = nullptr;
  prometheus::Gauge* oldest_revision = nullptr;
  prometheus::Gauge* oldest_time = nullptr;
  prometheus::Gauge* newest_revision = nullptr;
  prometheus::Gauge* newest_time = nullptr;
};

Status OpenArchive(Core* c) {
  const ServerOptions& o = c->options;
  if (o.archive_url.empty()) return Status::Ok();
  if (o.archive_spool_policy != "refuse-writes" && o.archive_spool_policy != "continue") {
    return InvalidArgumentError("--archive-spool-policy " + o.archive_spool_policy +
                                ": expected refuse-writes or continue");
  }
  if (o.archive_interval_ms < 1) return InvalidArgumentError("--archive-interval must be > 0");
  auto rt = std::make_shared<ArchiveRuntime>();
  archive::ObjectStoreOptions so;
  so.s3_endpoint = o.archive_s3_endpoint;
  so.s3_region = o.archive_s3_region;
  so.s3_path_style = o.archive_s3_path_style;
  so.access_key = o.archive_s3_access_key_id;
  so.secret_key = o.archive_s3_secret_access_key;
  so.session_token = o.archive_s3_session_token;
  TM_ASSIGN_OR_RETURN(rt->store, archive::OpenObjectStore(o.archive_url, so));
  const std::string tl_path = c->data_path("archive.json");
  TM_ASSIGN_OR_RETURN(auto tl, ReadTimelineFile(tl_path));
  if (!tl) {
    TimelineFile t;
    t.timeline = RandomTimeline();
    TM_RETURN_IF_ERROR(WriteTimelineFile(tl_path, t));
    tl = t;
  }
  rt->timeline = *tl;
  rt->base = std::make_unique<StorageBaseSource>(c->engine.get(), c->store.get(), &rt->revisions);
  // Bases are built in <data-dir>/archive-spool/ (cleaned by the archiver at
  // start); older binaries built them in memory via this file.
  ::unlink(c->data_path("archive-base.tmp").c_str());
  archive::ArchiverOptions ao;
  ao.timeline = tl->timeline;
  ao.parent_timeline = tl->parent;
  ao.parent_index = tl->parent_index;
  ao.interval_nanos = o.archive_interval_ms * 1000000;
  ao.sync = o.archive_sync;
  ao.heartbeat_nanos = o.archive_heartbeat_ms * 1000000;
  ao.base_interval_nanos = o.archive_base_interval_ms * 1000000;
  ao.base_every_entries = static_cast<uint64_t>(o.archive_base_every_entries);
  ao.hashkv_interval_nanos = o.archive_hashkv_interval_ms * 1000000;
  ao.spool_dir = c->data_path("archive-spool");
  // Entries are kept in memory only up to the spool limit (beyond it they are
  // read back from the WAL, or, with --archive-spool-policy continue, gone).
  ao.memory_queue_bytes = static_cast<uint64_t>(
      std::clamp<int64_t>(o.archive_spool_limit_bytes, 64 << 10, 64 << 20));
  rt->archiver = std::make_unique<archive::Archiver>(rt->store.get(), c->wal.get(), rt->base.get(),
                                                     c->clock.get(), ao);
  auto& reg = *c->metrics->registry;
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(reg).Add({});
  };
  rt->lag_seconds = gauge("tidemark_archive_lag_seconds",
                          "Age of the oldest committed entry not yet durable in the archive");
  rt->lag_revisions = gauge("tidemark_archive_lag_revisions",
                            "Store revisions applied but not yet durable in the archive");
  rt->spool_bytes = gauge("tidemark_archive_spool_bytes",
                          "Bytes of committed entries kept locally until archived");
  rt->last_success = gauge("tidemark_archive_last_success_timestamp_seconds",
                           "Unix time of the last successful archive request");
  rt->gaps = gauge("tidemark_archive_gaps_total", "Gaps recorded in the archive");
  auto& req = prometheus::BuildGauge()
                  .Name("tidemark_archive_requests_total")
                  .Help("Archive target requests by result")
                  .Register(reg);
  rt->requests_ok = &req.Add({{"result", "ok"}});
  rt->requests_failed = &req.Add({{"result", "error"}});
  rt->archived_index = gauge("tidemark_archive_archived_index",
                             "Last WAL index durable in the archive");
  rt->oldest_revision = gauge("tidemark_archive_restorable_oldest_revision",
                              "Oldest revision restorable from this timeline (its first base; -1: "
                              "none yet; a restored timeline's parent holds older ones)");
  rt->oldest_time = gauge("tidemark_archive_restorable_oldest_timestamp_seconds",
                          "Unix time of this timeline's oldest base (0: none yet)");
  rt->newest_revision = gauge("tidemark_archive_restorable_newest_revision",
                              "Newest revision durable in the archive");
  rt->newest_time = gauge("tidemark_archive_restorable_newest_timestamp_seconds",
                          "Commit time of the newest entry durable in the archive (0: none "
                          "shipped by this process yet)");
  c->archive = rt;
  log::Info("continuous archive enabled",
            {{"archive", rt->store->url()},
             {"timeline", archive::TimelineHex(tl->timeline)},
             {"interval-ms", o.archive_interval_ms},
             {"sync", o.archive_sync}});
  return Status::Ok();
}

void StartArchive(Core* c) {
  if (!c->archive) return;
  archive::Archiver* a = c->archive->archiver.get();
  RevisionTracker* revs = &c->archive->revisions;
  revs->Observe(c->store->current_revision(), c->store->applied_index());  // state at open
  c->store->set_publish_observer(
      [revs](int64_t revision, uint64_t index) { revs->Observe(revision, index); });
  Pipeline* p = c->pipeline.get();
  p->set_committed_hook([a](const std::vector<wal::Entry>& e) { a->OnCommitted(e); });
  if (c->options.archive_spool_policy == "continue") {
    // Past the spool limit the WAL is released as if there were no archive;
    // the archiver then records a gap and ships a fresh base when back.
    const uint64_t limit = static_cast<uint64_t>(c->options.archive_spool_limit_bytes);
    p->set_release_gate([a, limit] {
      return a->spool_bytes() > limit ? std::numeric_limits<uint64_t>::max() : a->release_limit();
    });
  } else {
    p->set_release_gate([a] { return a->release_limit(); });
  }
  if (c->options.archive_sync) {
    p->set_hold_acks_until_archived(true);
    a->set_on_archived([p](uint64_t i) { p->OnArchived(i); });
    a->set_on_fenced([p](const std::string& why) {
      p->FailHeldAcks(UnavailableError(
          "etcdserver: request committed locally but cannot be archived (--archive-sync): " + why));
    });
  }
  a->Start();
}

Status StopArchive(Core* c) {
  if (!c->archive) return Status::Ok();
  archive::Archiver* a = c->archive->archiver.get();
  Status s = a->Flush(c->options.archive_shutdown_timeout_ms * 1000000);
  if (!s.ok()) {
    log::Error("archive: shutdown could not ship everything committed",
               {{"error", s.ToString()}, {"archive", c->archive->store->url()}});
    if (c->options.archive_sync) {
      c->pipeline->FailHeldAcks(UnavailableError(
          "etcdserver: request committed locally but not archived (archive unavailable)"));
    }
  } else {
    log::Info("archive flushed", {{"archived-index", a->archived_index()}});
  }
  a->Stop();
  c->store->set_publish_observer(nullptr);  // the pipeline has stopped: no writer runs
  return s;
}

Status AdmitArchive(const Core* c) {
  if (!c->archive || c->options.archive_spool_policy != "refuse-writes") return Status::Ok();
  const archive::Archiver* a = c->archive->archiver.get();
  if (static_cast<int64_t>(a->spool_bytes()) > c->options.archive_spool_limit_bytes) {
    auto st = a->stats();
    return Status(Code::kResourceExhausted,
                  "etcdserver: archive spool limit exceeded (" + std::to_string(st.spool_bytes) +
                      " bytes committed but not yet archived to " + c->archive->store->url() +
                      "; archived through index " + std::to_string(st.archived_index) +
                      "); writes are refused until the archive catches up");
  }
  return Status::Ok();
}

int64_t ArchiveLagRevisions(Core* c) {
  if (!c->archive) return 0;
  const uint64_t archived = c->archive->archiver->archived_index();
  // Order: revision first; the applied index then is at least its index.
  const int64_t current = c->store->current_revision();
  if (archived >= c->store->applied_index()) return 0;
  c->archive->revisions.TrimBefore(archived);
  bool exact = false;
  const int64_t at = c->archive->revisions.At(archived, &exact);
  return std::max<int64_t>(0, current - at);
}

void RefreshArchiveGauges(Core* c) {
  if (!c->archive) return;
  ArchiveRuntime* rt = c->archive.get();
  auto st = rt->archiver->stats();
  rt->lag_seconds->Set(static_cast<double>(st.lag_seconds_x1000) / 1000.0);
  const int64_t lag_revisions = ArchiveLagRevisions(c);
  rt->lag_revisions->Set(static_cast<double>(lag_revisions));
  rt->spool_bytes->Set(static_cast<double>(st.spool_bytes));
  rt->last_success->Set(static_cast<double>(st.last_success_unix_nanos) / 1e9);
  rt->gaps->Set(static_cast<double>(st.gaps));
  rt->requests_ok->Set(static_cast<double>(st.requests_ok));
  rt->requests_failed->Set(static_cast<double>(st.requests_failed));
  rt->archived_index->Set(static_cast<double>(st.archived_index));
  rt->oldest_revision->Set(static_cast<double>(st.oldest_base_revision));
  rt->oldest_time->Set(static_cast<double>(st.oldest_base_unix_nanos) / 1e9);
  rt->newest_revision->Set(static_cast<double>(
      st.oldest_base_unix_nanos == 0 ? -1 : c->store->current_revision() - lag_revisions));
  rt->newest_time->Set(static_cast<double>(st.archived_commit_unix_nanos) / 1e9);
}

// ---------------------------------------------------------------- restore

namespace {

class StoreSink final : public archive::RestoreSink {
 public:
  explicit StoreSink(std::string dir) : dir_(std::move(dir)) {}
  ~StoreSink() override { Close().IgnoreError(); }

  Status Open() {
    storage::Options so;
    TM_ASSIGN_OR_RETURN(engine_, storage::Engine::Open(dir_ + "/db", so));
    // First write: marks the store unfinished until Close() writes the final
    // meta records (mvcc::StoreOptions::defer_meta_writes). A crash at any
    // point leaves a store that Store::Open refuses, never a half-restore.
    storage::WriteBatch mark(engine_.get());
    mark.Put(storage::kMetaCf, mvcc::codec::kMetaDeferred, "");
    return engine_->Write(mark);
  }

  // Record by record from the stream, in write batches of ~4 MiB: memory
  // is bounded by the batch, the reader's buffers and RocksDB's memtables,
  // not by the snapshot's size.
  Status LoadBase(const archive::BaseHeader& header, archive::ByteReader* snapshot) override {
    auto batch = std::make_unique<storage::WriteBatch>(engine_.get());
    SnapRecordReader records(snapshot);
    TM_RETURN_IF_ERROR(records.Start());
    SnapRecord r{};
    for (;;) {
      TM_ASSIGN_OR_RETURN(bool more, records.Next(&r));
      if (!more) break;
      if (r.cf == 0 || r.cf > storage::kMetaCf.id) {
        return CorruptionError("base snapshot: unknown column family " + std::to_string(r.cf));
      }
      batch->Put(storage::ColumnFamily{r.cf}, r.key, r.value);
      if (batch->ByteSize() > (4u << 20)) {
        TM_RETURN_IF_ERROR(engine_->Write(*batch));
        batch->Clear();
      }
    }
    if (!batch->empty()) TM_RETURN_IF_ERROR(engine_->Write(*batch));
    TM_RETURN_IF_ERROR(engine_->Flush());
    // Now the same state machine the server builds in Server::Open, except
    // that the per-commit meta records are written once, in Close() (the
    // store is built in <data-dir>.restoring and discarded on failure).
    mvcc::StoreOptions mo;
    mo.defer_meta_writes = true;
    TM_ASSIGN_OR_RETURN(store_, mvcc::Store::Open(engine_.get(), mo));
    if (store_->applied_index() != header.index) {
      return CorruptionError("base snapshot: applied index " +
                             std::to_string(store_->applied_index()) +
                             " differs from the base header's " + std::to_string(header.index));
    }
    applier_ = std::make_unique<apply::Applier>(store_.get(), apply::ApplyOptions{});
    lease::Lessor::Options lo;  // never started: no expiry while replaying
    TM_ASSIGN_OR_RETURN(lessor_, lease::Lessor::Open(engine_.get(), lo));
    applier_->set_lessor(lessor_.get());
    TM_RETURN_IF_ERROR(applier_->LoadAlarms());
    return Status::Ok();
  }

  Status Apply(const wal::Entry& e) override {
    // req_/resp_/events_ are reused across entries (Clear() keeps their
    // memory): no per-entry allocation of the message trees.
    req_.Clear();
    if (!req_.ParseFromString(e.payload)) {
      return CorruptionError("archive: entry " + std::to_string(e.index) +
                             " does not decode as an InternalRequest");
    }
    resp_.Clear();
    events_.clear();
    bool fatal = false;
    // The replicated limit is not re-checked on replay: the entry was accepted once.
    Status s = applier_->Apply(e.index, req_, &resp_, &events_, &fatal);
    if (fatal) return s;
    return Status::Ok();  // request errors consume the entry, as on the server
  }

  int64_t current_revision() const override { return store_ ? store_->current_revision() : 0; }
  int64_t compact_revision() const { return store_ ? store_->compact_revision() : -1; }
  Status BumpRevisionAndMarkCompacted(int64_t amount) {
    if (!store_) return FailedPreconditionError("restore: no store loaded");
    return store_->BumpRevisionAndMarkCompacted(amount);
  }
  Result<mvcc::HashKVResult> HashKV() const {
    if (!store_) return FailedPreconditionError("restore: no store loaded");
    return store_->HashKV(0);
  }
  uint64_t key_count() const { return store_ ? store_->key_count() : 0; }
  uint64_t applied_index() const { return store_ ? store_->applied_index() : 0; }

  // Writes the deferred meta records, then flushes every column family
  // (Engine::Close): the one durability point of a restore.
  Status Close() {
    Status meta;
    if (store_) meta = store_->FlushDeferredMeta();
    applier_.reset();
    lessor_.reset();
    if (store_) store_->Close();
    store_.reset();
    // Without the meta records the store must not be flushed as if finished:
    // the destructor closes without flushing (the dir is discarded anyway).
    Status s;
    if (engine_ && meta.ok()) s = engine_->Close();
    engine_.reset();
    return meta.ok() ? s : meta;
  }

 private:
  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<apply::Applier> applier_;
  internal::InternalRequest req_;
  internal::InternalResponse resp_;
  std::vector<mvcc::Event> events_;
};

}  // namespace

Result<RestoreSummary> RestoreDataDir(const RestoreRequest& req) {
  auto t0 = std::chrono::steady_clock::now();
  if (req.data_dir.empty()) return InvalidArgumentError("restore: --data-dir is required");
  if (::access(req.data_dir.c_str(), F_OK) == 0) {
    std::string probe = req.data_dir + "/db";
    std::string probe2 = req.data_dir + "/wal";
    if (::access(probe.c_str(), F_OK) == 0 || ::access(probe2.c_str(), F_OK) == 0) {
      return FailedPreconditionError("restore: data dir " + req.data_dir +
                                     " already holds data; restore only into a new directory");
    }
  }
  TM_ASSIGN_OR_RETURN(auto store, archive::OpenObjectStore(req.archive_url, req.store_options));
  uint64_t timeline = 0;
  if (req.timeline) {
    timeline = *req.timeline;
  } else {
    TM_ASSIGN_OR_RETURN(auto newest, archive::NewestTimeline(store.get()));
    timeline = newest.id;
  }
  // Build into <dir>.restoring, rename at the end: a failed restore leaves
  // no half-built data dir that a server could start from.
  // <dir>.restoring/restore.lock is flock(2)ed for the whole restore: a
  // leftover <dir>.restoring whose lock nobody holds is from a restore that
  // crashed or was killed, and is removed and rebuilt; one whose lock is held
  // belongs to a running restore and is refused. (Its store is marked
  // unfinished too, so no server opens it: mvcc/meta_deferred.)
  const std::string building = req.data_dir + ".restoring";
  const std::string lock_path = building + "/restore.lock";
  if (::access(building.c_str(), F_OK) == 0) {
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      return FailedPreconditionError("restore: " + building +
                                     " exists (an interrupted restore?); remove it first");
    }
    const bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    ::close(fd);
    if (busy) {
      return FailedPreconditionError("restore: " + building +
                                     " is being written by another running restore");
    }
    log::Warn("restore: removing the unfinished restore left by a crashed or killed run",
              {{"dir", building}});
    std::error_code ec;
    std::filesystem::remove_all(building, ec);
    if (ec) return IoError("restore: cannot remove " + building + ": " + ec.message());
  }
  if (::mkdir(building.c_str(), 0755) != 0) {
    return IoError("restore: cannot create " + building);
  }
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd >= 0) ::close(lock_fd);
    return IoError("restore: cannot lock " + lock_path);
  }
  // Any failure from here on removes <dir>.restoring (we hold its lock);
  // success renames it to <dir>.
  bool renamed = false;
  struct Cleanup {
    const std::string& dir;
    int fd;
    bool& renamed;
    ~Cleanup() {
      if (!renamed) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
      ::close(fd);
    }
  } cleanup{building, lock_fd, renamed};
  RestoreSummary sum;
  {
    StoreSink sink(building);
    TM_RETURN_IF_ERROR(sink.Open());
    TM_ASSIGN_OR_RETURN(sum.result,
                        archive::Restore(store.get(), timeline, req.target, &sink,
                                         req.log ? req.log
                                                 : [](const std::string& m) { log::Info(m); },
                                         req.progress, /*spool_dir=*/building));
    if (req.bump_revision != 0 || req.mark_compacted) {
      if (req.bump_revision <= 0 || !req.mark_compacted) {
        return InvalidArgumentError(
            "restore: --bump-revision N (N > 0) and --mark-compacted go together, as in etcdutl");
      }
      TM_RETURN_IF_ERROR(sink.BumpRevisionAndMarkCompacted(req.bump_revision));
    }
    sum.revision = sink.current_revision();
    sum.keys = sink.key_count();
    TM_RETURN_IF_ERROR(sink.Close());
  }
  TimelineFile t;
  t.timeline = RandomTimeline();
  t.parent = sum.result.timeline;  // the timeline actually read (may be an ancestor)
  t.parent_index = sum.result.last_index;
  TM_RETURN_IF_ERROR(WriteTimelineFile(building + "/archive.json", t));
  sum.new_timeline = t.timeline;
  ::unlink(lock_path.c_str());
  TM_RETURN_IF_ERROR(FsyncPath(building, true));
  if (::access(req.data_dir.c_str(), F_OK) == 0) ::rmdir(req.data_dir.c_str());
  if (std::rename(building.c_str(), req.data_dir.c_str()) != 0) {
    return IoError("restore: cannot rename " + building + " to " + req.data_dir);
  }
  renamed = true;
  // The rename is the commit point of a restore: make it durable.
  TM_RETURN_IF_ERROR(
      FsyncPath(std::filesystem::path(req.data_dir).lexically_normal().parent_path().string(),
                true));
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace tidemark::server

namespace tidemark::server {

Result<std::vector<HashKVCheck>> CheckArchiveHashKV(archive::ObjectStore* store, uint64_t timeline,
                                                    const std::string& scratch_root) {
  TM_ASSIGN_OR_RETURN(archive::Catalog cat, archive::LoadCatalog(store, timeline));
  std::vector<HashKVCheck> out;
  for (const auto& ref : cat.hashes) {
    HashKVCheck c;
    c.object = ref.name;
    c.index = ref.index;
    c.revision = ref.revision;
    auto bytes = store->Get(ref.name);
    if (!bytes.ok()) {
      c.problem = bytes.status().message();
      out.push_back(std::move(c));
      continue;
    }
    auto rec = archive::DecodeHashKVRecord(ref.name, *bytes);
    if (!rec.ok()) {
      c.problem = rec.status().message();
      out.push_back(std::move(c));
      continue;
    }
    c.recorded = rec->hash;
    c.recorded_compact = rec->compact_revision;
    // A fresh store for each record: newest base at or before its index,
    // then replay through exactly that index.
    const std::string dir = scratch_root + "/hashkv-" + std::to_string(ref.index);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) return IoError("verify: cannot create scratch dir " + dir + ": " + ec.message());
    {
      StoreSink sink(dir);
      Status s = sink.Open();
      archive::RestoreTarget target;
      target.kind = archive::RestoreTarget::Kind::kIndex;
      target.index = ref.index;
      if (s.ok()) s = archive::Restore(store, timeline, target, &sink, {}, {}, dir).status();
      if (!s.ok()) {
        c.problem = "cannot restore to index " + std::to_string(ref.index) + " for HashKV record " +
                    ref.name + ": " + s.message();
      } else {
        c.restored_revision = sink.current_revision();
        c.restored_compact = sink.compact_revision();
        auto h = sink.HashKV();
        if (!h.ok()) {
          c.problem = "HashKV of the store restored to index " + std::to_string(ref.index) +
                      " failed: " + h.status().message();
        } else {
          c.restored = h->hash;
          if (c.restored_revision != c.revision || c.restored != c.recorded ||
              c.restored_compact != c.recorded_compact) {
            c.problem = "HashKV mismatch at revision " + std::to_string(c.revision) + " (index " +
                        std::to_string(c.index) + ", " + ref.name + "): recorded hash " +
                        std::to_string(c.recorded) + " (compact revision " +
                        std::to_string(c.recorded_compact) + "), restored store has hash " +
                        std::to_string(c.restored) + " at revision " +
                        std::to_string(c.restored_revision) + " (compact revision " +
                        std::to_string(c.restored_compact) + ")";
          }
        }
      }
      sink.Close().IgnoreError();
    }
    std::filesystem::remove_all(dir, ec);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace tidemark::server
