#include "mvcc/store.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mvcc/codec.h"
#include "mvcc/errors.h"
#include "mvcc/test_util.h"
#include "mvcc/write_txn.h"
#include "storage/write_batch.h"

namespace tidemark::mvcc {
namespace {

using testing::Keys;
using testing::TestStore;

TEST(StoreTest, FreshStoreIsAtRevisionOneWithNoKeys) {
  TestStore t;
  EXPECT_EQ(t.store().current_revision(), 1);
  EXPECT_EQ(t.store().compact_revision(), -1);
  EXPECT_EQ(t.store().applied_index(), 0u);
  EXPECT_EQ(t.store().key_count(), 0u);
  RangeResult r = t.Range(std::string(1, '\0'), std::string(1, '\0'));
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.revision, 1);
}

TEST(StoreTest, EachChangingWriteBumpsRevisionByOne) {
  TestStore t;
  EXPECT_EQ(t.Put("a", "1"), 2);
  EXPECT_EQ(t.Put("a", "1"), 3);  // identical value still bumps (etcd)
  EXPECT_EQ(t.Put("b", "2"), 4);
  EXPECT_EQ(t.Delete("a"), 5);
  EXPECT_EQ(t.store().applied_index(), 4u);
}

TEST(StoreTest, NoOpDeleteKeepsRevisionButAdvancesAppliedIndex) {
  TestStore t;
  t.Put("a", "1");
  const uint64_t before = t.store().applied_index();
  auto txn = t.store().BeginWrite();
  auto deleted = txn->DeleteRange("zzz", {});
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->empty());
  EXPECT_FALSE(txn->changed());
  std::vector<Event> events;
  const uint64_t index = t.NextIndex();
  ASSERT_TRUE(txn->Commit(index, &events).ok());
  txn.reset();
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(t.store().current_revision(), 2);
  EXPECT_EQ(index, before + 1);
  EXPECT_EQ(t.store().applied_index(), index);
  // Deleting an already-deleted key is a no-op too.
  t.Delete("a");
  EXPECT_EQ(t.Delete("a"), 3);
}

