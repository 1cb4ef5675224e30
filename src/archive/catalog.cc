#include "archive/catalog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "archive/prefetcher.h"

namespace tidemark::archive {
namespace {

bool ZeroDigest(const Digest& d) {
  return std::all_of(d.begin(), d.end(), [](uint8_t b) { return b == 0; });
}

std::string Range(uint64_t a, uint64_t b) { return std::to_string(a) + ".." + std::to_string(b); }

// Raw objects (verify).
class Prefetcher : public BasicPrefetcher<std::string> {
 public:
  Prefetcher(ObjectStore* store, std::vector<std::string> names)
      : BasicPrefetcher(
            std::move(names), [store](const std::string& n) { return store->Get(n); },
            [](const std::string& bytes) { return static_cast<uint64_t>(bytes.size()); }) {}
};

// Decoded chunks (restore): the object's size and its verified content.
struct FetchedChunk {
  uint64_t size = 0;
  DecodedChunk chunk;
};

std::atomic<uint64_t> g_fetch_seq{0};

}  // namespace

LocalObject& LocalObject::operator=(LocalObject&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

LocalObject::~LocalObject() {
  if (fd_ >= 0) ::close(fd_);
}

Result<LocalObject> OpenLocalObject(ObjectStore* store, const std::string& name,
                                    const std::string& spool_dir, uint64_t expected_size) {
  const std::string local = store->LocalPath(name);
  if (!local.empty()) {
    int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        return NotFoundError("archive: object " + name + " not found in " + store->url());
      }
      return IoError("archive: open " + local + ": " + std::strerror(errno));
    }
    return LocalObject(fd);
  }
  const std::string dir = spool_dir.empty() ? DefaultScratchDir() : spool_dir;
  if (expected_size > 0) {
    const std::optional<uint64_t> free_bytes = FreeBytes(dir);
    if (free_bytes && *free_bytes < expected_size) {
      return Status(Code::kResourceExhausted,
                    "archive: not enough free space in " + dir + " to download " + name +
                        " from " + store->url() + ": it is " + std::to_string(expected_size) +
                        " bytes and only " + std::to_string(*free_bytes) + " are free");
    }
  }
  const std::string path = dir + "/.tidemark-fetch-" + std::to_string(::getpid()) + "-" +
                           std::to_string(g_fetch_seq.fetch_add(1)) + ".spool";
  Status s = store->GetToFile(name, path);
  int fd = s.ok() ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  if (s.ok() && fd < 0) s = IoError("archive: open " + path + ": " + std::strerror(errno));
  ::unlink(path.c_str());  // the open descriptor keeps the data until it is closed
  if (!s.ok()) return s;
  return LocalObject(fd);
}

Result<std::vector<TimelineRef>> ListTimelines(ObjectStore* store) {
  TM_ASSIGN_OR_RETURN(auto objs, store->List("timelines/"));
  std::vector<TimelineRef> out;
  for (auto& o : objs) {
    TimelineRef t;
    if (ParseTimelineRecordName(o.name, &t.created_ms, &t.id)) {
      t.name = o.name;
      out.push_back(t);
    }
  }
  std::sort(out.begin(), out.end(), [](const TimelineRef& a, const TimelineRef& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms : a.id < b.id;
  });
  return out;
}

Result<TimelineRef> NewestTimeline(ObjectStore* store) {
  TM_ASSIGN_OR_RETURN(auto tls, ListTimelines(store));
  if (tls.empty()) return NotFoundError("archive " + store->url() + " holds no timeline");
  return tls.back();
}

