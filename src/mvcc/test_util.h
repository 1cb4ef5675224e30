#pragma once
// Test helpers for mvcc tests: a Store on its own engine, plus one-line
// writes and reads that fail the current test on error.

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "mvcc/store.h"
#include "mvcc/types.h"
#include "mvcc/write_txn.h"
#include "storage/engine.h"

namespace tidemark::mvcc {
// Readable gtest failure output.
void PrintTo(const KeyValue& kv, std::ostream* os);
void PrintTo(const Event& e, std::ostream* os);
}  // namespace tidemark::mvcc

namespace tidemark::mvcc::testing {

class TestStore {
 public:
  // in_memory: RocksDB in-memory Env (fast); otherwise a temp directory.
  explicit TestStore(StoreOptions options = {}, bool in_memory = true);
  TestStore(const TestStore&) = delete;
  TestStore& operator=(const TestStore&) = delete;
  TestStore(TestStore&&) = delete;
  TestStore& operator=(TestStore&&) = delete;
  ~TestStore();

  Store& store() { return *store_; }
  storage::Engine& engine() { return *engine_; }

  // Clean shutdown (flush) and reopen.
  void Reopen(StoreOptions options = {});
  // Power loss: writes since the last engine flush are lost; then reopen.
  void CrashAndReopen(StoreOptions options = {});

  // One WriteTxn each; return the store's revision after the commit.
  int64_t Put(std::string_view key, std::string_view value, int64_t lease = 0);
  int64_t Delete(std::string_view key, std::string_view range_end = {});
  int64_t Compact(int64_t rev);

  RangeResult Range(const RangeRequest& req);
  RangeResult Range(std::string_view key, std::string_view range_end = {}, int64_t rev = 0);
  std::optional<KeyValue> Get(std::string_view key, int64_t rev = 0);

  // Every raw (revision, tombstone) entry of the kv CF for `key`, newest first.
  std::vector<std::pair<int64_t, bool>> RawVersions(std::string_view key);
  size_t RawKvEntries();
  size_t RawHistoryEntries();

  uint64_t NextIndex() { return ++last_index_; }

 private:
  void OpenAll(StoreOptions options);

  std::string dir_;
  std::shared_ptr<storage::Env> env_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<Store> store_;
  uint64_t last_index_ = 0;
};

std::vector<std::string> Keys(const RangeResult& r);

}  // namespace tidemark::mvcc::testing
