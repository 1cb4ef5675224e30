// Compaction: errors, what is kept, reads during compaction, restart safety.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mvcc/errors.h"
#include "mvcc/store.h"
#include "mvcc/test_util.h"

namespace tidemark::mvcc {
namespace {

using testing::TestStore;
using Raw = std::vector<std::pair<int64_t, bool>>;

TEST(CompactionTest, ErrorsFollowEtcd) {
  TestStore t;
  Status s = t.store().Compact(2, 1);
  EXPECT_TRUE(IsFutureRev(s)) << s.ToString();
  t.Put("a", "1");
  t.Put("a", "2");
  t.Put("a", "3");  // current = 4
  EXPECT_TRUE(t.store().Compact(3, t.NextIndex()).ok());
  EXPECT_EQ(t.store().compact_revision(), 3);
  EXPECT_TRUE(IsCompacted(t.store().Compact(3, t.NextIndex())));
  EXPECT_TRUE(IsCompacted(t.store().Compact(2, t.NextIndex())));
  EXPECT_TRUE(IsFutureRev(t.store().Compact(5, t.NextIndex())));
  EXPECT_TRUE(t.store().Compact(4, t.NextIndex()).ok());  // at current: allowed
  EXPECT_EQ(t.Get("a")->value, "3");
  EXPECT_TRUE(t.store().WaitForCompaction().ok());
}

TEST(CompactionTest, CompactRevisionIsAtomicWithAppliedIndex) {
  TestStore t;
  t.Put("a", "1");
  t.Put("a", "2");
  ASSERT_TRUE(t.engine().Flush().ok());
  ASSERT_TRUE(t.store().Compact(3, 10).ok());
  EXPECT_EQ(t.store().applied_index(), 10u);
  t.CrashAndReopen();  // the compaction record was not flushed
  EXPECT_EQ(t.store().compact_revision(), -1);
  EXPECT_EQ(t.store().applied_index(), 2u);
  ASSERT_TRUE(t.store().Compact(3, 10).ok());
  ASSERT_TRUE(t.engine().Flush().ok());
  t.CrashAndReopen();
  EXPECT_EQ(t.store().compact_revision(), 3);
  EXPECT_EQ(t.store().applied_index(), 10u);
}

TEST(CompactionTest, KeepsNewestVersionOfLiveKeysAndDropsDeletedKeys) {
  TestStore t;
  t.Put("a", "1");  // 2
  t.Put("a", "2");  // 3
  t.Put("a", "3");  // 4
  t.Put("b", "1");  // 5
  t.Delete("b");    // 6
  t.Put("c", "1");  // 7
  t.Delete("c");    // 8
  t.Put("c", "2");  // 9
  t.Put("d", "1");  // 10
  t.Put("a", "4");  // 11
  t.Put("e", "1");  // 12
  t.Delete("e");    // 13
  const size_t history_before = t.RawHistoryEntries();
  EXPECT_EQ(history_before, 12u);
  ASSERT_TRUE(t.store().Compact(10, t.NextIndex()).ok());
  ASSERT_TRUE(t.store().WaitForCompaction(10).ok());
  EXPECT_EQ(t.store().physically_compacted_revision(), 10);

  EXPECT_EQ(t.RawVersions("a"), (Raw{{11, false}, {4, false}}));
  EXPECT_EQ(t.RawVersions("b"), Raw{});
  EXPECT_EQ(t.RawVersions("c"), (Raw{{9, false}}));
  EXPECT_EQ(t.RawVersions("d"), (Raw{{10, false}}));
  EXPECT_EQ(t.RawVersions("e"), (Raw{{13, true}, {12, false}}));  // above C: untouched
  EXPECT_EQ(t.RawHistoryEntries(), 4u);                           // revisions 10..13 remain

  EXPECT_EQ(t.Get("a", 10)->value, "3");
  EXPECT_EQ(t.Get("a", 10)->version, 3);
  EXPECT_EQ(t.Get("a")->value, "4");
  EXPECT_FALSE(t.Get("b", 10));
  EXPECT_EQ(t.Get("c", 10)->create_revision, 9);
  EXPECT_EQ(t.Get("e", 12)->value, "1");
  EXPECT_EQ(t.Range("a", "z", 10).count, 3);
  EXPECT_EQ(t.store().key_count(), 3u);
}

TEST(CompactionTest, TombstoneExactlyAtCompactRevisionIsRemoved) {
  TestStore t;
  t.Put("k", "1");  // 2
  t.Delete("k");    // 3
  t.Put("x", "1");  // 4
  ASSERT_TRUE(t.store().Compact(3, t.NextIndex()).ok());
  ASSERT_TRUE(t.store().WaitForCompaction().ok());
  EXPECT_EQ(t.RawVersions("k"), Raw{});
  EXPECT_FALSE(t.Get("k", 3));
}

TEST(CompactionTest, ReadsBelowCompactFailAtOnceEvenBeforePhysicalRemoval) {
  StoreOptions no_compactor;
  no_compactor.run_compactor = false;
  TestStore t(no_compactor);
  for (int i = 0; i < 5; ++i) {
    t.Put("k", std::to_string(i));  // 2..6
  }
  ASSERT_TRUE(t.store().Compact(4, t.NextIndex()).ok());
  RangeRequest r;
  r.key = "k";
  r.revision = 3;
  EXPECT_TRUE(IsCompacted(t.store().Range(r).status()));
  r.revision = 4;
  EXPECT_EQ(t.Range(r).kvs.at(0).value, "2");
  // Nothing was removed yet, and waiting reports that no compactor runs.
  EXPECT_EQ(t.RawVersions("k").size(), 5u);
  Status w = t.store().WaitForCompaction();
  EXPECT_EQ(w.code(), Code::kUnavailable) << w.ToString();
  // A store with a compactor picks the pending compaction up on open.
  t.Reopen();
  ASSERT_TRUE(t.store().WaitForCompaction().ok());
  EXPECT_EQ(t.RawVersions("k"), (Raw{{6, false}, {5, false}, {4, false}}));
}

// Readers at revisions >= C keep getting exactly the pre-compaction answers
// while the compactor deletes underneath them, and writers keep going.
TEST(CompactionTest, ReadsAndWritesDuringCompaction) {
  StoreOptions small_batches;
  small_batches.compaction_batch_limit = 7;
  TestStore t(small_batches);
  constexpr int kKeys = 40;
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    auto txn = t.store().BeginWrite();
    for (int k = 0; k < kKeys; ++k) {
      std::string key = "key" + std::to_string(k);
      if ((k + round) % 7 == 0) {
        ASSERT_TRUE(txn->DeleteRange(key, {}).ok());
      } else {
        ASSERT_TRUE(txn->Put(key, key + "@" + std::to_string(round), 0).ok());
      }
    }
    ASSERT_TRUE(txn->Commit(t.NextIndex(), nullptr).ok());
  }
  const int64_t current = t.store().current_revision();
  const int64_t compact_at = current - 5;
  std::vector<RangeResult> expected;
  for (int64_t rev = compact_at; rev <= current; ++rev) {
    expected.push_back(t.Range("key", "kez", rev));
  }

