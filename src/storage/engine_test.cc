#include "storage/engine.h"

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/iterator.h"
#include "storage/write_batch.h"

namespace tidemark::storage {
namespace {

// A fresh temp directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tm-storage-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs every test on the real file system and on RocksDB's in-memory Env.
class EngineTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      options_.env = NewInMemoryEnv();
    }
    dir_ = tmp_.path() + "/db";
  }

  std::unique_ptr<Engine> OpenOrDie() {
    auto r = Engine::Open(dir_, options_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static std::string GetOrEmpty(Engine& e, ColumnFamily cf, std::string_view key,
                                const Snapshot* snap = nullptr) {
    auto r = e.Get(cf, key, snap);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->has_value() ? **r : std::string("<absent>");
  }

  TempDir tmp_;
  std::string dir_;
  Options options_;
};

TEST_P(EngineTest, BuiltinAndExtraColumnFamiliesAreIsolated) {
  options_.extra_column_families = {"lease"};
  auto e = OpenOrDie();
  ASSERT_TRUE(e);
  auto lease = e->FindColumnFamily("lease");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(e->ColumnFamilyName(kKvCf), "kv");
  EXPECT_EQ(e->ColumnFamilyName(kHistoryCf), "history");
  EXPECT_EQ(e->ColumnFamilyName(kMetaCf), "meta");
  EXPECT_EQ(e->FindColumnFamily("nope").status().code(), Code::kNotFound);

  WriteBatch b(e.get());
  b.Put(kKvCf, "k", "kv");
  b.Put(kMetaCf, "k", "meta");
  b.Put(*lease, "k", "lease");
  ASSERT_TRUE(e->Write(b).ok());
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "k"), "kv");
  EXPECT_EQ(GetOrEmpty(*e, kMetaCf, "k"), "meta");
  EXPECT_EQ(GetOrEmpty(*e, *lease, "k"), "lease");
  EXPECT_EQ(GetOrEmpty(*e, kHistoryCf, "k"), "<absent>");
  ASSERT_TRUE(e->Close().ok());

  // Reopen without asking for "lease": the CF still opens and keeps its data.
  options_.extra_column_families.clear();
  e = OpenOrDie();
  ASSERT_TRUE(e);
  auto lease2 = e->FindColumnFamily("lease");
  ASSERT_TRUE(lease2.ok());
  EXPECT_EQ(GetOrEmpty(*e, *lease2, "k"), "lease");
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, DeleteAndDeleteRange) {
  auto e = OpenOrDie();
  WriteBatch b(e.get());
  for (char c = 'a'; c <= 'f'; ++c) {
    b.Put(kKvCf, std::string(1, c), "v");
  }
  ASSERT_TRUE(e->Write(b).ok());
  WriteBatch d(e.get());
  d.Delete(kKvCf, "a");
  d.DeleteRange(kKvCf, "c", "e");
  EXPECT_EQ(d.Count(), 2u);
  ASSERT_TRUE(e->Write(d).ok());
  std::string seen;
  auto it = e->NewIterator(kKvCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    seen += it->key();
  }
  EXPECT_TRUE(it->status().ok());
  EXPECT_EQ(seen, "bef");
  it.reset();
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, IteratorSeekPrevAndBounds) {
  auto e = OpenOrDie();
  WriteBatch b(e.get());
  for (std::string k : {"a", "b", "bb", "c", "d"}) {
    b.Put(kKvCf, k, "v" + k);
  }
  b.Put(kKvCf, std::string("\x00", 1), "nul");
  b.Put(kKvCf, "\xff", "ff");
  ASSERT_TRUE(e->Write(b).ok());

  auto it = e->NewIterator(kKvCf);
  it->Seek("b");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b");
  EXPECT_EQ(it->value(), "vb");
  it->Next();
  EXPECT_EQ(it->key(), "bb");
  it->Prev();
  it->Prev();
  EXPECT_EQ(it->key(), "a");
  it->Prev();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), std::string("\x00", 1));
  it->SeekForPrev("bz");
  EXPECT_EQ(it->key(), "bb");
  it->SeekToLast();
  EXPECT_EQ(it->key(), "\xff");  // unsigned byte order
  it.reset();

  ReadOptions ro;
  ro.lower_bound = "b";
  ro.upper_bound = "d";
  it = e->NewIterator(kKvCf, ro);
  std::vector<std::string> keys;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    keys.emplace_back(it->key());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "bb", "c"}));
  it->SeekToLast();
  EXPECT_EQ(it->key(), "c");
  it.reset();
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, SnapshotSeesOldState) {
  auto e = OpenOrDie();
  WriteBatch b(e.get());
  b.Put(kKvCf, "k", "old");
  ASSERT_TRUE(e->Write(b).ok());
  auto snap = e->GetSnapshot();
  WriteBatch b2(e.get());
  b2.Put(kKvCf, "k", "new");
  b2.Put(kKvCf, "k2", "x");
  ASSERT_TRUE(e->Write(b2).ok());
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "k", snap.get()), "old");
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "k2", snap.get()), "<absent>");
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "k"), "new");
  ReadOptions ro;
  ro.snapshot = snap.get();
  auto it = e->NewIterator(kKvCf, ro);
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++n;
  }
  EXPECT_EQ(n, 1);
  EXPECT_EQ(e->live_readers(), 2);
  it.reset();
  snap.reset();
  EXPECT_EQ(e->live_readers(), 0);
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, CrashLosesOnlyUnflushedWrites) {
  auto e = OpenOrDie();
  WriteBatch b(e.get());
  b.Put(kKvCf, "flushed", "1");
  b.Put(kMetaCf, "applied", "1");
  b.set_durability_marker(1);
  ASSERT_TRUE(e->Write(b).ok());
  EXPECT_EQ(e->durable_marker(), 0u);
  ASSERT_TRUE(e->Flush().ok());
  EXPECT_EQ(e->durable_marker(), 1u);

  WriteBatch b2(e.get());
  b2.Put(kKvCf, "lost", "2");
  b2.Put(kMetaCf, "applied", "2");
  b2.set_durability_marker(2);
  ASSERT_TRUE(e->Write(b2).ok());
  EXPECT_EQ(e->durable_marker(), 1u);
  e->CloseWithoutFlushForTesting();  // power loss

  e = OpenOrDie();
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "flushed"), "1");
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "lost"), "<absent>");
  EXPECT_EQ(GetOrEmpty(*e, kMetaCf, "applied"), "1");  // data and applied index agree
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, CleanCloseFlushes) {
  auto e = OpenOrDie();
  WriteBatch b(e.get());
  b.Put(kKvCf, "k", "v");
  ASSERT_TRUE(e->Write(b).ok());
  ASSERT_TRUE(e->Close().ok());
  ASSERT_TRUE(e->Close().ok());  // idempotent
  e = OpenOrDie();
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "k"), "v");
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, AutomaticFlushAdvancesDurableMarker) {
  options_.write_buffer_bytes = 64 << 10;  // tiny memtables: RocksDB flushes on its own
  auto e = OpenOrDie();
  std::string value(1024, 'x');
  for (uint64_t i = 1; i <= 2000; ++i) {
    WriteBatch b(e.get());
    b.Put(kKvCf, "key" + std::to_string(i), value);
    b.Put(kMetaCf, "applied", std::to_string(i));
    b.set_durability_marker(i);
    ASSERT_TRUE(e->Write(b).ok());
  }
  // No explicit Flush yet: the listener must have seen RocksDB's own flushes.
  for (int i = 0; i < 2500 && e->durable_marker() == 0; ++i) {  // <= 5 s
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  uint64_t durable = e->durable_marker();
  EXPECT_GT(durable, 0u);
  EXPECT_LE(durable, 2000u);
  e->CloseWithoutFlushForTesting();
  e = OpenOrDie();
  // Everything up to the durable marker survived the crash, consistently.
  auto applied = e->Get(kMetaCf, "applied");
  ASSERT_TRUE(applied.ok() && applied->has_value());
  uint64_t recovered = std::stoull(**applied);
  EXPECT_GE(recovered, durable);
  for (uint64_t i = 1; i <= recovered; i += 97) {
    EXPECT_EQ(GetOrEmpty(*e, kKvCf, "key" + std::to_string(i)), value) << i;
  }
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "key" + std::to_string(recovered + 1)), "<absent>");
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, ApproximateSizeGrows) {
  auto e = OpenOrDie();
  auto before = e->ApproximateSizeBytes();
  ASSERT_TRUE(before.ok());
  WriteBatch b(e.get());
  for (int i = 0; i < 1000; ++i) {
    b.Put(kKvCf, "k" + std::to_string(i), std::string(200, 'v'));
  }
  ASSERT_TRUE(e->Write(b).ok());
  auto mem = e->ApproximateSizeBytes();
  ASSERT_TRUE(mem.ok());
  EXPECT_GT(*mem, *before + 100000);
  ASSERT_TRUE(e->Flush().ok());
  auto disk = e->ApproximateSizeBytes();
  ASSERT_TRUE(disk.ok());
  EXPECT_GT(*disk, 1000u);
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, CompactRangeDoesNotBlockWriters) {
  auto e = OpenOrDie();
  for (int round = 0; round < 5; ++round) {
    WriteBatch b(e.get());
    for (int i = 0; i < 2000; ++i) {
      b.Put(kKvCf, "k" + std::to_string(i), std::to_string(round));
    }
    ASSERT_TRUE(e->Write(b).ok());
    ASSERT_TRUE(e->Flush().ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    while (!done.load()) {
      WriteBatch b(e.get());
      b.Put(kMetaCf, "w", std::to_string(writes.load()));
      ASSERT_TRUE(e->Write(b).ok());
      writes.fetch_add(1);
    }
  });
  while (writes.load() == 0)
    std::this_thread::yield();  // the writer is running
  // Writes keep completing while CompactRange runs. (A compaction can be
  // shorter than one write on an idle machine, hence a few attempts.)
  int during = 0;
  for (int attempt = 0; attempt < 20 && during == 0; ++attempt) {
    const int before = writes.load();
    ASSERT_TRUE(e->CompactRange().ok());
    during = writes.load() - before;
  }
  done = true;
  writer.join();
  EXPECT_GT(during, 0);
  EXPECT_EQ(GetOrEmpty(*e, kKvCf, "k1999"), "4");
  ASSERT_TRUE(e->Close().ok());
}

