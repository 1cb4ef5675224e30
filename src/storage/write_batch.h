#pragma once
// storage::WriteBatch: a group of writes applied atomically by Engine::Write.
//
// Ownership: created for one Engine (it resolves column families through
// it); the engine must outlive the batch. Operations apply in the order they
// were added; a later Put of the same (cf, key) wins.
// Thread safety: not thread-safe; one owner at a time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "storage/engine.h"

namespace tidemark::storage {

class WriteBatch {
 public:
  explicit WriteBatch(const Engine* engine);
  ~WriteBatch();
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;

  void Put(ColumnFamily cf, std::string_view key, std::string_view value);
  void Delete(ColumnFamily cf, std::string_view key);
  // Deletes every key in [begin, end) of `cf`.
  void DeleteRange(ColumnFamily cf, std::string_view begin, std::string_view end);
  void Clear();

  size_t Count() const;     // number of operations
  size_t ByteSize() const;  // encoded size in bytes
  bool empty() const { return Count() == 0; }

  // A caller-defined, non-decreasing number carried by this batch (the
  // applied index, by convention). Engine::durable_marker() reports the
  // largest marker whose batch is durable. 0 = no marker.
  void set_durability_marker(uint64_t marker) { marker_ = marker; }
  uint64_t durability_marker() const { return marker_; }

  const Engine* engine() const { return engine_; }

  struct Rep;
  Rep* rep() const { return rep_.get(); }

 private:
  const Engine* engine_;
  std::unique_ptr<Rep> rep_;
  uint64_t marker_ = 0;
};

}  // namespace tidemark::storage
