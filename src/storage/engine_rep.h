#pragma once
// Private to storage/: the representation behind Engine, WriteBatch,
// Iterator and Snapshot. Includes RocksDB; never include it outside storage/.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "storage/engine.h"
#include "storage/iterator.h"
#include "storage/write_batch.h"

namespace tidemark::storage {

struct Env::Rep {
  std::unique_ptr<rocksdb::Env> env;
};

class FlushListener;

// Tracks which durability markers are covered by completed flushes.
// Thread-safe.
class MarkerTracker {
 public:
  // Records that a batch carrying `marker` became visible at or before
  // sequence number `seq`.
  void OnWrite(uint64_t seq, uint64_t marker);
  // Every write with sequence number <= `seq` is now durable.
  void OnFlushed(uint64_t seq);
  // Every write recorded so far is durable (a synchronous Flush returned).
  void OnAllFlushed(uint64_t marker_before_flush);
  uint64_t last_written() const;
  uint64_t durable() const { return durable_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::deque<std::pair<uint64_t, uint64_t>> pending_;  // (seq, marker), seq ascending
  uint64_t last_written_ = 0;
  std::atomic<uint64_t> durable_{0};
};

struct Engine::Rep {
  std::string dir;
  Options options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // indexed by ColumnFamily::id
  std::vector<std::string> names;                     // same indexing
  std::shared_ptr<FlushListener> listener;
  std::shared_ptr<MarkerTracker> markers = std::make_shared<MarkerTracker>();
  std::atomic<int64_t> live_readers{0};
  std::mutex close_mu;  // serializes Close()
  bool closed = false;

  rocksdb::ColumnFamilyHandle* handle(ColumnFamily cf) const;
};

struct WriteBatch::Rep {
  rocksdb::WriteBatch batch;
};

struct Snapshot::Rep {
  rocksdb::DB* db = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
  std::atomic<int64_t>* live_readers = nullptr;
};

struct Iterator::Rep {
  // Bounds must outlive the rocksdb iterator, which keeps Slices to them.
  std::string lower;
  std::string upper;
  rocksdb::Slice lower_slice;
  rocksdb::Slice upper_slice;
  std::unique_ptr<rocksdb::Iterator> it;
  std::atomic<int64_t>* live_readers = nullptr;
  std::string cf_name;
  std::string dir;
};

}  // namespace tidemark::storage
