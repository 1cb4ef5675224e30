// Randomized test: the Store against a simple in-memory model of etcd's MVCC
// semantics. Prints its seed; TM_TEST_SEED=<n> replays a run.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mvcc/errors.h"
#include "mvcc/store.h"
#include "mvcc/test_util.h"

namespace tidemark::mvcc {
namespace {

using testing::TestStore;

// key -> every version ever written, oldest first; nullopt = tombstone.
class Model {
 public:
  int64_t current = 1;
  int64_t compact = -1;

  std::optional<KeyValue> At(const std::string& key, int64_t rev) const {
    auto it = versions_.find(key);
    if (it == versions_.end()) {
      return std::nullopt;
    }
    std::optional<KeyValue> found;
    for (const auto& [r, kv] : it->second) {
      if (r > rev) {
        break;
      }
      found = kv;
    }
    return found;
  }

  // A txn: applies ops at revision current + 1 if anything changes.
  struct Op {
    bool put = false;
    std::string key, end, value;
    int64_t lease = 0;
  };
  // Returns, per op, what the store must return: the previous version for a
  // put (as the txn sees it), the deleted versions for a delete.
  std::vector<std::vector<KeyValue>> Apply(const std::vector<Op>& ops) {
    const int64_t rev = current + 1;
    bool changed = false;
    std::vector<std::vector<KeyValue>> results;
    for (const Op& op : ops) {
      std::vector<KeyValue> result;
      if (op.put) {
        std::optional<KeyValue> prev = At(op.key, rev);
        if (prev) {
          result.push_back(*prev);
        }
        KeyValue kv{op.key,   prev ? prev->create_revision : rev,
                    rev,      prev ? prev->version + 1 : 1,
                    op.value, op.lease};
        Set(op.key, rev, kv);
        changed = true;
      } else {
        for (const std::string& k : LiveKeys(op.key, op.end, rev)) {
          result.push_back(*At(k, rev));
          Set(k, rev, std::nullopt);
          changed = true;
        }
      }
      results.push_back(std::move(result));
    }
    if (changed) {
      current = rev;
    }
    return results;
  }

  std::vector<std::string> LiveKeys(const std::string& key, const std::string& end,
                                    int64_t rev) const {
    std::vector<std::string> out;
    for (const auto& [k, _] : versions_) {
      if (!InRange(k, key, end)) {
        continue;
      }
      if (At(k, rev)) {
        out.push_back(k);
      }
    }
    return out;
  }

  // Independent restatement of etcd 3.4's Range (applierV3backend.Range).
  RangeResult Range(const RangeRequest& r) const {
    int64_t rev = r.revision <= 0 ? current : r.revision;
    std::vector<KeyValue> all;
    for (const std::string& k : LiveKeys(r.key, r.range_end, rev)) {
      all.push_back(*At(k, rev));
    }
    RangeResult res;
    res.count = static_cast<int64_t>(all.size());
    res.revision = current;
    if (r.count_only) {
      return res;
    }
    bool filters =
        r.min_mod_revision || r.max_mod_revision || r.min_create_revision || r.max_create_revision;
    if (r.sort_order == SortOrder::kNone && !filters && r.limit > 0 &&
        static_cast<int64_t>(all.size()) > r.limit + 1) {
      all.resize(r.limit + 1);
    }
    std::vector<KeyValue> kept;
    for (auto& kv : all) {
      if (r.max_mod_revision && kv.mod_revision > r.max_mod_revision) {
        continue;
      }
      if (r.min_mod_revision && kv.mod_revision < r.min_mod_revision) {
        continue;
      }
      if (r.max_create_revision && kv.create_revision > r.max_create_revision) {
        continue;
      }
      if (r.min_create_revision && kv.create_revision < r.min_create_revision) {
        continue;
      }
      kept.push_back(kv);
    }
    auto field = [&](const KeyValue& kv) -> std::pair<int64_t, std::string> {
      switch (r.sort_target) {
        case SortTarget::kKey:
          return {0, kv.key};
        case SortTarget::kVersion:
          return {kv.version, ""};
        case SortTarget::kCreate:
          return {kv.create_revision, ""};
        case SortTarget::kMod:
          return {kv.mod_revision, ""};
        case SortTarget::kValue:
          return {0, kv.value};
      }
      return {};
    };
    SortOrder order = r.sort_order;
    if (order == SortOrder::kNone && r.sort_target != SortTarget::kKey) {
      order = SortOrder::kAscend;
    }
    if (order == SortOrder::kAscend) {
      std::stable_sort(kept.begin(), kept.end(),
                       [&](const auto& a, const auto& b) { return field(a) < field(b); });
    } else if (order == SortOrder::kDescend) {
      std::stable_sort(kept.begin(), kept.end(),
                       [&](const auto& a, const auto& b) { return field(b) < field(a); });
    }
    if (r.limit > 0 && static_cast<int64_t>(kept.size()) > r.limit) {
      kept.resize(r.limit);
      res.more = true;
    }
    if (r.keys_only) {
      for (auto& kv : kept) {
        kv.value.clear();
      }
    }
    res.kvs = std::move(kept);
    return res;
  }

