#pragma once
// Plain data types of the MVCC store (no protobuf): the server converts them
// to and from etcd's mvccpb / etcdserverpb messages.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tidemark::mvcc {

// One version of a key (etcd mvccpb.KeyValue).
struct KeyValue {
  std::string key;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  std::string value;
  int64_t lease = 0;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };

// etcd RangeRequest. Range conventions (etcd-v3-api.md section 3.2):
// range_end empty = the single key; "\0" = every key >= key;
// otherwise [key, range_end). revision <= 0 = latest.
struct RangeRequest {
  std::string key;
  std::string range_end;
  int64_t limit = 0;
  int64_t revision = 0;
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_mod_revision = 0;
  int64_t max_mod_revision = 0;
  int64_t min_create_revision = 0;
  int64_t max_create_revision = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;
  // Keys in the range at the read revision, before limit and filters.
  int64_t count = 0;
  // The current revision of the view that served the read (etcd's
  // header.revision for Range: the current, not the requested, revision).
  int64_t revision = 0;
};

enum class EventType { kPut, kDelete };

// A change at one revision. For kDelete, `kv` has only key + mod_revision.
// prev_kv: the key's previous version, if it existed and is not compacted.
struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;
  std::optional<KeyValue> prev_kv;

  friend bool operator==(const Event&, const Event&) = default;
};

struct HashKVResult {
  uint32_t hash = 0;
  int64_t compact_revision = -1;  // -1 if never compacted
  int64_t hash_revision = 0;      // the revision that was hashed
};

}  // namespace tidemark::mvcc
