#pragma once
// KvView: the key space as of one revision, read from the kv CF.
//
// For each user key the version visible at revision R is the first kv CF
// entry at or after KvKey(key, R) that still has the key's prefix: versions
// are stored newest first. A tombstone there means the key does not exist
// at R. No in-memory index is involved.
//
// Thread safety: immutable; Scan/Get may run concurrently from any thread.
// Ownership: `engine` and `snapshot` (nullable) must outlive the view.
// Consistency: with a snapshot every call sees the same data; without one,
// each call reads an implicit snapshot of its own. Either way entries newer
// than `revision` are ignored, so concurrent commits are invisible. The
// caller must have checked `revision` against the compact revision (see
// docs/design/mvcc.md for the required order).

#include <functional>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "mvcc/types.h"
#include "storage/engine.h"

namespace tidemark::mvcc {

class KvView {
 public:
  enum class Mode {
    kFull,      // key, revisions, version, lease and value
    kKeysOnly,  // like kFull but value left empty
    kCountOnly  // the visitor only learns that a live key exists (empty KeyValue)
  };
  // Returns false to stop the scan early.
  using Visitor = std::function<bool(KeyValue&&)>;

  KvView(const storage::Engine* engine, const storage::Snapshot* snapshot, int64_t revision)
      : engine_(engine), snapshot_(snapshot), revision_(revision) {}

  int64_t revision() const { return revision_; }

  // Visits, in ascending key order, every key live at revision() in the etcd
  // range (key, range_end): range_end empty = just `key`; "\0" = all keys >=
  // key; otherwise [key, range_end). kCorruption on undecodable entries;
  // storage errors as returned by the engine.
  Status Scan(std::string_view key, std::string_view range_end, Mode mode,
              const Visitor& visit) const;

  // The version of `key` live at revision(); nullopt if absent or deleted.
  Result<std::optional<KeyValue>> Get(std::string_view key) const;

 private:
  const storage::Engine* engine_;
  const storage::Snapshot* snapshot_;
  int64_t revision_;
};

// True if `k` lies in the etcd range (key, range_end) (conventions above).
bool InRange(std::string_view k, std::string_view key, std::string_view range_end);

}  // namespace tidemark::mvcc