  ASSERT_TRUE(t.store().Compact(compact_at, t.NextIndex()).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> checks{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (int64_t rev = compact_at; rev <= current; ++rev) {
        RangeRequest r;
        r.key = "key";
        r.range_end = "kez";
        r.revision = rev;
        auto res = t.store().Range(r);
        ASSERT_TRUE(res.ok()) << res.status().ToString();
        ASSERT_EQ(res->kvs, expected[rev - compact_at].kvs) << "rev " << rev;
        ASSERT_EQ(res->count, expected[rev - compact_at].count);
        checks.fetch_add(1);
      }
    }
  });
  // Writer keeps committing while the compactor runs; record the worst latency.
  std::chrono::nanoseconds worst{0};
  for (int i = 0; i < 200; ++i) {
    auto start = std::chrono::steady_clock::now();
    t.Put("other" + std::to_string(i % 10), std::to_string(i));
    worst = std::max(worst, std::chrono::steady_clock::now() - start);
  }
  ASSERT_TRUE(t.store().WaitForCompaction().ok());
  // On a loaded machine the reader may not have been scheduled yet: let it
  // finish at least one full pass before stopping it.
  while (checks.load() == 0) std::this_thread::yield();
  stop = true;
  reader.join();
  EXPECT_GT(checks.load(), 0);
  std::printf("[ info ] worst commit latency during compaction: %.3f ms\n",
              std::chrono::duration<double, std::milli>(worst).count());
  for (int64_t rev = compact_at; rev <= current; ++rev) {
    EXPECT_EQ(t.Range("key", "kez", rev).kvs, expected[rev - compact_at].kvs);
  }
  // Every key has at most the kept version <= C plus versions above C.
  for (int k = 0; k < kKeys; ++k) {
    Raw raw = t.RawVersions("key" + std::to_string(k));
    int at_or_below = 0;
    for (auto [rev, tomb] : raw) {
      if (rev <= compact_at) {
        ++at_or_below;
        EXPECT_FALSE(tomb);
      }
    }
    EXPECT_LE(at_or_below, 1);
  }
}

