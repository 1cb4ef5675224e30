// Events (watch catch-up) and HashKV.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mvcc/errors.h"
#include "mvcc/store.h"
#include "mvcc/test_util.h"

namespace tidemark::mvcc {
namespace {

using testing::TestStore;

TEST(EventsTest, EventsCarryKvAndPrevKv) {
  TestStore t;
  t.Put("a", "1");  // 2
  t.Put("a", "2");  // 3
  t.Delete("a");    // 4
  t.Put("a", "3");  // 5
  {
    auto txn = t.store().BeginWrite();  // 6: two events
    ASSERT_TRUE(txn->Put("b", "x", 5).ok());
    ASSERT_TRUE(txn->Put("a", "4", 0).ok());
    ASSERT_TRUE(txn->Commit(t.NextIndex(), nullptr).ok());
  }
  auto events = t.store().Events(2, 0, 0);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 6u);
  const auto& e = *events;
  EXPECT_EQ(e[0].type, EventType::kPut);
  EXPECT_EQ(e[0].kv, (KeyValue{"a", 2, 2, 1, "1", 0}));
  EXPECT_FALSE(e[0].prev_kv);  // creations carry no prev_kv
  EXPECT_EQ(e[1].kv, (KeyValue{"a", 2, 3, 2, "2", 0}));
  ASSERT_TRUE(e[1].prev_kv);
  EXPECT_EQ(*e[1].prev_kv, e[0].kv);
  EXPECT_EQ(e[2].type, EventType::kDelete);
  EXPECT_EQ(e[2].kv, (KeyValue{"a", 0, 4, 0, "", 0}));
  ASSERT_TRUE(e[2].prev_kv);
  EXPECT_EQ(*e[2].prev_kv, e[1].kv);
  EXPECT_EQ(e[3].kv, (KeyValue{"a", 5, 5, 1, "3", 0}));
  EXPECT_FALSE(e[3].prev_kv);
  EXPECT_EQ(e[4].kv, (KeyValue{"b", 6, 6, 1, "x", 5}));  // execution order
  EXPECT_EQ(e[5].kv, (KeyValue{"a", 5, 6, 2, "4", 0}));
  ASSERT_TRUE(e[5].prev_kv);
  EXPECT_EQ(e[5].prev_kv->value, "3");

  // Events returned by Commit equal those read back from history.
  std::vector<Event> live;
  {
    auto txn = t.store().BeginWrite();
    ASSERT_TRUE(txn->Put("a", "5", 0).ok());
    ASSERT_TRUE(txn->DeleteRange("b", {}).ok());
    ASSERT_TRUE(txn->Commit(t.NextIndex(), &live).ok());
  }
  auto read = t.store().Events(7, 7, 0);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, live);
}

// etcd's API forbids writing one key twice in a txn, but mvcc supports it:
// the history keeps every event and Events() agrees with Commit().
TEST(EventsTest, SameKeyWrittenTwiceInOneTxn) {
  TestStore t;
  t.Put("a", "old");  // 2
  std::vector<Event> live;
  {
    auto txn = t.store().BeginWrite();  // 3
    ASSERT_TRUE(txn->Put("a", "first", 0).ok());
    ASSERT_TRUE(txn->Put("a", "second", 0).ok());
    ASSERT_TRUE(txn->DeleteRange("a", {}).ok());
    ASSERT_TRUE(txn->Put("a", "reborn", 0).ok());
    ASSERT_TRUE(txn->Put("b", "b1", 0).ok());
    ASSERT_TRUE(txn->DeleteRange("b", {}).ok());
    ASSERT_TRUE(txn->Commit(t.NextIndex(), &live).ok());
  }
  ASSERT_EQ(live.size(), 6u);
  EXPECT_EQ(live[0].kv, (KeyValue{"a", 2, 3, 2, "first", 0}));
  EXPECT_EQ(live[1].kv, (KeyValue{"a", 2, 3, 3, "second", 0}));
  ASSERT_TRUE(live[1].prev_kv);
  EXPECT_EQ(live[1].prev_kv->value, "old");  // etcd watch rule: version at rev - 1
  EXPECT_EQ(live[2].type, EventType::kDelete);
  EXPECT_EQ(live[2].prev_kv->value, "old");
  EXPECT_EQ(live[3].kv, (KeyValue{"a", 3, 3, 1, "reborn", 0}));
  EXPECT_FALSE(live[3].prev_kv);  // a creation
  EXPECT_FALSE(live[5].prev_kv);  // b did not exist before this txn
  auto read = t.store().Events(3, 3, 0);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, live);
  EXPECT_EQ(t.Get("a")->value, "reborn");
  EXPECT_FALSE(t.Get("b"));
  EXPECT_EQ(t.store().key_count(), 1u);
}

