#pragma once
// Writes a consistent logical snapshot of the whole store (every column
// family at one storage snapshot) to a file, in the format of
// docs/formats/snapshot.md:
//
//   "TMSNAP01" | records... | end record | zero padding to a multiple of 512
//
// Maintenance.Snapshot streams that file followed by the SHA-256 of its
// bytes, which is what `etcdctl snapshot save` checks (size % 512 == 32).
//
// WriteSnapshot produces the same bytes as a stream of pieces (for archive
// base snapshots, which are compressed as they are produced), holding at most
// one piece (~1 MiB, or one record if larger) in memory.
//
// Thread-safety: both may run on any thread, concurrently with writes (they
// read one storage snapshot).

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/engine.h"

namespace tidemark::server {

struct SnapshotInfo {
  uint64_t bytes = 0;          // file size (a multiple of 512)
  uint64_t records = 0;
  std::string sha256;          // 32 raw bytes over the whole file
};

Result<SnapshotInfo> WriteSnapshotFile(storage::Engine* engine, const std::string& path);

// Receives the stream in order; an error aborts the snapshot and is returned.
using SnapshotOut = std::function<Status(std::string_view piece)>;
// Sees each record (column family id, key, value) as it is written.
using SnapshotRecordObserver =
    std::function<void(uint8_t cf, std::string_view key, std::string_view value)>;
// The snapshot stream (magic, records, end record, padding; no SHA-256:
// info.sha256 stays empty) into `out`.
Result<SnapshotInfo> WriteSnapshot(storage::Engine* engine, const SnapshotOut& out,
                                   const SnapshotRecordObserver& on_record = {});

}  // namespace tidemark::server