 private:
  void Set(const std::string& key, int64_t rev, std::optional<KeyValue> kv) {
    auto& v = versions_[key];
    if (!v.empty() && v.back().first == rev) {
      v.back().second = std::move(kv);  // same txn wrote the key again
    } else {
      v.emplace_back(rev, std::move(kv));
    }
  }
  std::map<std::string, std::vector<std::pair<int64_t, std::optional<KeyValue>>>> versions_;
};

uint64_t Seed() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once, before any thread starts.
  if (const char* env = std::getenv("TM_TEST_SEED")) {
    return std::strtoull(env, nullptr, 10);
  }
  return std::random_device{}();
}

TEST(ModelTest, RandomOpsMatchTheModel) {
  const uint64_t seed = Seed();
  std::printf("[ info ] ModelTest seed=%llu (replay with TM_TEST_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  SCOPED_TRACE("TM_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) {
    return static_cast<int>(rng() % static_cast<uint64_t>(n));
  };

  // A small key space with the tricky bytes, so keys collide often.
  const std::vector<std::string> keys = {"a",
                                         std::string("a\0", 2),
                                         std::string("a\0\0", 3),
                                         "a\x01",
                                         "a\xff",
                                         "ab",
                                         "b",
                                         "b\xff",
                                         "c",
                                         std::string("\0", 1),
                                         "\xff",
                                         "\xff\xff"};
  auto random_key = [&] {
    return keys[pick(static_cast<int>(keys.size()))];
  };
  auto random_end = [&](const std::string& key) -> std::string {
    switch (pick(4)) {
      case 0:
        return "";  // single key
      case 1:
        return std::string("\0", 1);  // from key
      default:
        return random_key();  // may be <= key: empty range
    }
  };

  StoreOptions opts;
  opts.compaction_batch_limit = 3;
  TestStore store(opts);
  StoreOptions lazy_opts;
  lazy_opts.run_compactor = false;
  TestStore twin(lazy_opts);  // same writes, never compacts physically
  Model model;
  int ranges = 0;
  std::map<int64_t, std::vector<Event>> committed;  // store's Commit() events by revision

  auto random_range = [&] {
    RangeRequest r;
    r.key = random_key();
    r.range_end = random_end(r.key);
    int64_t lo = std::max<int64_t>(model.compact, 1);
    auto rev_between = [&] {
      return lo + pick(static_cast<int>(model.current - lo + 1));
    };
    r.revision = pick(3) == 0 ? 0 : rev_between();
    r.limit = pick(3) == 0 ? pick(4) : 0;
    r.sort_order = static_cast<SortOrder>(pick(3));
    r.sort_target = static_cast<SortTarget>(pick(5));
    r.keys_only = pick(5) == 0;
    r.count_only = pick(8) == 0;
    if (pick(4) == 0) {
      r.min_mod_revision = rev_between();
    }
    if (pick(4) == 0) {
      r.max_mod_revision = rev_between();
    }
    if (pick(6) == 0) {
      r.max_create_revision = pick(static_cast<int>(model.current + 1));
    }
    if (pick(6) == 0) {
      r.min_create_revision = pick(static_cast<int>(model.current + 1));
    }
    return r;
  };
  auto expect_same = [&](const Result<RangeResult>& got, const RangeResult& want) {
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->count, want.count);
    ASSERT_EQ(got->more, want.more);
    ASSERT_EQ(got->revision, want.revision);
    ASSERT_EQ(got->kvs, want.kvs);
  };