TEST(EventsTest, RangesMaxAndCompaction) {
  TestStore t;
  for (int i = 0; i < 5; ++i) {
    t.Put("k", std::to_string(i));  // 2..6
  }
  {
    auto txn = t.store().BeginWrite();  // 7: three events
    for (std::string k : {"x", "y", "z"}) {
      ASSERT_TRUE(txn->Put(k, "v", 0).ok());
    }
    ASSERT_TRUE(txn->Commit(t.NextIndex(), nullptr).ok());
  }
  t.Put("k", "last");  // 8
  auto some = t.store().Events(3, 4, 0);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].kv.mod_revision, 3);
  // max never splits a revision: 6 (1 event) + 7 (3 events) even with max 2.
  auto capped = t.store().Events(6, 0, 2);
  ASSERT_TRUE(capped.ok());
  ASSERT_EQ(capped->size(), 4u);
  EXPECT_EQ(capped->back().kv.mod_revision, 7);
  EXPECT_TRUE(t.store().Events(9, 0, 0)->empty());     // nothing yet
  EXPECT_EQ(t.store().Events(2, 100, 0)->size(), 9u);  // to_rev clamps to current

  ASSERT_TRUE(t.store().Compact(5, t.NextIndex()).ok());
  ASSERT_TRUE(t.store().WaitForCompaction().ok());
  EXPECT_TRUE(IsCompacted(t.store().Events(4, 0, 0).status()));
  auto from_compact = t.store().Events(5, 6, 0);  // exactly at the compact revision
  ASSERT_TRUE(from_compact.ok());
  ASSERT_EQ(from_compact->size(), 2u);
  EXPECT_EQ((*from_compact)[0].kv.value, "3");
  EXPECT_FALSE((*from_compact)[0].prev_kv);  // revision 4 is compacted
  ASSERT_TRUE((*from_compact)[1].prev_kv);   // revision 5 is not
  EXPECT_EQ((*from_compact)[1].prev_kv->value, "3");
}

TEST(HashKVTest, DeterministicAcrossReopenAndAcrossStores) {
  TestStore a;
  TestStore b({}, /*in_memory=*/false);
  for (TestStore* t : {&a, &b}) {
    t->Put("a", "1");
    t->Put(std::string("b\0", 2), "2", 7);
    t->Put("a", "3");
    t->Delete("b", "c");
  }
  auto ha = a.store().HashKV(0);
  auto hb = b.store().HashKV(0);
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(ha->hash, hb->hash);
  EXPECT_EQ(ha->hash_revision, 5);
  EXPECT_EQ(ha->compact_revision, -1);
  b.Reopen();
  EXPECT_EQ(b.store().HashKV(0)->hash, ha->hash);
  EXPECT_EQ(b.store().HashKV(3)->hash, a.store().HashKV(3)->hash);
  EXPECT_NE(a.store().HashKV(3)->hash, ha->hash);  // different revision, different data

  a.Put("z", "x");
  EXPECT_NE(a.store().HashKV(0)->hash, ha->hash);
  EXPECT_EQ(a.store().HashKV(5)->hash, ha->hash);  // history below is unchanged
}

TEST(HashKVTest, SameBeforeAndAfterPhysicalCompaction) {
  StoreOptions no_compactor;
  no_compactor.run_compactor = false;
  TestStore lazy(no_compactor);
  TestStore eager;
  for (TestStore* t : {&lazy, &eager}) {
    for (int i = 0; i < 30; ++i) {
      std::string key = "k" + std::to_string(i % 4);
      if (i % 5 == 4) {
        t->Delete(key);
      } else {
        t->Put(key, std::to_string(i));
      }
    }
    t->Compact(20);
  }
  ASSERT_TRUE(eager.store().WaitForCompaction().ok());
  EXPECT_LT(eager.RawKvEntries(), lazy.RawKvEntries());
  for (int64_t rev : {0, 21, 25, 31}) {
    auto l = lazy.store().HashKV(rev);
    auto e = eager.store().HashKV(rev);
    ASSERT_TRUE(l.ok() && e.ok());
    EXPECT_EQ(l->hash, e->hash) << rev;
    EXPECT_EQ(e->compact_revision, 20);
  }
}

TEST(HashKVTest, RevisionErrors) {
  TestStore t;
  t.Put("a", "1");
  t.Put("a", "2");
  t.Put("a", "3");  // current 4
  EXPECT_TRUE(IsFutureRev(t.store().HashKV(5).status()));
  t.Compact(3);
  EXPECT_TRUE(IsCompacted(t.store().HashKV(3).status()));  // <= compact fails (unlike Range)
  EXPECT_TRUE(IsCompacted(t.store().HashKV(2).status()));
  auto ok = t.store().HashKV(4);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->hash_revision, 4);
  t.Compact(4);
  auto current = t.store().HashKV(0);  // 0 = current, even when current == compact
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->hash_revision, 4);
}

}  // namespace
}  // namespace tidemark::mvcc
