#include "cli/archive_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "archive/catalog.h"
#include "archive/format.h"
#include "archive/object_store.h"
#include "server/archive_glue.h"

namespace tidemark::cli {
namespace {

struct State {
  // serve
  std::string interval = "1s", heartbeat = "5m", base_interval = "1h", shutdown_timeout = "5s";
  std::string hashkv_interval = "10m";
  std::string spool_limit = "8GiB";
  // restore
  CLI::App* restore = nullptr;
  std::string url, data_dir, to_time, timeline;
  int64_t to_revision = 0;
  int64_t bump_revision = 0;
  bool mark_compacted = false;
  bool latest = false;
  // archive
  CLI::App* archive = nullptr;
  CLI::App* status = nullptr;
  CLI::App* verify = nullptr;
  bool deep = false;
  std::string scratch_dir;
  std::string endpoint;
  archive::ObjectStoreOptions store_options;
  // restore / archive: --config-file and the flags that were given (for
  // precedence: flag > config file > environment).
  std::string config_file;
  struct StoreFlags {
    CLI::Option *url = nullptr, *endpoint = nullptr, *region = nullptr, *path_style = nullptr;
  };
  std::vector<std::pair<CLI::App*, StoreFlags>> store_flags;
};
State& S() {
  static State s;
  return s;
}

// "250ms", "1s", "5m", "1h", "1500" (ms) -> milliseconds.
bool ParseDurationMs(const std::string& s, int64_t* ms) {
  size_t i = 0;
  while (i < s.size() && (isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return false;
  double v = std::stod(s.substr(0, i));
  std::string unit = s.substr(i);
  double mul;
  if (unit.empty() || unit == "ms") mul = 1;
  else if (unit == "s") mul = 1000;
  else if (unit == "m") mul = 60000;
  else if (unit == "h") mul = 3600000;
  else return false;
  *ms = static_cast<int64_t>(v * mul);
  return true;
}

// "8GiB", "512MiB", "1000000" -> bytes.
bool ParseBytes(const std::string& s, int64_t* out) {
  size_t i = 0;
  while (i < s.size() && isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0) return false;
  int64_t v = std::stoll(s.substr(0, i));
  std::string unit = s.substr(i);
  int64_t mul;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "KiB" || unit == "K") mul = 1LL << 10;
  else if (unit == "MiB" || unit == "M") mul = 1LL << 20;
  else if (unit == "GiB" || unit == "G") mul = 1LL << 30;
  else return false;
  *out = v * mul;
  return true;
}

Result<uint64_t> PickTimeline(archive::ObjectStore* store, const std::string& hex) {
  if (!hex.empty()) {
    try {
      return static_cast<uint64_t>(std::stoull(hex, nullptr, 16));
    } catch (...) {
      return InvalidArgumentError("--timeline " + hex + ": expected 16 hex digits");
    }
  }
  TM_ASSIGN_OR_RETURN(auto t, archive::NewestTimeline(store));
  return t.id;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "Error: %s\n", s.message().c_str());
  return 1;
}

// restore / archive status / archive verify: fills st.url and
// st.store_options from --config-file (the serve config file works: only the
// archive-url and archive-s3-* keys are read) where no flag was given.
// Precedence: flag > config file > environment (credentials as a unit: the
// first source naming an access key id or secret provides all of them).
Status ApplyOfflineConfig(CLI::App* cmd) {
  State& st = S();
  State::StoreFlags flags;
  for (auto& [app, f] : st.store_flags) {
    if (app == cmd) flags = f;
  }
  archive::ObjectStoreOptions& so = st.store_options;
  const bool creds_from_flags =
      !so.access_key.empty() || !so.secret_key.empty() || !so.session_token.empty();
  if (!st.config_file.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(st.config_file);
    } catch (const std::exception& e) {
      return InvalidArgumentError("config-file " + st.config_file + ": " + e.what());
    }
    if (!root.IsMap()) {
      return InvalidArgumentError("config-file " + st.config_file +
                                  ": top level must be a mapping of flag names to values");
    }
    try {
      auto str = [&](const char* key, std::string* out, CLI::Option* flag) {
        if (root[key] && (flag == nullptr || flag->count() == 0)) *out = root[key].as<std::string>();
      };
      str("archive-url", &st.url, flags.url);
      str("archive-s3-endpoint", &so.s3_endpoint, flags.endpoint);
      str("archive-s3-region", &so.s3_region, flags.region);
      if (root["archive-s3-path-style"] && (flags.path_style == nullptr || flags.path_style->count() == 0)) {
        so.s3_path_style = root["archive-s3-path-style"].as<bool>();
      }
      if (!creds_from_flags) {
        if (root["archive-s3-access-key-id"]) so.access_key = root["archive-s3-access-key-id"].as<std::string>();
        if (root["archive-s3-secret-access-key"]) so.secret_key = root["archive-s3-secret-access-key"].as<std::string>();
        if (root["archive-s3-session-token"]) so.session_token = root["archive-s3-session-token"].as<std::string>();
      }
    } catch (const std::exception& e) {
      return InvalidArgumentError("config-file " + st.config_file + ": " + e.what());
    }
  }
  if (st.url.empty()) {
    return InvalidArgumentError("--archive-url is required (or archive-url in --config-file)");
  }
  return Status::Ok();
}

// Restore progress on a terminal (stderr a TTY only): one line redrawn at
// most every 100 ms with entries replayed / planned, rate and ETA, ended by a
// newline. Off a terminal nothing is drawn (no control characters).
class ProgressBar {
 public:
  void Label(const std::string& what) {
    std::fprintf(stderr, "\r\x1b[Krestore: %s", what.c_str());
    std::fflush(stderr);
  }