  // History read back equals what Commit() reported (prev_kv omitted where
  // its revision is compacted).
  auto check_history = [&] {
    const int64_t from = std::max<int64_t>(model.compact, 2);
    std::vector<Event> want;
    for (auto& [rev, evs] : committed) {
      if (rev < from) {
        continue;
      }
      for (Event e : evs) {
        if (rev - 1 < model.compact) {
          e.prev_kv.reset();
        }
        want.push_back(std::move(e));
      }
    }
    auto history = store.store().Events(from, 0, 0);
    ASSERT_TRUE(history.ok()) << history.status().ToString();
    ASSERT_EQ(*history, want);
  };

  constexpr int kOps = 3000;
  for (int step = 0; step < kOps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const int what = pick(100);
    if (what < 45) {
      // A txn of 1..3 writes. Keys may repeat and deletes may cover this
      // txn's puts: etcd's API layer forbids that, but mvcc must handle it.
      std::vector<Model::Op> ops;
      int n = 1 + pick(3);
      for (int i = 0; i < n; ++i) {
        Model::Op op;
        op.put = pick(4) != 0;
        op.key = random_key();
        if (op.put) {
          op.value = "v" + std::to_string(pick(5));
          op.lease = pick(3);
        } else {
          op.end = pick(2) ? "" : random_end(op.key);
        }
        ops.push_back(op);
      }
      const auto want_results = model.Apply(ops);
      for (TestStore* t : {&store, &twin}) {
        auto txn = t->store().BeginWrite();
        for (size_t i = 0; i < ops.size(); ++i) {
          const auto& op = ops[i];
          if (op.put) {
            auto prev = txn->Put(op.key, op.value, op.lease);
            ASSERT_TRUE(prev.ok());
            ASSERT_EQ(prev->has_value(), !want_results[i].empty());
            if (*prev) {
              ASSERT_EQ(**prev, want_results[i][0]);
            }
          } else {
            auto deleted = txn->DeleteRange(op.key, op.end);
            ASSERT_TRUE(deleted.ok());
            ASSERT_EQ(*deleted, want_results[i]);
          }
        }
        if (t == &store && pick(2) == 0) {
          // A range inside the txn sees its writes (the model already has them).
          RangeRequest r = random_range();
          r.revision = 0;
          ASSERT_NO_FATAL_FAILURE(expect_same(txn->Range(r), model.Range(r)));
          ++ranges;
        }
        std::vector<Event> events;
        ASSERT_TRUE(txn->Commit(t->NextIndex(), &events).ok());
        if (t == &store && !events.empty()) {
          committed[model.current] = std::move(events);
        }
      }
      ASSERT_EQ(store.store().current_revision(), model.current);
      ASSERT_EQ(twin.store().current_revision(), model.current);
    } else if (what < 48 && model.current > 1) {
      int64_t lo = std::max<int64_t>(model.compact + 1, 1);
      if (lo <= model.current) {
        int64_t rev = lo + pick(static_cast<int>(model.current - lo + 1));
        ASSERT_TRUE(store.store().Compact(rev, store.NextIndex()).ok());
        ASSERT_TRUE(twin.store().Compact(rev, twin.NextIndex()).ok());
        model.compact = rev;
        if (pick(2)) {
          ASSERT_TRUE(store.store().WaitForCompaction().ok());
        }
      }
    } else if (what < 49) {
      store.Reopen(opts);
    } else if (what < 51) {
      ASSERT_NO_FATAL_FAILURE(check_history());
    } else {
      RangeRequest r = random_range();
      ASSERT_NO_FATAL_FAILURE(expect_same(store.store().Range(r), model.Range(r)));
      ++ranges;
      if (model.compact > 1) {
        r.revision = model.compact - 1;
        ASSERT_TRUE(IsCompacted(store.store().Range(r).status()));
      }
    }
  }
  ASSERT_NO_FATAL_FAILURE(check_history());
  // Same writes and compactions: same hash, whatever physical state.
  ASSERT_TRUE(store.store().WaitForCompaction().ok());
  auto h1 = store.store().HashKV(0);
  auto h2 = twin.store().HashKV(0);
  ASSERT_TRUE(h1.ok() && h2.ok());
  EXPECT_EQ(h1->hash, h2->hash);
  EXPECT_EQ(store.store().key_count(),
            model.LiveKeys(std::string("\0", 1), std::string("\0", 1), model.current).size());
  std::printf("[ info ] ModelTest: %d ranges checked, final revision %lld, compact %lld\n", ranges,
              static_cast<long long>(model.current), static_cast<long long>(model.compact));
}

}  // namespace
}  // namespace tidemark::mvcc
