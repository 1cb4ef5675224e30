#pragma once
// Glue between the server and src/archive (docs/design/archive.md):
//   * the archive runtime of a serving process (archiver thread, base
//     snapshots from storage, pipeline gates, metrics, spool admission);
//   * `tidemark restore`, which rebuilds a data dir from an archive by
//     loading a base and replaying chunks through the server's own Applier
//     (so revisions are identical).
//
// Threads: OpenArchive/StartArchive/StopArchive from the thread that runs
// Server::Open/Start/Shutdown; AdmitArchive and RefreshArchiveGauges from
// any thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "archive/catalog.h"
#include "base/status.h"

namespace tidemark::server {

struct Core;
struct ArchiveRuntime;

// Opens the archive target named by core->options.archive_url (no-op when
// empty), creating or reading <data-dir>/archive.json (the timeline of this
// data dir). Call after the pipeline recovered, before StartArchive.
Status OpenArchive(Core* core);
// Wires the pipeline gates and starts the archiver. Before Pipeline::Start.
void StartArchive(Core* core);
// Ships everything committed within options.archive_shutdown_timeout_ms
// and stops the archiver. Call after Pipeline::Stop. Returns an error that
// says exactly what was not shipped.
Status StopArchive(Core* core);
// Refuses writes once more than --archive-spool-limit bytes are unshipped.
Status AdmitArchive(const Core* core);
void RefreshArchiveGauges(Core* core);
// Store revisions applied but not yet archived (tidemark_archive_lag_revisions).
// Exact for everything applied since this process started archiving; for an
// older unarchived backlog (after a restart) an upper bound.
int64_t ArchiveLagRevisions(Core* core);

// `tidemark restore`.
struct RestoreRequest {
  std::string archive_url;
  std::string data_dir;
  archive::RestoreTarget target;
  std::optional<uint64_t> timeline;  // default: the newest timeline
  // etcdutl's --bump-revision N --mark-compacted (both or neither): after the
  // replay the revision jumps by N and becomes the compaction point.
  int64_t bump_revision = 0;
  bool mark_compacted = false;
  archive::ObjectStoreOptions store_options;  // S3 endpoint/region/credentials
  // Progress lines (default: JSON log lines) and progress numbers (default: none).
  std::function<void(const std::string&)> log;
  std::function<void(const archive::RestoreProgress&)> progress;
};
struct RestoreSummary {
  archive::RestoreResult result;
  int64_t revision = 0;
  uint64_t keys = 0;
  uint64_t new_timeline = 0;
  double seconds = 0;
};
Result<RestoreSummary> RestoreDataDir(const RestoreRequest& request);

// `tidemark archive verify --deep`: for every HashKV record of the timeline,
// restores a fresh store (in scratch_root/hashkv-<index>, removed after) to
// exactly the record's index and compares its HashKV, revision and compact
// revision with the recorded ones. Per-record problems are in the result;
// an error only if the archive cannot be listed or the scratch dir created.
struct HashKVCheck {
  std::string object;
  uint64_t index = 0;
  int64_t revision = 0;
  uint32_t recorded = 0;
  int64_t recorded_compact = -1;
  uint32_t restored = 0;
  int64_t restored_revision = 0;
  int64_t restored_compact = -1;
  std::string problem;  // empty: matches
};
Result<std::vector<HashKVCheck>> CheckArchiveHashKV(archive::ObjectStore* store, uint64_t timeline,
                                                    const std::string& scratch_root);

}  // namespace tidemark::server
