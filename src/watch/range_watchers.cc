#include "watch/range_watchers.h"

#include <utility>

#include <absl/hash/hash.h>

#include "base/check.h"

namespace tidemark::watch {

size_t RangeWatchers::RangeHash::operator()(const Watcher* w) const {
  return absl::HashOf(w->key(), w->range_end());
}

void RangeWatchers::Insert(Watcher* w) {
  TM_CHECK(!w->has(Watcher::kSingleKey));
  w->clear(Watcher::kHasFollowers);
  ++size_;
  auto it = by_range_.find(w);
  if (it == by_range_.end()) {
    w->set_slot(static_cast<uint32_t>(heads_.size()));
    heads_.push_back(w);
    by_range_.insert(w);
    return;
  }
  Watcher* head = *it;
  head->set(Watcher::kHasFollowers);
  std::vector<Watcher*>& f = followers_[head];
  w->set_slot(static_cast<uint32_t>(f.size()));
  f.push_back(w);
}

void RangeWatchers::Remove(Watcher* w) {
  auto it = by_range_.find(w);
  TM_CHECK(it != by_range_.end());
  Watcher* head = *it;
  --size_;
  if (head != w) {  // a follower
    auto fit = followers_.find(head);
    TM_CHECK(fit != followers_.end());
    std::vector<Watcher*>& f = fit->second;
    const uint32_t slot = w->slot();
    TM_CHECK(slot < f.size() && f[slot] == w);
    f[slot] = f.back();
    f[slot]->set_slot(slot);
    f.pop_back();
    if (f.empty()) {
      followers_.erase(fit);
      head->clear(Watcher::kHasFollowers);
    }
    return;
  }
  // The head goes: its last follower (if any) takes its place everywhere.
  const uint32_t slot = w->slot();
  TM_CHECK(slot < heads_.size() && heads_[slot] == w);
  by_range_.erase(it);
  Watcher* successor = nullptr;
  if (w->has(Watcher::kHasFollowers)) {
    auto fit = followers_.find(w);
    TM_CHECK(fit != followers_.end());
    std::vector<Watcher*> f = std::move(fit->second);
    followers_.erase(fit);
    successor = f.back();
    f.pop_back();
    successor->clear(Watcher::kHasFollowers);
    if (!f.empty()) {
      successor->set(Watcher::kHasFollowers);
      followers_.emplace(successor, std::move(f));
    }
    w->clear(Watcher::kHasFollowers);
  }
  if (successor != nullptr) {
    heads_[slot] = successor;
    successor->set_slot(slot);
    by_range_.insert(successor);
    return;
  }
  heads_[slot] = heads_.back();
  heads_[slot]->set_slot(slot);
  heads_.pop_back();
}

}  // namespace tidemark::watch