  void Update(const archive::RestoreProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!started_) {
      start_ = now;
      started_ = true;
    } else if (!p.done && now - last_ < std::chrono::milliseconds(100)) {
      return;
    }
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(p.entries) / secs : 0;
    const double frac = p.entries_total > 0
                            ? std::min(1.0, static_cast<double>(p.entries) /
                                                static_cast<double>(p.entries_total))
                            : (p.done ? 1.0 : 0.0);
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    std::string eta = "--:--";
    if (p.done) {
      eta = "done in " + Clock(secs);
    } else if (rate > 0 && p.entries_total >= p.entries) {
      eta = "ETA " + Clock(static_cast<double>(p.entries_total - p.entries) / rate);
    }
    std::fprintf(stderr, "\r\x1b[Krestore [%s] %3.0f%% %llu/%llu entries, %llu chunks, %s entries/s, %s",
                 bar.c_str(), frac * 100, static_cast<unsigned long long>(p.entries),
                 static_cast<unsigned long long>(p.entries_total),
                 static_cast<unsigned long long>(p.chunks), Si(rate).c_str(), eta.c_str());
    if (p.done) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  static std::string Clock(double secs) {
    const long long t = static_cast<long long>(secs + 0.5);
    char buf[32];
    if (t >= 3600) {
      std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    } else {
      std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
    }
    return buf;
  }
  static std::string Si(double v) {
    char buf[32];
    if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
    else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }

  bool started_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

int RunRestore() {
  State& st = S();
  if (Status s = ApplyOfflineConfig(st.restore); !s.ok()) return Fail(s);
  server::RestoreRequest req;
  req.archive_url = st.url;
  req.data_dir = st.data_dir;
  req.store_options = st.store_options;
  int targets = (st.latest ? 1 : 0) + (st.to_revision > 0 ? 1 : 0) + (!st.to_time.empty() ? 1 : 0);
  if (targets > 1) {
    std::fprintf(stderr, "Error: give at most one of --latest, --to-revision, --to-time\n");
    return 2;
  }
  if (st.to_revision > 0) {
    req.target.kind = archive::RestoreTarget::Kind::kRevision;
    req.target.revision = st.to_revision;
  } else if (!st.to_time.empty()) {
    auto t = archive::ParseRfc3339(st.to_time);
    if (!t.ok()) return Fail(t.status());
    req.target.kind = archive::RestoreTarget::Kind::kTime;
    req.target.unix_nanos = *t;
  }
  if (st.bump_revision < 0 || (st.bump_revision > 0) != st.mark_compacted) {
    std::fprintf(stderr,
                 "Error: --mark-compacted is required with --bump-revision N (N > 0) and not "
                 "allowed without it (as in etcdutl)\n");
    return 2;
  }
  req.bump_revision = st.bump_revision;
  req.mark_compacted = st.mark_compacted;
  if (!st.timeline.empty()) {
    try {
      req.timeline = std::stoull(st.timeline, nullptr, 16);
    } catch (...) {
      std::fprintf(stderr, "Error: --timeline %s: expected hex\n", st.timeline.c_str());
      return 2;
    }
  }
  ProgressBar bar;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (tty) {
    // The bar replaces the JSON progress log lines on a terminal.
    req.log = [&bar](const std::string& m) { bar.Label(m); };
    req.progress = [&bar](const archive::RestoreProgress& p) { bar.Update(p); };
  }
  auto r = server::RestoreDataDir(req);
  if (!r.ok()) {
    if (tty) std::fputc('\n', stderr);
    return Fail(r.status());
  }
  const auto& x = r->result;
  std::printf("restored %s from %s\n", st.data_dir.c_str(), st.url.c_str());
  std::printf("  revision:      %lld\n", static_cast<long long>(r->revision));
  if (st.bump_revision > 0) {
    std::printf("  bumped:        +%lld from revision %lld; compacted at %lld\n",
                static_cast<long long>(st.bump_revision),
                static_cast<long long>(r->revision - st.bump_revision),
                static_cast<long long>(r->revision));
  }
  std::printf("  index:         %llu\n", static_cast<unsigned long long>(x.last_index));
  std::printf("  commit time:   %s\n", archive::FormatRfc3339(x.last_commit_unix_nanos).c_str());
  std::printf("  keys:          %llu\n", static_cast<unsigned long long>(r->keys));
  std::printf("  duration:      %.3f s\n", r->seconds);
  std::printf("  base:          %s\n", x.base.c_str());
  std::printf("  replayed:      %llu entries from %llu chunks (%.1f MiB fetched, %.0f entries/s)\n",
              static_cast<unsigned long long>(x.entries), static_cast<unsigned long long>(x.chunks),
              static_cast<double>(x.bytes_fetched) / (1 << 20),
              r->seconds > 0 ? static_cast<double>(x.entries) / r->seconds : 0.0);
  std::printf("  timeline:      %s (parent %s at index %llu)\n",
              archive::TimelineHex(r->new_timeline).c_str(),
              archive::TimelineHex(x.timeline).c_str(),
              static_cast<unsigned long long>(x.last_index));
  return 0;
}

std::string MetricValue(const std::string& body, const std::string& name) {
  size_t pos = 0;
  while ((pos = body.find(name, pos)) != std::string::npos) {
    if ((pos == 0 || body[pos - 1] == '\n') &&
        (body[pos + name.size()] == ' ' || body[pos + name.size()] == '{')) {
      size_t sp = body.find(' ', pos);
      size_t nl = body.find('\n', sp);
      return body.substr(sp + 1, nl - sp - 1);
    }
    pos += name.size();
  }
  return "?";
}

int RunStatus() {
  State& st = S();
  if (Status s = ApplyOfflineConfig(st.status); !s.ok()) return Fail(s);
  auto store = archive::OpenObjectStore(st.url, st.store_options);
  if (!store.ok()) return Fail(store.status());
  auto tl = PickTimeline(store->get(), st.timeline);
  if (!tl.ok()) return Fail(tl.status());
  auto cat = archive::LoadCatalog(store->get(), *tl);
  if (!cat.ok()) return Fail(cat.status());
  std::printf("archive:          %s\n", (*store)->url().c_str());
  std::printf("timeline:         %s\n", archive::TimelineHex(*tl).c_str());
  auto tls = archive::ListTimelines(store->get());
  if (tls.ok()) {
    for (const auto& t : *tls) {
      if (t.id != *tl) continue;
      auto j = (*store)->Get(t.name);
      if (j.ok()) std::printf("timeline record:  %s", j->c_str());
    }
  }
  std::printf("bases:            %zu\n", cat->bases.size());
  if (!cat->bases.empty()) {
    const auto& b = cat->bases.back();
    std::printf("last base:        %s (revision %lld, %s)\n", b.name.c_str(),
                static_cast<long long>(b.revision),
                archive::FormatRfc3339(b.unix_ms * 1000000).c_str());
  }
  std::printf("chunks:           %zu\n", cat->chunks.size());
  int64_t last_commit = 0;
  uint64_t last_index = 0;
  if (!cat->chunks.empty()) {
    auto bytes = (*store)->Get(cat->chunks.back().name);
    if (bytes.ok()) {
      auto d = archive::DecodeChunk(cat->chunks.back().name, *bytes, false);
      if (d.ok()) {
        last_commit = d->header.last_unix_nanos;
        last_index = d->header.last_index;
      }
    }
  }
  // The manifest (every few seconds while busy) and heartbeat (idle) say
  // when the server last reached the archive, and the archived revision.
  std::optional<archive::Manifest> manifest;
  int64_t last_heard = 0;
  if (auto m = (*store)->Get(archive::ManifestName(*tl)); m.ok()) {
    auto d = archive::DecodeManifest(archive::ManifestName(*tl), *m);
    if (d.ok()) {
      manifest = *d;
      last_heard = d->written_unix_nanos;
      if (d->archived_index >= last_index) {
        last_index = d->archived_index;
        last_commit = std::max(last_commit, d->archived_commit_unix_nanos);
      }
    }
  }
  if (auto h = (*store)->Get(archive::HeartbeatName(*tl)); h.ok()) {
    auto j = nlohmann::json::parse(*h, nullptr, false);
    if (j.is_object() && j.contains("time") && j["time"].is_string()) {
      if (auto t = archive::ParseRfc3339(j["time"].get<std::string>()); t.ok()) {
        last_heard = std::max(last_heard, *t);
      }
    }
  }
  if (!cat->bases.empty()) {
    last_heard = std::max(last_heard, cat->bases.back().unix_ms * 1000000);
    if (cat->bases.back().index > last_index) last_index = cat->bases.back().index;
  }
  if (last_index > 0) {
    std::string rev;
    if (manifest && manifest->archived_index == last_index && manifest->archived_revision > 0) {
      rev = " (revision " + std::to_string(manifest->archived_revision) + ")";
    }
    std::printf("archived through: index %llu%s, committed %s\n",
                static_cast<unsigned long long>(last_index), rev.c_str(),
                last_commit > 0 ? archive::FormatRfc3339(last_commit).c_str() : "-");
  }
  if (!cat->bases.empty()) {
    int64_t end = last_commit > 0 ? last_commit : cat->bases.back().unix_ms * 1000000;
    std::string newest_rev = "?";
    if (manifest && manifest->archived_index == last_index && manifest->archived_revision > 0) {
      newest_rev = std::to_string(manifest->archived_revision);
    } else if (cat->bases.back().index == last_index) {
      newest_rev = std::to_string(cat->bases.back().revision);
    }
    std::printf("restorable:       %s .. %s, revisions %lld .. %s%s\n",
                archive::FormatRfc3339(cat->bases.front().unix_ms * 1000000).c_str(),
                archive::FormatRfc3339(end).c_str(),
                static_cast<long long>(cat->bases.front().revision), newest_rev.c_str(),
                cat->gaps.empty() ? "" : " (except the gaps below)");
  }
  std::printf("gaps:             %zu\n", cat->gaps.size());
  for (const auto& g : cat->gaps) {
    std::printf("  gap:            entries %llu..%llu were never archived (%s)\n",
                static_cast<unsigned long long>(g.from), static_cast<unsigned long long>(g.to),
                g.name.c_str());
  }
  std::printf("hashkv records:   %zu", cat->hashes.size());
  if (!cat->hashes.empty()) {
    std::printf(" (newest: revision %lld at index %llu)",
                static_cast<long long>(cat->hashes.back().revision),
                static_cast<unsigned long long>(cat->hashes.back().index));
  }
  std::printf("\n");
  // Lag from the archive alone: how old the newest archived commit is. An
  // idle server commits nothing newer, so read it with "last heard".
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  if (last_commit > 0) {
    std::printf("archive lag:      %.3f s since the newest archived commit (from the archive "
                "alone; an idle server has no newer commit)\n",
                static_cast<double>(std::max<int64_t>(0, now - last_commit)) / 1e9);
  }
  if (last_heard > 0) {
    std::printf("last heard:       %.3f s ago (%s: newest manifest, heartbeat or base)\n",
                static_cast<double>(std::max<int64_t>(0, now - last_heard)) / 1e9,
                archive::FormatRfc3339(last_heard).c_str());
  }
  if (!st.endpoint.empty()) {
    std::string ep = st.endpoint;
    if (ep.rfind("http://", 0) == 0) ep = ep.substr(7);
    auto colon = ep.rfind(':');
    httplib::Client cli(ep.substr(0, colon), std::stoi(ep.substr(colon + 1)));
    auto res = cli.Get("/metrics");
    if (res && res->status == 200) {
      std::printf("server lag:       %s s, %s revisions\n",
                  MetricValue(res->body, "tidemark_archive_lag_seconds").c_str(),
                  MetricValue(res->body, "tidemark_archive_lag_revisions").c_str());
      std::printf("server spool:     %s bytes\n",
                  MetricValue(res->body, "tidemark_archive_spool_bytes").c_str());
    } else {
      std::printf("server:           %s unreachable\n", st.endpoint.c_str());
    }
  }
  return 0;
}

int RunVerify() {
  State& st = S();
  if (Status s = ApplyOfflineConfig(st.verify); !s.ok()) return Fail(s);
  auto store = archive::OpenObjectStore(st.url, st.store_options);
  if (!store.ok()) return Fail(store.status());
  auto tl = PickTimeline(store->get(), st.timeline);
  if (!tl.ok()) return Fail(tl.status());
  // Bases of a remote archive are downloaded (one at a time) to be checked
  // with bounded memory: into --scratch-dir if given, else $TMPDIR.
  auto rep = archive::Verify(store->get(), *tl, st.deep, st.scratch_dir);
  if (!rep.ok()) return Fail(rep.status());
  std::printf("timeline %s: %llu bases, %llu chunks, %llu entries, %.1f MiB checked%s\n",
              archive::TimelineHex(*tl).c_str(), static_cast<unsigned long long>(rep->bases),
              static_cast<unsigned long long>(rep->chunks),
              static_cast<unsigned long long>(rep->entries),
              static_cast<double>(rep->bytes) / (1 << 20), st.deep ? " (deep)" : "");
  for (const auto& g : rep->gaps) std::printf("GAP: %s\n", g.c_str());
  if (st.deep) {
    // Restore to every recorded HashKV point and compare (a scratch store each).
    std::string scratch = st.scratch_dir;
    bool made = false;
    if (scratch.empty()) {
      std::string tmpl = archive::DefaultScratchDir() + "/tidemark-verify-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) {
        return Fail(IoError("verify --deep: cannot create a scratch dir from " + tmpl));
      }
      scratch = tmpl;
      made = true;
    }
    auto checks = server::CheckArchiveHashKV(store->get(), *tl, scratch);
    if (made) ::rmdir(scratch.c_str());
    if (!checks.ok()) return Fail(checks.status());
    if (checks->empty()) {
      std::printf("HASHKV: no HashKV records in this timeline (archived before they were "
                  "recorded); restored state not compared\n");
    }
    for (const auto& c : *checks) {
      if (!c.problem.empty()) {
        rep->problems.push_back(c.problem);
      } else {
        std::printf("HASHKV OK: revision %lld (index %llu): recorded %u, restored %u\n",
                    static_cast<long long>(c.revision), static_cast<unsigned long long>(c.index),
                    c.recorded, c.restored);
      }
    }
  }
  for (const auto& p : rep->problems) std::printf("PROBLEM: %s\n", p.c_str());
  if (!rep->ok()) {
    std::printf("verify FAILED: %zu problem(s)\n", rep->problems.size());
    return 1;
  }
  std::printf("verify OK\n");
  return 0;
}

}  // namespace

