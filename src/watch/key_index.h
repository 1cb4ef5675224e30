#pragma once
// watch::IntrusiveIndex: a chained hash table whose chain pointer lives in
// the Watcher itself, so an indexed watcher costs one pointer in itself plus
// about one bucket slot -- no node allocation (docs/design/watch.md, memory
// per watcher). Two instances exist: synced single-key watchers by key
// (KeyIndex) and a stream's watchers by watch ID (IdIndex).
//
// Not thread-safe: the hub's mutex guards every instance.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace tidemark::watch {

class Watcher;

// KeyOf(w) gives the key; Next is the Watcher's chain pointer member.
template <typename Key, Key (*KeyOf)(const Watcher*), Watcher* Watcher::*Next>
class IntrusiveIndex {
 public:
  // `w` must not be in the index; its key must not change while it is.
  void Insert(Watcher* w) {
    if (size_ >= 2 * buckets_.size()) Grow();  // load factor <= 2: chains stay short
    Watcher*& head = buckets_[Bucket(KeyOf(w))];
    w->*Next = head;
    head = w;
    ++size_;
  }
  // No-op if `w` is not in the index.
  void Remove(Watcher* w) {
    if (buckets_.empty()) return;
    for (Watcher** p = &buckets_[Bucket(KeyOf(w))]; *p != nullptr; p = &((*p)->*Next)) {
      if (*p == w) {
        *p = w->*Next;
        w->*Next = nullptr;
        --size_;
        return;
      }
    }
  }
  // Calls f(Watcher*) for every watcher with exactly `key`; f must not
  // modify the index.
  template <typename F>
  void ForEach(Key key, F&& f) const {
    if (buckets_.empty()) return;
    for (Watcher* w = buckets_[Bucket(key)]; w != nullptr; w = w->*Next) {
      if (KeyOf(w) == key) f(w);
    }
  }
  Watcher* Find(Key key) const {
    Watcher* found = nullptr;
    ForEach(key, [&](Watcher* w) { found = w; });
    return found;
  }
  // Every watcher (any order); f must not modify the index.
  template <typename F>
  void ForAll(F&& f) const {
    for (Watcher* head : buckets_) {
      for (Watcher* w = head; w != nullptr; w = w->*Next) f(w);
    }
  }
  size_t size() const { return size_; }

 private:
  size_t Bucket(Key key) const { return std::hash<Key>{}(key) & (buckets_.size() - 1); }
  void Grow() {
    std::vector<Watcher*> old = std::move(buckets_);
    buckets_.assign(old.empty() ? 8 : old.size() * 2, nullptr);
    for (Watcher* head : old) {
      while (head != nullptr) {
        Watcher* next = head->*Next;
        Watcher*& b = buckets_[Bucket(KeyOf(head))];
        head->*Next = b;
        b = head;
        head = next;
      }
    }
  }

  std::vector<Watcher*> buckets_;  // size 0 or a power of two
  size_t size_ = 0;
};

}  // namespace tidemark::watch