Result<Catalog> LoadCatalog(ObjectStore* store, uint64_t timeline) {
  TM_ASSIGN_OR_RETURN(auto objs, store->List(TimelineDir(timeline)));
  Catalog c;
  c.timeline = timeline;
  for (auto& o : objs) {
    uint64_t tl = 0, a = 0;
    int64_t rev = 0, ms = 0;
    if (ParseChunkName(o.name, &tl, &a)) {
      c.chunks.push_back({o.name, a, o.size});
    } else if (uint64_t b = 0; ParseGapName(o.name, &tl, &a, &b)) {
      c.gaps.push_back({o.name, a, b});
    } else if (ParseBaseName(o.name, &tl, &a, &rev, &ms)) {
      c.bases.push_back({o.name, a, rev, ms, o.size});
    } else if (ParseHashKVName(o.name, &tl, &a, &rev)) {
      c.hashes.push_back({o.name, a, rev});
    } else if (o.name != ManifestName(timeline) && o.name != HeartbeatName(timeline)) {
      c.unknown.push_back(o.name);
    }
  }
  for (auto& o : objs) {
    if (o.name != ManifestName(timeline)) continue;
    TM_ASSIGN_OR_RETURN(std::string json, store->Get(o.name));
    TM_ASSIGN_OR_RETURN(Manifest m, DecodeManifest(o.name, json));
    c.manifest_archived_index = m.archived_index;
    c.manifest_last_chunk = m.last_chunk;
  }
  std::sort(c.chunks.begin(), c.chunks.end(), [](const ChunkRef& x, const ChunkRef& y) {
    return x.first < y.first;
  });
  std::sort(c.bases.begin(), c.bases.end(),
            [](const BaseRef& x, const BaseRef& y) { return x.index < y.index; });
  std::sort(c.hashes.begin(), c.hashes.end(),
            [](const Catalog::HashKVRef& x, const Catalog::HashKVRef& y) { return x.index < y.index; });
  return c;
}

std::string EncodeTimelineInfo(const TimelineInfo& t) {
  nlohmann::json j = {{"format", 1},
                      {"timeline", TimelineHex(t.id)},
                      {"parent", t.parent ? TimelineHex(t.parent) : ""},
                      {"parent_index", t.parent_index},
                      {"created", FormatRfc3339(t.created_unix_ms * 1000000)}};
  return j.dump(2) + "\n";
}

Result<TimelineInfo> LoadTimelineInfo(ObjectStore* store, uint64_t timeline) {
  TM_ASSIGN_OR_RETURN(auto tls, ListTimelines(store));
  for (const auto& ref : tls) {
    if (ref.id != timeline) continue;
    TM_ASSIGN_OR_RETURN(std::string json, store->Get(ref.name));
    TM_ASSIGN_OR_RETURN(TimelineInfo t, DecodeTimelineInfo("archive: object " + ref.name, json));
    t.created_unix_ms = ref.created_ms;
    return t;
  }
  return NotFoundError("archive " + store->url() + " has no record of timeline " +
                       TimelineHex(timeline));
}

Result<TimelineInfo> DecodeTimelineInfo(std::string_view what, std::string_view json) {
  try {
    const auto j = nlohmann::json::parse(json);
    TimelineInfo t;
    t.id = std::stoull(j.at("timeline").get<std::string>(), nullptr, 16);
    const std::string parent = j.at("parent").get<std::string>();
    t.parent = parent.empty() ? 0 : std::stoull(parent, nullptr, 16);
    t.parent_index = j.at("parent_index").get<uint64_t>();
    return t;
  } catch (const std::exception& e) {
    return CorruptionError(std::string(what) + ": bad timeline record (" + e.what() + ")");
  }
}

std::string EncodeManifest(const Manifest& m) {
  nlohmann::json j = {{"format", 1},
                      {"timeline", TimelineHex(m.timeline)},
                      {"archived_index", m.archived_index},
                      {"archived_revision", m.archived_revision},
                      {"archived_commit_unix_nanos", m.archived_commit_unix_nanos},
                      {"archived_commit_time", FormatRfc3339(m.archived_commit_unix_nanos)},
                      {"last_chunk", m.last_chunk},
                      {"last_digest", m.last_digest},
                      {"written_unix_nanos", m.written_unix_nanos}};
  return j.dump(2) + "\n";
}