void AddArchiveServeFlags(CLI::App* serve, server::ServerOptions* o) {
  State& st = S();
  serve->add_option("--archive-url", o->archive_url,
                    "Continuous archive target: file:///dir or s3://bucket/prefix");
  serve->add_option("--archive-interval", st.interval,
                    "Ship committed entries at least this often (e.g. 1s, 250ms)")
      ->default_val("1s");
  serve->add_flag("--archive-sync", o->archive_sync,
                  "Acknowledge a write only once its chunk is durable in the archive");
  serve->add_option("--archive-spool-limit", st.spool_limit,
                    "Unshipped WAL kept locally before writes are refused (e.g. 8GiB)")
      ->default_val("8GiB");
  serve->add_option("--archive-spool-policy", o->archive_spool_policy,
                    "Past the spool limit: refuse-writes, or continue (release the WAL; the "
                    "archive records a gap and a fresh base once the target is back)")
      ->default_val("refuse-writes");
  serve->add_option("--archive-shutdown-timeout", st.shutdown_timeout,
                    "On SIGTERM, how long to keep shipping before exiting non-zero")
      ->default_val("5s");
  serve->add_option("--archive-heartbeat-interval", st.heartbeat,
                    "Idle heartbeat object period")->default_val("5m");
  serve->add_option("--archive-base-interval", st.base_interval,
                    "Periodic base snapshot period")->default_val("1h");
  serve->add_option("--archive-hashkv-interval", st.hashkv_interval,
                    "Record the store's HashKV in the archive this often, besides with each "
                    "base snapshot (0 = only with bases)")->default_val("10m");
  serve->add_option("--archive-base-every-entries", o->archive_base_every_entries,
                    "Also take a base snapshot after this many entries")->default_val(1000000);
  serve->add_option("--archive-s3-endpoint", o->archive_s3_endpoint, "S3 endpoint URL");
  serve->add_option("--archive-s3-region", o->archive_s3_region, "S3 region")
      ->default_val("us-east-1");
  serve->add_option("--archive-s3-path-style", o->archive_s3_path_style,
                    "Path-style S3 addressing (endpoint/bucket/key); false = bucket.endpoint")
      ->default_val(true);
  serve->add_option("--debug-wal-release-every-entries", o->wal_release_every_entries,
                    "DEBUG: release WAL segments at most every N entries (default 100000)")
      ->group("");  // hidden
  serve->add_option("--archive-s3-access-key-id", o->archive_s3_access_key_id,
                    "S3 access key id (default: AWS_ACCESS_KEY_ID)");
  serve->add_option("--archive-s3-secret-access-key", o->archive_s3_secret_access_key,
                    "S3 secret access key (default: AWS_SECRET_ACCESS_KEY; visible in ps: "
                    "prefer the environment or the config file)");
  serve->add_option("--archive-s3-session-token", o->archive_s3_session_token,
                    "S3 session token for temporary credentials (default: AWS_SESSION_TOKEN)");
}

