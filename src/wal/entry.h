#pragma once
// wal::Entry: one logical WAL entry. The WAL treats `payload` as opaque bytes
// (the server stores an InternalRequest protobuf there).

#include <cstdint>
#include <string>

namespace tidemark::wal {

struct Entry {
  // Position in the log; contiguous (+1 per entry), starting at the WAL's
  // initial index (1 by default). 0 is never a valid index.
  uint64_t index = 0;
  // Raft term; 0 until clustering.
  uint64_t term = 0;
  // Leader's commit wall-clock time, nanoseconds since the Unix epoch (used
  // for restore-by-time). Not interpreted by the WAL.
  int64_t unix_nanos = 0;
  // Opaque request bytes, at most kMaxEntryPayload (wal/format.h).
  std::string payload;

  friend bool operator==(const Entry& a, const Entry& b) = default;
};

}  // namespace tidemark::wal