Result<Manifest> DecodeManifest(std::string_view object, std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  Manifest m;
  try {
    if (j.is_discarded() || !j.is_object()) throw std::runtime_error("not a JSON object");
    m.archived_index = j.at("archived_index").get<uint64_t>();
    // Added after version 1's first release: optional.
    if (j.contains("archived_revision")) m.archived_revision = j.at("archived_revision").get<int64_t>();
    m.archived_commit_unix_nanos = j.at("archived_commit_unix_nanos").get<int64_t>();
    m.last_chunk = j.at("last_chunk").get<std::string>();
    m.last_digest = j.at("last_digest").get<std::string>();
    m.written_unix_nanos = j.at("written_unix_nanos").get<int64_t>();
  } catch (const std::exception& e) {
    return CorruptionError("archive: object " + std::string(object) + ": bad manifest: " +
                           e.what());
  }
  return m;
}

std::string EncodeHashKVRecord(const HashKVRecord& r) {
  nlohmann::json j = {{"format", 1},
                      {"timeline", TimelineHex(r.timeline)},
                      {"index", r.index},
                      {"revision", r.revision},
                      {"compact_revision", r.compact_revision},
                      {"hash", r.hash},
                      {"base", r.base},
                      {"time", FormatRfc3339(r.unix_nanos)},
                      {"unix_nanos", r.unix_nanos}};
  return j.dump(2) + "\n";
}

Result<HashKVRecord> DecodeHashKVRecord(std::string_view object, std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  HashKVRecord r;
  try {
    if (j.is_discarded() || !j.is_object()) throw std::runtime_error("not a JSON object");
    if (j.at("format").get<int>() != 1) throw std::runtime_error("unknown format");
    r.timeline = std::stoull(j.at("timeline").get<std::string>(), nullptr, 16);
    r.index = j.at("index").get<uint64_t>();
    r.revision = j.at("revision").get<int64_t>();
    r.compact_revision = j.at("compact_revision").get<int64_t>();
    r.hash = j.at("hash").get<uint32_t>();
    r.base = j.at("base").get<std::string>();
    r.unix_nanos = j.at("unix_nanos").get<int64_t>();
  } catch (const std::exception& e) {
    return CorruptionError("archive: object " + std::string(object) + ": bad HashKV record: " +
                           e.what());
  }
  uint64_t tl = 0, index = 0;
  int64_t rev = 0;
  if (ParseHashKVName(object, &tl, &index, &rev) &&
      (tl != r.timeline || index != r.index || rev != r.revision)) {
    return CorruptionError("archive: object " + std::string(object) +
                           ": HashKV record does not match its name (index " +
                           std::to_string(r.index) + ", revision " + std::to_string(r.revision) +
                           ")");
  }
  return r;
}