namespace {
void AddStoreFlags(CLI::App* cmd) {
  State& st = S();
  State::StoreFlags f;
  f.url = cmd->add_option("--archive-url", st.url, "Archive (file:///dir or s3://bucket/prefix)");
  f.endpoint = cmd->add_option("--archive-s3-endpoint", st.store_options.s3_endpoint,
                               "S3 endpoint URL");
  f.region = cmd->add_option("--archive-s3-region", st.store_options.s3_region, "S3 region")
                 ->default_val("us-east-1");
  f.path_style = cmd->add_option("--archive-s3-path-style", st.store_options.s3_path_style,
                                 "Path-style S3 addressing")->default_val(true);
  cmd->add_option("--archive-s3-access-key-id", st.store_options.access_key,
                  "S3 access key id (default: config file, then AWS_ACCESS_KEY_ID)");
  cmd->add_option("--archive-s3-secret-access-key", st.store_options.secret_key,
                  "S3 secret access key (default: config file, then AWS_SECRET_ACCESS_KEY)");
  cmd->add_option("--archive-s3-session-token", st.store_options.session_token,
                  "S3 session token (default: config file, then AWS_SESSION_TOKEN)");
  cmd->add_option("--config-file", st.config_file,
                  "YAML file (e.g. the serve config file) for archive-url and archive-s3-* "
                  "keys not given as flags");
  st.store_flags.emplace_back(cmd, f);
}
}  // namespace