TEST(StoreTest, VersionsAndCreateRevisionAcrossPutDeleteReput) {
  TestStore t;
  t.Put("k", "v1");  // rev 2
  t.Put("k", "v2");  // rev 3
  auto kv = t.Get("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->create_revision, 2);
  EXPECT_EQ(kv->mod_revision, 3);
  EXPECT_EQ(kv->version, 2);
  EXPECT_EQ(kv->value, "v2");
  t.Delete("k");  // rev 4
  EXPECT_FALSE(t.Get("k"));
  t.Put("k", "v3");  // rev 5: a new life
  kv = t.Get("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->create_revision, 5);
  EXPECT_EQ(kv->mod_revision, 5);
  EXPECT_EQ(kv->version, 1);
  // Historical reads see every earlier state, including the tombstone.
  EXPECT_EQ(t.Get("k", 2)->value, "v1");
  EXPECT_EQ(t.Get("k", 3)->version, 2);
  EXPECT_FALSE(t.Get("k", 4));
  EXPECT_FALSE(t.Get("k", 1));
}

TEST(StoreTest, PutReturnsPreviousAndDeleteReturnsDeleted) {
  TestStore t;
  auto txn = t.store().BeginWrite();
  auto prev = txn->Put("a", "1", 0);
  ASSERT_TRUE(prev.ok());
  EXPECT_FALSE(*prev);
  ASSERT_TRUE(txn->Commit(1, nullptr).ok());
  txn = t.store().BeginWrite();
  prev = txn->Put("a", "2", 0);
  ASSERT_TRUE(prev.ok() && *prev);
  EXPECT_EQ((*prev)->value, "1");
  EXPECT_EQ((*prev)->mod_revision, 2);
  ASSERT_TRUE(txn->Put("b", "3", 0).ok());
  auto deleted = txn->DeleteRange("a", "c");
  ASSERT_TRUE(deleted.ok());
  ASSERT_EQ(deleted->size(), 2u);
  EXPECT_EQ((*deleted)[0].value, "2");  // the txn's own put
  EXPECT_EQ((*deleted)[1].key, "b");
  ASSERT_TRUE(txn->Commit(2, nullptr).ok());
  txn.reset();
  EXPECT_EQ(t.Range("a", "c").count, 0);
  EXPECT_EQ(t.store().key_count(), 0u);
  EXPECT_EQ(t.Get("a", 2)->value, "1");
}

TEST(StoreTest, EmptyKeyPutIsInvalid) {
  TestStore t;
  auto txn = t.store().BeginWrite();
  EXPECT_EQ(txn->Put("", "v", 0).status().code(), Code::kInvalidArgument);
}

TEST(StoreTest, WriteTxnSeesItsOwnWrites) {
  TestStore t;
  t.Put("a", "old");
  t.Put("c", "c");
  auto txn = t.store().BeginWrite();
  ASSERT_TRUE(txn->Put("a", "new", 0).ok());
  ASSERT_TRUE(txn->Put("b", "b", 0).ok());
  ASSERT_TRUE(txn->DeleteRange("c", {}).ok());

  RangeRequest all;
  all.key = "a";
  all.range_end = "z";
  auto r = txn->Range(all);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->kvs[0].value, "new");
  EXPECT_EQ(r->kvs[0].version, 2);
  EXPECT_EQ(r->kvs[1].create_revision, 4);
  EXPECT_EQ(r->count, 2);
  EXPECT_EQ(r->revision, 4);  // the txn's revision once it changed something

  all.count_only = true;
  EXPECT_EQ(txn->Range(all)->count, 2);
  all.count_only = false;
  all.revision = 3;  // the committed state
  r = txn->Range(all);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"a", "c"}));
  all.revision = 5;
  EXPECT_TRUE(IsFutureRev(txn->Range(all).status()));

  auto g = txn->Get("c");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(*g);
  // Re-put of a key deleted in the same txn starts a new life.
  auto p = txn->Put("c", "again", 0);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(*p);
  EXPECT_EQ((*txn->Get("c"))->version, 1);

  // Nothing is visible outside before Commit.
  EXPECT_EQ(t.Range("a", "z").count, 2);
  ASSERT_TRUE(txn->Commit(10, nullptr).ok());
  txn.reset();
  EXPECT_EQ(Keys(t.Range("a", "z")), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(StoreTest, AllWritesOfOneTxnShareOneRevision) {
  TestStore t;
  t.Put("x", "1");
  auto txn = t.store().BeginWrite();
  EXPECT_EQ(txn->revision(), 3);
  ASSERT_TRUE(txn->Put("a", "1", 0).ok());
  ASSERT_TRUE(txn->Put("b", "2", 0).ok());
  ASSERT_TRUE(txn->DeleteRange("x", {}).ok());
  std::vector<Event> events;
  ASSERT_TRUE(txn->Commit(5, &events).ok());
  txn.reset();
  EXPECT_EQ(t.store().current_revision(), 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, EventType::kPut);
  EXPECT_EQ(events[0].kv.key, "a");
  EXPECT_EQ(events[1].kv.key, "b");
  EXPECT_EQ(events[2].type, EventType::kDelete);
  EXPECT_EQ(events[2].kv.key, "x");
  for (const auto& e : events) {
    EXPECT_EQ(e.kv.mod_revision, 3);
  }
  EXPECT_EQ(events[2].kv.value, "");  // DELETE kv: key + mod_revision only
  EXPECT_EQ(events[2].kv.version, 0);
  ASSERT_TRUE(events[2].prev_kv);
  EXPECT_EQ(events[2].prev_kv->value, "1");
  EXPECT_FALSE(events[0].prev_kv);
}

TEST(StoreTest, UncommittedTxnIsDiscarded) {
  TestStore t;
  {
    auto txn = t.store().BeginWrite();
    ASSERT_TRUE(txn->Put("a", "1", 0).ok());
  }
  EXPECT_EQ(t.store().current_revision(), 1);
  EXPECT_FALSE(t.Get("a"));
  EXPECT_EQ(t.Put("a", "2"), 2);
}

TEST(StoreTest, LeaseIsStoredAndPutWithoutLeaseDetaches) {
  TestStore t;
  t.Put("a", "1", 42);
  EXPECT_EQ(t.Get("a")->lease, 42);
  t.Put("a", "2", 0);
  EXPECT_EQ(t.Get("a")->lease, 0);
}

TEST(StoreTest, OtherModulesWriteInTheSameBatch) {
  TestStore t;
  auto lease_cf = t.engine().FindColumnFamily("default");
  ASSERT_TRUE(lease_cf.ok());
  auto txn = t.store().BeginWrite();
  ASSERT_TRUE(txn->Put("a", "1", 7).ok());
  txn->batch().Put(*lease_cf, "lease/7", "a");
  ASSERT_TRUE(txn->Commit(1, nullptr).ok());
  txn.reset();
  t.CrashAndReopen();  // nothing flushed: both are gone together
  EXPECT_FALSE(t.Get("a"));
  EXPECT_FALSE(*t.engine().Get(*lease_cf, "lease/7"));
  EXPECT_EQ(t.store().applied_index(), 0u);
}

TEST(StoreTest, ReopenPreservesEverything) {
  for (bool in_memory : {true, false}) {
    SCOPED_TRACE(in_memory ? "memenv" : "posix");
    TestStore t({}, in_memory);
    t.Put("a", "1");
    t.Put("b", "2", 9);
    t.Put("a", "3");
    t.Delete("b");
    t.Put(std::string("n\0l", 3), "nul");
    const uint64_t applied = t.store().applied_index();
    t.Reopen();
    EXPECT_EQ(t.store().current_revision(), 6);
    EXPECT_EQ(t.store().applied_index(), applied);
    EXPECT_EQ(t.store().durable_applied_index(), applied);
    EXPECT_EQ(t.store().key_count(), 2u);
    EXPECT_EQ(t.Get("a")->value, "3");
    EXPECT_EQ(t.Get("a")->version, 2);
    EXPECT_EQ(t.Get("b", 3)->lease, 9);
    EXPECT_FALSE(t.Get("b"));
    EXPECT_EQ(t.Get(std::string("n\0l", 3))->value, "nul");
    EXPECT_EQ(t.Put("c", "4"), 7);
  }
}

TEST(StoreTest, CrashKeepsFlushedPrefixWithMatchingAppliedIndex) {
  TestStore t;
  t.Put("a", "1");
  t.Put("b", "2");
  ASSERT_TRUE(t.engine().Flush().ok());
  const uint64_t flushed = t.store().applied_index();
  EXPECT_EQ(t.store().durable_applied_index(), flushed);
  t.Put("c", "3");
  t.Delete("a");
  EXPECT_EQ(t.store().durable_applied_index(), flushed);
  t.CrashAndReopen();
  EXPECT_EQ(t.store().applied_index(), flushed);
  EXPECT_EQ(t.store().current_revision(), 3);
  EXPECT_EQ(t.store().key_count(), 2u);
  EXPECT_EQ(Keys(t.Range("a", "z")), (std::vector<std::string>{"a", "b"}));
  // Replaying the lost entries gives the same revisions again.
  EXPECT_EQ(t.Put("c", "3"), 4);
  EXPECT_EQ(t.Delete("a"), 5);
}

TEST(StoreTest, KeyCountTracksLiveKeys) {
  TestStore t;
  t.Put("a", "1");
  t.Put("b", "1");
  t.Put("a", "2");
  EXPECT_EQ(t.store().key_count(), 2u);
  t.Delete("a", "z");
  EXPECT_EQ(t.store().key_count(), 0u);
  t.Put("a", "3");
  EXPECT_EQ(t.store().key_count(), 1u);
}

// A put finds the version it replaces through the store's in-memory index
// of each live key's newest revision; that index is rebuilt from the kv data
// at every open (clean, after a crash, after compaction) and must agree with
// what a scan of the data says.
TEST(StoreTest, PutsAfterReopenContinueFromTheNewestVersions) {
  for (bool crash : {false, true}) {
    SCOPED_TRACE(crash ? "crash" : "clean");
    TestStore t;
    t.Put("a", "1");          // rev 2
    t.Put("b", "1");          // rev 3
    t.Put("a", "2");          // rev 4
    t.Delete("b");            // rev 5
    t.Put("c", "1");          // rev 6
    t.Compact(5);             // b's tombstone and a@2 go physically
    ASSERT_TRUE(t.store().WaitForCompaction().ok());
    ASSERT_TRUE(t.engine().Flush().ok());
    t.Put("c", "2");          // rev 7: lost by a crash, kept by a clean reopen
    if (crash) {
      t.CrashAndReopen();
    } else {
      t.Reopen();
    }
    const int64_t c_version = crash ? 1 : 2;
    auto txn = t.store().BeginWrite();
    auto prev_a = txn->Put("a", "3", 0);
    auto prev_b = txn->Put("b", "2", 0);
    auto prev_c = txn->Put("c", "3", 0);
    ASSERT_TRUE(prev_a.ok() && prev_b.ok() && prev_c.ok());
    ASSERT_TRUE(prev_a->has_value());
    EXPECT_EQ((*prev_a)->value, "2");
    EXPECT_EQ((*prev_a)->mod_revision, 4);
    EXPECT_FALSE(prev_b->has_value());  // deleted, tombstone compacted away
    ASSERT_TRUE(prev_c->has_value());
    EXPECT_EQ((*prev_c)->version, c_version);
    std::vector<Event> events;
    ASSERT_TRUE(txn->Commit(t.NextIndex(), &events).ok());
    txn.reset();
    const int64_t rev = t.store().current_revision();
    EXPECT_EQ(t.Get("a")->version, 3);
    EXPECT_EQ(t.Get("a")->create_revision, 2);
    EXPECT_EQ(t.Get("b")->version, 1);
    EXPECT_EQ(t.Get("b")->create_revision, rev);
    EXPECT_EQ(t.Get("c")->version, c_version + 1);
    EXPECT_EQ(t.Get("c")->create_revision, 6);
    ASSERT_EQ(events.size(), 3u);
    ASSERT_TRUE(events[0].prev_kv.has_value());
    EXPECT_EQ(events[0].prev_kv->value, "2");  // a's event carries the old value
    EXPECT_FALSE(events[1].prev_kv.has_value());
    EXPECT_EQ(t.store().key_count(), 3u);
  }
}

TEST(StoreTest, OpenRefusesKvDataThatDisagreesWithTheKeyCount) {
  TestStore t;
  t.Put("a", "1");
  t.Put("b", "1");
  storage::WriteBatch bad(&t.engine());
  bad.Put(storage::kMetaCf, codec::kMetaKeyCount, codec::EncodeU64(5));
  ASSERT_TRUE(t.engine().Write(bad).ok());
  StoreOptions opts;
  opts.run_compactor = false;
  auto reopened = Store::Open(&t.engine(), opts);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Code::kCorruption);
  EXPECT_NE(reopened.status().message().find("2 live keys"), std::string::npos)
      << reopened.status().ToString();
  EXPECT_NE(reopened.status().message().find("says 5"), std::string::npos);
}

