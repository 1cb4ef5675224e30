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
#include <memory>
#include <optional>
#include <string>

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

// `tidemark restore`.
struct RestoreRequest {
  std::string archive_url;
  std::string data_dir;
  archive::RestoreTarget target;
  std::optional<uint64_t> timeline;  // default: the newest timeline
  archive::ObjectStoreOptions store_options;  // S3 endpoint/region/credentials
};
struct RestoreSummary {
  archive::RestoreResult result;
  int64_t revision = 0;
  uint64_t keys = 0;
  uint64_t new_timeline = 0;
  double seconds = 0;
};
Result<RestoreSummary> RestoreDataDir(const RestoreRequest& request);

}  // namespace tidemark::server