bool FinishArchiveServeFlags(server::ServerOptions* o, std::string* err) {
  State& st = S();
  if (!ParseDurationMs(st.interval, &o->archive_interval_ms) || o->archive_interval_ms <= 0) {
    *err = "--archive-interval " + st.interval + ": expected a duration such as 1s or 250ms";
    return false;
  }
  if (!ParseDurationMs(st.heartbeat, &o->archive_heartbeat_ms) ||
      !ParseDurationMs(st.base_interval, &o->archive_base_interval_ms) ||
      !ParseDurationMs(st.shutdown_timeout, &o->archive_shutdown_timeout_ms) ||
      !ParseDurationMs(st.hashkv_interval, &o->archive_hashkv_interval_ms)) {
    *err = "--archive-*: bad duration (expected e.g. 5s, 5m, 1h)";
    return false;
  }
  if (!ParseBytes(st.spool_limit, &o->archive_spool_limit_bytes)) {
    *err = "--archive-spool-limit " + st.spool_limit + ": expected bytes such as 8GiB or 512MiB";
    return false;
  }
  return true;
}

bool ApplyArchiveConfigKey(const std::string& key, const YAML::Node& v, server::ServerOptions* o) {
  State& st = S();
  if (key == "archive-url") o->archive_url = v.as<std::string>();
  else if (key == "archive-interval") st.interval = v.as<std::string>();
  else if (key == "archive-sync") o->archive_sync = v.as<bool>();
  else if (key == "archive-spool-limit") st.spool_limit = v.as<std::string>();
  else if (key == "archive-spool-policy") o->archive_spool_policy = v.as<std::string>();
  else if (key == "archive-shutdown-timeout") st.shutdown_timeout = v.as<std::string>();
  else if (key == "archive-heartbeat-interval") st.heartbeat = v.as<std::string>();
  else if (key == "archive-base-interval") st.base_interval = v.as<std::string>();
  else if (key == "archive-hashkv-interval") st.hashkv_interval = v.as<std::string>();
  else if (key == "archive-base-every-entries") o->archive_base_every_entries = v.as<int64_t>();
  else if (key == "archive-s3-endpoint") o->archive_s3_endpoint = v.as<std::string>();
  else if (key == "archive-s3-region") o->archive_s3_region = v.as<std::string>();
  else if (key == "archive-s3-path-style") o->archive_s3_path_style = v.as<bool>();
  else if (key == "archive-s3-access-key-id") o->archive_s3_access_key_id = v.as<std::string>();
  else if (key == "archive-s3-secret-access-key") o->archive_s3_secret_access_key = v.as<std::string>();
  else if (key == "archive-s3-session-token") o->archive_s3_session_token = v.as<std::string>();
  else return false;
  return true;
}