// Readers run concurrently with the writer and must never observe a
// half-applied revision: every txn writes "a" and "b" with the same value.
TEST(StoreTest, ConcurrentReadersSeeWholeRevisions) {
  TestStore t;
  {
    auto txn = t.store().BeginWrite();
    ASSERT_TRUE(txn->Put("a", "0", 0).ok());
    ASSERT_TRUE(txn->Put("b", "0", 0).ok());
    ASSERT_TRUE(txn->Commit(t.NextIndex(), nullptr).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  readers.reserve(2);
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        RangeRequest req;
        req.key = "a";
        req.range_end = "c";
        auto res = t.store().Range(req);
        ASSERT_TRUE(res.ok());
        ASSERT_EQ(res->kvs.size(), 2u);
        ASSERT_EQ(res->kvs[0].value, res->kvs[1].value);
        ASSERT_EQ(res->kvs[0].mod_revision, res->kvs[1].mod_revision);
        ASSERT_LE(res->kvs[0].mod_revision, res->revision);
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= 500; ++i) {
    auto txn = t.store().BeginWrite();
    ASSERT_TRUE(txn->Put("a", std::to_string(i), 0).ok());
    ASSERT_TRUE(txn->Put("b", std::to_string(i), 0).ok());
    ASSERT_TRUE(txn->Commit(t.NextIndex(), nullptr).ok());
  }
  stop = true;
  for (auto& th : readers) {
    th.join();
  }
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace tidemark::mvcc

namespace tidemark::mvcc {
namespace {

// StoreOptions::defer_meta_writes (tidemark restore): the per-commit meta
// records are written once by FlushDeferredMeta; until then the store is
// marked unfinished and refused by any normal Open, even after a flush.
TEST(StoreDeferredMetaTest, UnfinishedStoreIsRefusedAndFlushedOneReopensIdentical) {
  auto env = storage::NewInMemoryEnv();
  storage::Options eo;
  eo.env = env;
  auto put = [](Store* s, uint64_t index, const std::string& k) {
    auto txn = s->BeginWrite();
    ASSERT_TRUE(txn->Put(k, "v" + k, 0).ok());
    ASSERT_TRUE(txn->Commit(index, nullptr).ok());
  };
  {
    auto engine = storage::Engine::Open("/deferred", eo);
    ASSERT_TRUE(engine.ok());
    StoreOptions so;
    so.defer_meta_writes = true;
    auto store = Store::Open(engine->get(), so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (uint64_t i = 1; i <= 10; ++i) put(store->get(), i, "k" + std::to_string(i % 4));
    EXPECT_EQ((*store)->current_revision(), 11);
    EXPECT_EQ((*store)->applied_index(), 10u);
    store->reset();
    ASSERT_TRUE((*engine)->Close().ok());  // flushed, but the meta was never written
  }
  {
    auto engine = storage::Engine::Open("/deferred", eo);
    ASSERT_TRUE(engine.ok());
    auto store = Store::Open(engine->get());
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(store.status().message().find("unfinished restore"), std::string::npos);
    ASSERT_TRUE((*engine)->Close().ok());
  }
  {
    // Finished properly: FlushDeferredMeta writes the records and drops the mark.
    auto engine = storage::Engine::Open("/deferred2", eo);
    ASSERT_TRUE(engine.ok());
    StoreOptions so;
    so.defer_meta_writes = true;
    auto store = Store::Open(engine->get(), so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (uint64_t i = 1; i <= 10; ++i) put(store->get(), i, "k" + std::to_string(i % 4));
    put(store->get(), 11, "k9");
    ASSERT_TRUE((*store)->FlushDeferredMeta().ok());
    store->reset();
    ASSERT_TRUE((*engine)->Close().ok());
  }
  auto engine = storage::Engine::Open("/deferred2", eo);
  ASSERT_TRUE(engine.ok());
  auto store = Store::Open(engine->get());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->current_revision(), 12);
  EXPECT_EQ((*store)->applied_index(), 11u);
  EXPECT_EQ((*store)->key_count(), 5u);  // k0..k3 and k9
  store->reset();
  ASSERT_TRUE((*engine)->Close().ok());
}

}  // namespace
}  // namespace tidemark::mvcc