TEST_P(EngineTest, OpenMissingDirWithoutCreateFailsNamingTheDir) {
  options_.create_if_missing = false;
  auto r = Engine::Open(dir_ + "/missing", options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("storage: open"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Fs, EngineTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "MemEnv" : "Posix"; });

// Checkpoints hard-link SST files, so only the real file system is used.
TEST(EngineCheckpointTest, CheckpointIncludesUnflushedWritesAndOpens) {
  TempDir tmp;
  auto e = Engine::Open(tmp.path() + "/db", {});
  ASSERT_TRUE(e.ok());
  WriteBatch b(e->get());
  b.Put(kKvCf, "a", "1");
  b.Put(kMetaCf, "m", "2");
  ASSERT_TRUE((*e)->Write(b).ok());  // not flushed
  ASSERT_TRUE((*e)->Checkpoint(tmp.path() + "/cp").ok());
  EXPECT_FALSE((*e)->Checkpoint(tmp.path() + "/cp").ok());  // must not exist
  ASSERT_TRUE((*e)->Close().ok());

  Options o;
  o.create_if_missing = false;
  auto cp = Engine::Open(tmp.path() + "/cp", o);
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  auto v = (*cp)->Get(kKvCf, "a");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, "1");
  auto m = (*cp)->Get(kMetaCf, "m");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(**m, "2");
  ASSERT_TRUE((*cp)->Close().ok());
}

}  // namespace
}  // namespace tidemark::storage
