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
// Thread-safety: WriteSnapshotFile may run on any thread, concurrently with
// writes (it reads one storage snapshot).

#include <cstdint>
#include <string>

#include "base/status.h"
#include "storage/engine.h"

namespace tidemark::server {

struct SnapshotInfo {
  uint64_t bytes = 0;          // file size (a multiple of 512)
  uint64_t records = 0;
  std::string sha256;          // 32 raw bytes over the whole file
};

Result<SnapshotInfo> WriteSnapshotFile(storage::Engine* engine, const std::string& path);

}  // namespace tidemark::server