TEST(CompactionTest, CrashMidCompactionFinishesAfterReopen) {
  auto fill = [](TestStore& t) {
    for (int round = 0; round < 10; ++round) {
      for (int k = 0; k < 20; ++k) {
        std::string key = "k" + std::to_string(k);
        if (round == 6 && k % 3 == 0) {
          t.Delete(key);
        } else {
          t.Put(key, std::to_string(round));
        }
      }
    }
  };
  TestStore reference;
  fill(reference);
  const int64_t compact_at = reference.store().current_revision() - 30;
  reference.Compact(compact_at);
  ASSERT_TRUE(reference.store().WaitForCompaction().ok());
  const size_t reference_entries = reference.RawKvEntries();
  auto reference_hash = reference.store().HashKV(0);
  ASSERT_TRUE(reference_hash.ok());

  StoreOptions halting;
  halting.compaction_batch_limit = 5;
  halting.compaction_halt_after_batches_for_testing = 3;
  TestStore t(halting);
  fill(t);
  const size_t before = t.RawKvEntries();
  t.Compact(compact_at);
  Status w = t.store().WaitForCompaction();
  EXPECT_EQ(w.code(), Code::kUnavailable) << w.ToString();
  const size_t partial = t.RawKvEntries();
  EXPECT_LT(partial, before);             // some batches ran ...
  EXPECT_GT(partial, reference_entries);  // ... but not all
  EXPECT_EQ(t.store().physically_compacted_revision(), -1);
  // Partial results and the compaction record reach disk, then power loss.
  ASSERT_TRUE(t.engine().Flush().ok());
  t.CrashAndReopen();
  EXPECT_EQ(t.store().compact_revision(), compact_at);
  ASSERT_TRUE(t.store().WaitForCompaction().ok());
  EXPECT_EQ(t.store().physically_compacted_revision(), compact_at);
  EXPECT_EQ(t.RawKvEntries(), reference_entries);
  EXPECT_EQ(t.RawHistoryEntries(), reference.RawHistoryEntries());
  auto hash = t.store().HashKV(0);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->hash, reference_hash->hash);
  // The finished marker survives a clean restart: nothing left to do.
  t.Reopen();
  EXPECT_EQ(t.store().physically_compacted_revision(), compact_at);
}

TEST(CompactionTest, SuccessiveCompactions) {
  TestStore t;
  for (int i = 0; i < 30; ++i) {
    t.Put("k" + std::to_string(i % 3), std::to_string(i));
  }
  for (int64_t c : {5, 9, 20, 31}) {
    ASSERT_TRUE(t.store().Compact(c, t.NextIndex()).ok());
  }
  ASSERT_TRUE(t.store().WaitForCompaction(31).ok());
  EXPECT_EQ(t.RawKvEntries(), 3u);
  EXPECT_EQ(t.RawHistoryEntries(), 1u);  // revision 31 only
  EXPECT_EQ(t.Range("k", "l").count, 3);
}

}  // namespace
}  // namespace tidemark::mvcc
