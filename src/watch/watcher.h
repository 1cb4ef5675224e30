#pragma once
// watch::Watcher: the hub's per-watcher state, kept small (an idle watcher
// is this object plus about two bucket slots; docs/design/watch.md). Owned
// by the Hub (new/delete); all fields guarded by the hub's mutex.

#include <cstdint>
#include <string>
#include <string_view>

#include "mvcc/types.h"
#include "watch/key_index.h"

namespace tidemark::watch {

class Stream;

// Hub-owned per-watcher state (kept small: see docs/design/watch.md).
class Watcher {
 public:
  Stream* stream = nullptr;
  std::string range;  // key bytes followed by range_end bytes
  int64_t id = 0;
  int64_t next_rev = 0;      // first revision not yet queued for the client
  Watcher* next_in_bucket = nullptr;  // KeyIndex chain (synced single-key)
  Watcher* next_in_stream = nullptr;  // IdIndex chain (Stream::watchers)
  int32_t last_sent = 0;  // Hub::Ticks() of the last response queued (0.1 s)
  uint32_t key_len = 0;
  uint32_t slot = 0;  // index in Hub::range_watchers_ while synced
  uint8_t flags = 0;

  enum : uint8_t {
    kPrevKv = 1,
    kNoPut = 2,
    kNoDelete = 4,
    kProgress = 8,
    kFragment = 16,
    kSynced = 32,
    kSingleKey = 64,
  };
  std::string_view key() const { return std::string_view(range).substr(0, key_len); }
  std::string_view range_end() const { return std::string_view(range).substr(key_len); }
  bool Matches(const std::string& k) const;
  bool Wants(const mvcc::Event& e) const;
};

inline std::string_view WatcherKey(const Watcher* w) { return w->key(); }
inline int64_t WatcherId(const Watcher* w) { return w->id; }
using KeyIndex = IntrusiveIndex<std::string_view, &WatcherKey, &Watcher::next_in_bucket>;
using IdIndex = IntrusiveIndex<int64_t, &WatcherId, &Watcher::next_in_stream>;

}  // namespace tidemark::watch
