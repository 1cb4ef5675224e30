#include "mvcc/test_util.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "base/check.h"
#include "mvcc/codec.h"
#include "storage/iterator.h"

namespace tidemark::mvcc {

void PrintTo(const KeyValue& kv, std::ostream* os) {
  *os << "{key=\"" << codec::EscapeForLog(kv.key) << "\" create=" << kv.create_revision
      << " mod=" << kv.mod_revision << " ver=" << kv.version << " value=\""
      << codec::EscapeForLog(kv.value) << "\" lease=" << kv.lease << "}";
}

void PrintTo(const Event& e, std::ostream* os) {
  *os << (e.type == EventType::kPut ? "PUT " : "DELETE ");
  PrintTo(e.kv, os);
  if (e.prev_kv) {
    *os << " prev=";
    PrintTo(*e.prev_kv, os);
  }
}

}  // namespace tidemark::mvcc

namespace tidemark::mvcc::testing {

TestStore::TestStore(StoreOptions options, bool in_memory) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tm-mvcc-XXXXXX").string();
  if (in_memory) {
    env_ = storage::NewInMemoryEnv();
    dir_ = "/mem" + tmpl;
  } else {
    char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    dir_ = tmpl + "/db";
  }
  OpenAll(options);
}

TestStore::~TestStore() {
  store_.reset();
  if (engine_) {
    EXPECT_TRUE(engine_->Close().ok());
  }
  engine_.reset();
  if (!env_) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ec);
  }
}

void TestStore::OpenAll(StoreOptions options) {
  storage::Options eo;
  eo.env = env_;
  auto engine = storage::Engine::Open(dir_, eo);
  TM_CHECK(engine.ok());
  engine_ = std::move(engine).value();
  auto store = Store::Open(engine_.get(), options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status().ToString();
  }
  TM_CHECK(store.ok());
  store_ = std::move(store).value();
  last_index_ = store_->applied_index();
}

void TestStore::Reopen(StoreOptions options) {
  store_.reset();
  EXPECT_TRUE(engine_->Close().ok());
  engine_.reset();
  OpenAll(options);
}

void TestStore::CrashAndReopen(StoreOptions options) {
  store_.reset();
  engine_->CloseWithoutFlushForTesting();
  engine_.reset();
  OpenAll(options);
}

int64_t TestStore::Put(std::string_view key, std::string_view value, int64_t lease) {
  auto txn = store_->BeginWrite();
  auto prev = txn->Put(key, value, lease);
  EXPECT_TRUE(prev.ok()) << prev.status().ToString();
  Status s = txn->Commit(NextIndex(), nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store_->current_revision();
}

int64_t TestStore::Delete(std::string_view key, std::string_view range_end) {
  auto txn = store_->BeginWrite();
  auto deleted = txn->DeleteRange(key, range_end);
  EXPECT_TRUE(deleted.ok()) << deleted.status().ToString();
  Status s = txn->Commit(NextIndex(), nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store_->current_revision();
}

int64_t TestStore::Compact(int64_t rev) {
  Status s = store_->Compact(rev, NextIndex());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store_->compact_revision();
}

RangeResult TestStore::Range(const RangeRequest& req) {
  auto r = store_->Range(req);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : RangeResult{};
}

RangeResult TestStore::Range(std::string_view key, std::string_view range_end, int64_t rev) {
  RangeRequest req;
  req.key = key;
  req.range_end = range_end;
  req.revision = rev;
  return Range(req);
}

std::optional<KeyValue> TestStore::Get(std::string_view key, int64_t rev) {
  RangeResult r = Range(key, {}, rev);
  if (r.kvs.empty()) {
    return std::nullopt;
  }
  return r.kvs[0];
}

std::vector<std::pair<int64_t, bool>> TestStore::RawVersions(std::string_view key) {
  std::vector<std::pair<int64_t, bool>> out;
  std::string prefix = codec::KeyPrefix(key);
  auto it = engine_->NewIterator(storage::kKvCf);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto parts = codec::SplitKvKey(it->key());
    auto tomb = codec::IsTombstone(it->value());
    EXPECT_TRUE(parts.ok() && tomb.ok());
    out.emplace_back(parts->revision, *tomb);
  }
  return out;
}

size_t TestStore::RawKvEntries() {
  size_t n = 0;
  auto it = engine_->NewIterator(storage::kKvCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++n;
  }
  return n;
}

size_t TestStore::RawHistoryEntries() {
  size_t n = 0;
  auto it = engine_->NewIterator(storage::kHistoryCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++n;
  }
  return n;
}

std::vector<std::string> Keys(const RangeResult& r) {
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs) {
    keys.push_back(kv.key);
  }
  return keys;
}

}  // namespace tidemark::mvcc::testing
