#pragma once
// watch::RangeWatchers: the hub's synced range watchers (prefix, [key,
// range_end), from-key), grouped by identical range. Fan-out tests an event's
// key once per DISTINCT range, then hands the event to every watcher of the
// groups that hold it: many watchers of a few prefixes (caches and informers
// of one key space) cost one comparison per prefix, not one per watcher.
// Distinct ranges are still scanned linearly (docs/design/watch.md).
//
// Layout (memory per watcher matters, see HubTest.MemoryPerIdle*): the first
// watcher of a range is its group's *head*, kept in `heads_` (its slot is its
// index there) and in a flat hash set keyed by range; later watchers of the
// same range are *followers* in a vector owned by the head's entry in
// `followers_` (their slot is their index in it). A range with one watcher
// costs ~8 B in heads_ plus ~10 B of hash set; a follower 8 B.
//
// Thread-safety: none; the Hub guards it with its mutex. Ownership: the
// watchers are the Hub's; this only points at them. Insert/Remove are O(1)
// on average (Remove of a head with followers re-keys its follower vector).

#include <cstddef>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "watch/watcher.h"

namespace tidemark::watch {

class RangeWatchers {
 public:
  // `w` is a range watcher (not kSingleKey) not already a member.
  void Insert(Watcher* w);
  // `w` is a member.
  void Remove(Watcher* w);

  // Calls f(Watcher*) for every member whose range holds `key`.
  template <typename F>
  void ForEachMatching(std::string_view key, F&& f) const {
    for (Watcher* h : heads_) {
      if (!h->Matches(key)) continue;
      f(h);
      if (h->has(Watcher::kHasFollowers)) {
        for (Watcher* w : followers_.find(h)->second) f(w);
      }
    }
  }
  template <typename F>
  void ForAll(F&& f) const {
    for (Watcher* h : heads_) f(h);
    for (const auto& [h, v] : followers_) {
      for (Watcher* w : v) f(w);
    }
  }

  size_t size() const { return size_; }
  size_t distinct_ranges() const { return heads_.size(); }

 private:
  // Hash and equality of watchers by range (key, range_end); transparent so
  // a member can be found from any watcher of the same range.
  struct RangeHash {
    using is_transparent = void;
    size_t operator()(const Watcher* w) const;
  };
  struct RangeEq {
    using is_transparent = void;
    bool operator()(const Watcher* a, const Watcher* b) const {
      return a->key() == b->key() && a->range_end() == b->range_end();
    }
  };

  std::vector<Watcher*> heads_;
  absl::flat_hash_set<Watcher*, RangeHash, RangeEq> by_range_;  // the heads
  absl::flat_hash_map<Watcher*, std::vector<Watcher*>> followers_;  // head -> followers
  size_t size_ = 0;
};

}  // namespace tidemark::watch
