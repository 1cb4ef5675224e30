#pragma once
// storage::Iterator and storage::Snapshot: ordered reads over one CF.
//
// Keys compare as unsigned byte strings. An Iterator reads a consistent view:
// the snapshot it was created with, or an implicit snapshot taken when it was
// created. Both must be destroyed before their Engine is closed.
// Thread safety: an Iterator is used by one thread at a time. A Snapshot is
// immutable and may be shared across threads.

#include <memory>
#include <string_view>

#include "base/status.h"

namespace tidemark::storage {

class Engine;

class Snapshot {
 public:
  struct Rep;
  explicit Snapshot(std::unique_ptr<Rep> rep);
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  Snapshot(Snapshot&&) = delete;
  Snapshot& operator=(Snapshot&&) = delete;
  Rep* rep() const { return rep_.get(); }

 private:
  std::unique_ptr<Rep> rep_;
};

class Iterator {
 public:
  struct Rep;
  explicit Iterator(std::unique_ptr<Rep> rep);
  ~Iterator();
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;
  Iterator(Iterator&&) = delete;
  Iterator& operator=(Iterator&&) = delete;

  // False at either end or after an error (check status()).
  bool Valid() const;
  void SeekToFirst();
  void SeekToLast();
  // First key >= target.
  void Seek(std::string_view target);
  // Last key <= target.
  void SeekForPrev(std::string_view target);
  void Next();  // requires Valid()
  void Prev();  // requires Valid()
  // Valid until the next positioning call. Require Valid().
  std::string_view key() const;
  std::string_view value() const;
  // kIoError/kCorruption if reading failed; OK at a clean end.
  Status status() const;

 private:
  std::unique_ptr<Rep> rep_;
};

}  // namespace tidemark::storage