Result<RestoreResult> Restore(ObjectStore* store, uint64_t timeline, const RestoreTarget& target,
                              RestoreSink* sink,
                              const std::function<void(const std::string&)>& log,
                              const std::function<void(const RestoreProgress&)>& progress,
                              const std::string& spool_dir) {
  auto say = [&](const std::string& m) {
    if (log) log(m);
  };
  TM_ASSIGN_OR_RETURN(Catalog cat, LoadCatalog(store, timeline));
  const std::string where = "archive " + store->url() + " timeline " + TimelineHex(timeline);
  // 1. Newest base at or before the target.
  const BaseRef* base = nullptr;
  for (const auto& b : cat.bases) {
    bool fits = true;
    if (target.kind == RestoreTarget::Kind::kRevision) fits = b.revision <= target.revision;
    if (target.kind == RestoreTarget::Kind::kTime) {
      fits = (b.unix_ms + 1) * 1000000 - 1 <= target.unix_nanos;
    }
    if (target.kind == RestoreTarget::Kind::kIndex) fits = b.index <= target.index;
    if (target.max_index != 0 && b.index > target.max_index) fits = false;
    if (fits) base = &b;
  }
  if (base == nullptr && target.kind != RestoreTarget::Kind::kLatest) {
    // Before this timeline's window: the lineage's earlier states live in the
    // parent timeline, up to the index where this timeline left it.
    auto info = LoadTimelineInfo(store, timeline);
    if (info.ok() && info->parent != 0) {
      RestoreTarget up = target;
      up.max_index = target.max_index != 0 ? std::min(target.max_index, info->parent_index)
                                           : info->parent_index;
      say("the target is before the first base of timeline " + TimelineHex(timeline) +
          ": restoring from its parent timeline " + TimelineHex(info->parent) +
          ", at most through index " + std::to_string(up.max_index));
      return Restore(store, info->parent, up, sink, log, progress, spool_dir);
    }
  }
  if (base == nullptr) {
    if (cat.bases.empty()) return NotFoundError(where + " holds no base snapshot");
    const BaseRef& first = cat.bases.front();
    return OutOfRangeError("restore: the target is before the restorable window of " + where +
                           ", which starts at revision " + std::to_string(first.revision) +
                           " / " + FormatRfc3339(first.unix_ms * 1000000) + " (base " +
                           first.name + ")");
  }
  // The base: checked whole (SHA-256, header) before anything reaches the
  // sink, then decompressed into it as it is read. Memory stays bounded.
  RestoreResult r;
  {
    TM_ASSIGN_OR_RETURN(LocalObject obj,
                        OpenLocalObject(store, base->name, spool_dir, base->size));
    TM_ASSIGN_OR_RETURN(CheckedBase checked, CheckBaseFile(base->name, obj.fd()));
    const BaseHeader& h = checked.header;
    if (h.index != base->index || h.revision != base->revision || h.timeline != timeline) {
      return CorruptionError("archive: object " + base->name +
                             ": header does not match its name (renamed or misplaced base)");
    }
    r.timeline = timeline;
    r.base = base->name;
    r.base_index = base->index;
    r.last_index = base->index;
    r.last_commit_unix_nanos = h.unix_nanos;
    r.bytes_fetched = checked.size;
    say("loading base " + base->name);
    BaseBodyReader body(base->name, obj.fd(), h);
    TM_RETURN_IF_ERROR(sink->LoadBase(h, &body));
    TM_RETURN_IF_ERROR(body.Finish());
  }

  auto reached = [&](const wal::Entry* next) {
    if (target.max_index != 0 &&
        (next != nullptr ? next->index > target.max_index : r.last_index >= target.max_index)) {
      return true;  // where the lineage left this timeline
    }
    switch (target.kind) {
      case RestoreTarget::Kind::kLatest: return false;
      case RestoreTarget::Kind::kRevision: return sink->current_revision() >= target.revision;
      case RestoreTarget::Kind::kTime: return next != nullptr && next->unix_nanos > target.unix_nanos;
      case RestoreTarget::Kind::kIndex:
        return next != nullptr ? next->index > target.index : r.last_index >= target.index;
    }
    return false;
  };
  if (target.kind == RestoreTarget::Kind::kRevision && sink->current_revision() > target.revision) {
    return InternalError("restore: base revision above target");
  }

  // A target past `next` that lies in a recorded gap (entries never archived).
  auto in_gap = [&](uint64_t next_index) -> Status {
    for (const auto& g : cat.gaps) {
      if (g.from <= next_index && next_index <= g.to) {
        return OutOfRangeError("restore: the target lies in a recorded gap of " + where +
                               ": entries " + Range(g.from, g.to) + " were never archived (" +
                               g.name + "); restore to a point after index " +
                               std::to_string(g.to) + " (restorable from base " +
                               [&] {
                                 for (const auto& b : cat.bases) {
                                   if (b.index >= g.to) return b.name;
                                 }
                                 return std::string("none yet");
                               }() +
                               ") or before index " + std::to_string(g.from) + " instead");
      }
    }
    return Status::Ok();
  };

  // 2. Chunks from base.index + 1, contiguous and chained.
  uint64_t next = base->index + 1;
  std::optional<Digest> prev_digest;
  std::string prev_name;
  bool done = reached(nullptr);
  size_t i = 0;
  // Skip chunks wholly covered by the base (chunk i ends before chunk i+1).
  while (i + 1 < cat.chunks.size() && cat.chunks[i + 1].first <= next) ++i;
  std::vector<std::string> to_fetch;
  for (size_t k = i; k < cat.chunks.size(); ++k) to_fetch.push_back(cat.chunks[k].name);
  BasicPrefetcher<FetchedChunk> prefetch(
      std::move(to_fetch), [store](const std::string& name) -> Result<FetchedChunk> {
        TM_ASSIGN_OR_RETURN(std::string bytes, store->Get(name));
        FetchedChunk f;
        f.size = bytes.size();
        TM_ASSIGN_OR_RETURN(f.chunk, DecodeChunk(name, bytes));
        return f;
      },
      [](const FetchedChunk& f) {
        // The decoded entries (about the raw body) are what stays in memory.
        return f.chunk.header.raw_bytes + 64 * f.chunk.entries.size();
      });
  const size_t first_chunk = i;
  // Planned work for progress: through the end of the archive (the last
  // chunk's last index is only in its header; the manifest's index, or the
  // last chunk's first index, is a close lower bound until it is fetched).
  RestoreProgress prog;
  {
    uint64_t end = std::max(cat.manifest_archived_index,
                            cat.chunks.empty() ? 0 : cat.chunks.back().first);
    if (target.kind == RestoreTarget::Kind::kIndex) end = std::min(end, target.index);
    prog.entries_total = end > base->index ? end - base->index : 0;
  }
  auto report = [&](bool done_now) {
    if (!progress) return;
    prog.entries = r.entries;
    prog.chunks = r.chunks;
    prog.bytes_fetched = r.bytes_fetched;
    prog.done = done_now;
    if (prog.entries > prog.entries_total) prog.entries_total = prog.entries;
    progress(prog);
  };
  report(false);
  for (; i < cat.chunks.size() && !done; ++i) {
    const ChunkRef& c = cat.chunks[i];
    if (c.first > next) {
      TM_RETURN_IF_ERROR(in_gap(next));
      return CorruptionError("restore: chunk missing in " + where + ": no object holds entries " +
                             Range(next, c.first - 1) + " (after " +
                             (prev_name.empty() ? base->name : prev_name) + ", before " + c.name +
                             ")");
    }
    if (!prev_name.empty() && c.first != next) {
      return CorruptionError("restore: duplicate or overlapping chunks in " + where + ": " +
                             prev_name + " and " + c.name);
    }
    TM_ASSIGN_OR_RETURN(FetchedChunk fetched, prefetch.Take(i - first_chunk));
    r.bytes_fetched += fetched.size;
    DecodedChunk& d = fetched.chunk;
    if (d.header.first_index != c.first || d.header.timeline != timeline) {
      return CorruptionError("archive: object " + c.name + " holds entries " +
                             Range(d.header.first_index, d.header.last_index) +
                             " of timeline " + TimelineHex(d.header.timeline) +
                             ", not what its name says (reordered, renamed or duplicated chunk)");
    }
    if (prev_digest) {
      if ((d.header.flags & kChunkFlagChainStart) != 0 || d.header.prev_digest != *prev_digest) {
        return CorruptionError("archive: object " + c.name +
                               ": hash chain broken (its prev_digest does not match " +
                               prev_name + "): reordered, replaced or foreign chunk");
      }
    }
    for (const auto& e : d.entries) {
      if (e.index < next) continue;
      if (reached(&e)) {
        done = true;
        break;
      }
      TM_RETURN_IF_ERROR(sink->Apply(e));
      r.last_index = e.index;
      r.last_commit_unix_nanos = e.unix_nanos;
      ++r.entries;
      next = e.index + 1;
      if ((r.entries & 4095) == 0) report(false);
      if (reached(nullptr)) {
        done = true;
        break;
      }
    }
    next = std::max(next, d.header.last_index + 1);
    prev_digest = d.digest;
    prev_name = c.name;
    ++r.chunks;
    if (i + 1 == cat.chunks.size()) {
      // The true end of the archive is now known.
      uint64_t end = d.header.last_index;
      if (target.kind == RestoreTarget::Kind::kIndex) end = std::min(end, target.index);
      prog.entries_total = end > base->index ? end - base->index : 0;
    }
    report(false);
    if (r.chunks % 100 == 0) say("replayed " + std::to_string(r.chunks) + " chunks");
  }
  // Stopped before the target, at a recorded gap with no chunk after it yet.
  if (!done && target.kind != RestoreTarget::Kind::kLatest) TM_RETURN_IF_ERROR(in_gap(next));
  if (!done && r.last_index < cat.manifest_archived_index) {
    return CorruptionError("restore: chunks missing at the end of " + where +
                           ": its manifest records entries archived through index " +
                           std::to_string(cat.manifest_archived_index) + " (" +
                           cat.manifest_last_chunk + ") but the chunks end at index " +
                           std::to_string(r.last_index));
  }
  if (target.kind == RestoreTarget::Kind::kRevision && sink->current_revision() < target.revision) {
    return OutOfRangeError("restore: revision " + std::to_string(target.revision) +
                           " is beyond the end of " + where + " (last archived revision " +
                           std::to_string(sink->current_revision()) + " at index " +
                           std::to_string(r.last_index) + ")");
  }
  if (target.kind == RestoreTarget::Kind::kIndex && r.last_index < target.index) {
    return OutOfRangeError("restore: index " + std::to_string(target.index) +
                           " is beyond the end of " + where + " (chunks end at index " +
                           std::to_string(r.last_index) + ")");
  }
  prog.entries_total = r.entries;
  report(true);
  return r;
}