void AddArchiveCommands(CLI::App* app) {
  State& st = S();
  st.restore = app->add_subcommand("restore", "Rebuild a data dir from an archive");
  st.restore->add_option("--data-dir", st.data_dir, "New data directory to create")->required();
  st.restore->add_option("--to-revision", st.to_revision, "Restore to exactly this revision");
  st.restore->add_option("--to-time", st.to_time,
                         "Restore to the last entry committed at or before this RFC 3339 time");
  st.restore->add_flag("--latest", st.latest, "Restore everything archived (the default)");
  st.restore->add_option("--timeline", st.timeline, "Timeline id (default: the newest)");
  st.restore->add_option("--bump-revision", st.bump_revision,
                         "After the replay, raise the revision by this much (as etcdutl: no "
                         "revision a client saw before is reused); needs --mark-compacted");
  st.restore->add_flag("--mark-compacted", st.mark_compacted,
                       "Make the (bumped) revision the compaction point, so watchers and caches "
                       "of older revisions re-list; required with --bump-revision > 0");
  AddStoreFlags(st.restore);

  st.archive = app->add_subcommand("archive", "Inspect an archive");
  st.archive->require_subcommand(1);
  st.status = st.archive->add_subcommand("status", "Archive state, lag and restorable window");
  st.status->add_option("--timeline", st.timeline, "Timeline id (default: the newest)");
  st.status->add_option("--endpoint", st.endpoint,
                        "Also show the server's lag and spool (http://host:port)");
  AddStoreFlags(st.status);
  st.verify = st.archive->add_subcommand("verify", "Check every object, the chain and gaps");
  st.verify->add_option("--timeline", st.timeline, "Timeline id (default: the newest)");
  st.verify->add_flag("--deep", st.deep,
                      "Also decompress and decode every object, and restore to every recorded "
                      "HashKV point to compare the restored store's HashKV");
  st.verify->add_option("--scratch-dir", st.scratch_dir,
                        "Where --deep builds its scratch stores and where bases of an S3 archive "
                        "are downloaded to be checked (default: $TMPDIR)");
  AddStoreFlags(st.verify);
}

bool RunArchiveCommands(int* rc) {
  State& st = S();
  if (st.restore && st.restore->parsed()) {
    *rc = RunRestore();
    return true;
  }
  if (st.status && st.status->parsed()) {
    *rc = RunStatus();
    return true;
  }
  if (st.verify && st.verify->parsed()) {
    *rc = RunVerify();
    return true;
  }
  return false;
}

}  // namespace tidemark::cli
