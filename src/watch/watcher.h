#pragma once
// watch::Watcher: the hub's per-watcher state, kept small (an idle watcher
// is one 56-byte header with its key and range_end stored right after it in
// the same allocation, plus about two bucket slots; docs/design/watch.md).
// Owned by the Hub (Watcher::Create / Watcher::Destroy); all fields guarded
// by the hub's mutex.

#include <cstdint>
#include <string>
#include <string_view>

#include "mvcc/types.h"
#include "watch/key_index.h"

namespace tidemark::watch {

class Stream;

class Watcher {
 public:
  // One allocation: this header followed by key bytes then range_end bytes.
  static Watcher* Create(std::string_view key, std::string_view range_end);
  static void Destroy(Watcher* w);

  Stream* stream = nullptr;
  Watcher* next_in_bucket = nullptr;  // KeyIndex chain (synced single-key)
  Watcher* next_in_stream = nullptr;  // IdIndex chain (Stream::watchers)
  int64_t id = 0;
  int64_t next_rev = 0;   // first revision not yet queued for the client
  int32_t last_sent = 0;  // Hub::Ticks() of the last response queued (0.1 s)
  uint32_t key_len = 0;
  uint32_t end_len = 0;
  // Index in its RangeWatchers group while synced (24 bits) | flags << 24.
  uint32_t slot_flags = 0;

  enum : uint8_t {
    kPrevKv = 1,
    kNoPut = 2,
    kNoDelete = 4,
    kProgress = 8,
    kFragment = 16,
    kSynced = 32,
    kSingleKey = 64,
    kHasFollowers = 128,  // RangeWatchers: a group head with followers
  };
  static constexpr uint32_t kMaxSlot = (1u << 24) - 1;

  uint8_t flags() const { return static_cast<uint8_t>(slot_flags >> 24); }
  bool has(uint8_t f) const { return (flags() & f) != 0; }
  void set(uint8_t f) { slot_flags |= static_cast<uint32_t>(f) << 24; }
  void clear(uint8_t f) { slot_flags &= ~(static_cast<uint32_t>(f) << 24); }
  uint32_t slot() const { return slot_flags & kMaxSlot; }
  void set_slot(uint32_t s) { slot_flags = (slot_flags & ~kMaxSlot) | (s & kMaxSlot); }

  std::string_view key() const { return {bytes(), key_len}; }
  std::string_view range_end() const { return {bytes() + key_len, end_len}; }
  bool Matches(std::string_view k) const;
  // The NOPUT / NODELETE filters only (callers that already matched the key).
  bool PassesFilters(const mvcc::Event& e) const {
    return !(e.type == mvcc::EventType::kPut ? has(kNoPut) : has(kNoDelete));
  }
  bool Wants(const mvcc::Event& e) const { return PassesFilters(e) && Matches(e.kv.key); }

 private:
  Watcher() = default;
  ~Watcher() = default;
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
};
static_assert(sizeof(Watcher) == 56, "keep the watcher header small (memory per watcher)");

inline std::string_view WatcherKey(const Watcher* w) { return w->key(); }
inline int64_t WatcherId(const Watcher* w) { return w->id; }
using KeyIndex = IntrusiveIndex<std::string_view, &WatcherKey, &Watcher::next_in_bucket>;
using IdIndex = IntrusiveIndex<int64_t, &WatcherId, &Watcher::next_in_stream>;

}  // namespace tidemark::watch