Result<VerifyReport> Verify(ObjectStore* store, uint64_t timeline, bool deep,
                            const std::string& spool_dir) {
  TM_ASSIGN_OR_RETURN(Catalog cat, LoadCatalog(store, timeline));
  VerifyReport rep;
  for (const auto& u : cat.unknown) rep.problems.push_back("unexpected object " + u);
  for (const auto& g : cat.gaps) {
    rep.gaps.push_back("recorded gap: entries " + Range(g.from, g.to) + " were never archived (" +
                       g.name + ")");
  }
  for (const auto& b : cat.bases) {
    ++rep.bases;
    // Read as a restore reads it: bounded memory, whatever its size.
    auto obj = OpenLocalObject(store, b.name, spool_dir, b.size);
    if (!obj.ok()) {
      rep.problems.push_back(obj.status().message());
      continue;
    }
    struct stat st;
    if (::fstat(obj->fd(), &st) == 0) rep.bytes += static_cast<uint64_t>(st.st_size);
    auto d = CheckBaseFile(b.name, obj->fd());
    Status body;
    if (d.ok() && deep) {
      BaseBodyReader reader(b.name, obj->fd(), d->header);
      body = reader.Finish();
    }
    if (!d.ok()) {
      rep.problems.push_back(d.status().message());
    } else if (!body.ok()) {
      rep.problems.push_back(body.message());
    } else if (d->header.index != b.index || d->header.revision != b.revision ||
               d->header.timeline != timeline) {
      rep.problems.push_back("object " + b.name + ": header does not match its name");
    }
  }
  if (cat.bases.empty()) rep.problems.push_back("timeline holds no base snapshot");
  for (const auto& h : cat.hashes) {
    ++rep.hashkv_records;
    auto bytes = store->Get(h.name);
    if (!bytes.ok()) {
      rep.problems.push_back(bytes.status().message());
      continue;
    }
    auto rec = DecodeHashKVRecord(h.name, *bytes);
    if (!rec.ok()) rep.problems.push_back(rec.status().message());
  }
  std::optional<Digest> prev;  // digest of the previous chunk, if it decoded
  std::string prev_name;
  uint64_t prev_last = 0;  // last index of the previous chunk (0: none / unknown)
  std::vector<std::string> names;
  for (const auto& c : cat.chunks) names.push_back(c.name);
  Prefetcher prefetch(store, std::move(names));
  size_t k = 0;
  for (const auto& c : cat.chunks) {
    ++rep.chunks;
    if (!prev_name.empty() && prev_last != 0) {
      if (c.first <= prev_last) {
        rep.problems.push_back("duplicate/overlapping chunks: " + prev_name + " and " + c.name);
      } else if (c.first != prev_last + 1 &&
                 std::any_of(cat.gaps.begin(), cat.gaps.end(), [&](const Catalog::Gap& g) {
                   return g.from <= prev_last + 1 && c.first <= g.to + 1;
                 })) {
        prev.reset();  // recorded gap: the chain restarts after it
      } else if (c.first != prev_last + 1) {
        rep.problems.push_back("chunk missing: no object holds entries " +
                               Range(prev_last + 1, c.first - 1) + " (between " + prev_name +
                               " and " + c.name + ")");
        prev.reset();
      }
    }
    const bool contiguous = !prev_name.empty() && prev_last != 0 && c.first == prev_last + 1;
    prev_name = c.name;
    auto bytes = prefetch.Take(k++);
    if (!bytes.ok()) {
      rep.problems.push_back(bytes.status().message());
      prev.reset();
      prev_last = 0;
      continue;
    }
    rep.bytes += bytes->size();
    auto d = DecodeChunk(c.name, *bytes, deep);
    if (!d.ok()) {
      rep.problems.push_back(d.status().message());
      prev.reset();
      prev_last = 0;
      continue;
    }
    rep.entries += d->header.entry_count;
    if (d->header.first_index != c.first || d->header.timeline != timeline) {
      rep.problems.push_back("object " + c.name + " holds entries " +
                             Range(d->header.first_index, d->header.last_index) +
                             ", not what its name says (reordered, renamed or duplicated chunk)");
    } else if (prev && contiguous &&
               ((d->header.flags & kChunkFlagChainStart) != 0 || d->header.prev_digest != *prev)) {
      rep.problems.push_back("hash chain broken at " + c.name +
                             " (its prev_digest does not match the previous chunk)");
    } else if (&c == &cat.chunks.front() && (d->header.flags & kChunkFlagChainStart) == 0) {
      bool covered = !cat.bases.empty() && cat.bases.front().index + 1 >= c.first;
      if (!covered) {
        rep.problems.push_back("object " + c.name +
                               " continues a chain whose earlier chunks are missing");
      }
    }
    (void)ZeroDigest;
    prev = d->digest;
    prev_last = d->header.first_index == c.first ? d->header.last_index : 0;
  }
  // Entries up to the newest base are covered by it (a timeline whose
  // manifest only records its first base has no chunk yet).
  const uint64_t covered = std::max(prev_last, cat.bases.empty() ? 0 : cat.bases.back().index);
  if (covered < cat.manifest_archived_index) {
    rep.problems.push_back("chunks missing at the end: the manifest records entries archived "
                           "through index " + std::to_string(cat.manifest_archived_index) + " (" +
                           cat.manifest_last_chunk + ") but the last chunk ends at " +
                           std::to_string(prev_last));
  }
  return rep;
}

}  // namespace tidemark::archive
