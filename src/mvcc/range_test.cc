// Range semantics (etcd-v3-api.md sections 3.2 and 3.3).

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mvcc/errors.h"
#include "mvcc/store.h"
#include "mvcc/test_util.h"

namespace tidemark::mvcc {
namespace {

using testing::Keys;
using testing::TestStore;
using V = std::vector<std::string>;

constexpr std::string_view kNul("\0", 1);

class RangeTest : public ::testing::Test {
 protected:
  static RangeRequest Req(std::string_view key, std::string_view end = {}) {
    RangeRequest r;
    r.key = key;
    r.range_end = end;
    return r;
  }
  TestStore t_;
};

TEST_F(RangeTest, RangeEndConventions) {
  for (std::string k : {"a", "b", "ba", "c"}) {
    t_.Put(k, k);
  }
  EXPECT_EQ(Keys(t_.Range(Req("b"))), V{"b"});                           // single key
  EXPECT_EQ(Keys(t_.Range(Req("bz"))), V{});                             // missing single key
  EXPECT_EQ(Keys(t_.Range(Req("b", "c"))), (V{"b", "ba"}));              // [b, c)
  EXPECT_EQ(Keys(t_.Range(Req("b", kNul))), (V{"b", "ba", "c"}));        // from key
  EXPECT_EQ(Keys(t_.Range(Req(kNul, kNul))), (V{"a", "b", "ba", "c"}));  // all
  EXPECT_EQ(t_.Range(Req("c", "b")).count, 0);                           // end <= key: empty
  EXPECT_EQ(t_.Range(Req("b", "b")).count, 0);
}

TEST_F(RangeTest, KeysWithNulAndFfBytesKeepByteOrder) {
  V keys = {"a",
            std::string("a\0", 2),
            std::string("a\0\0", 3),
            std::string("a\0\xff", 3),
            "a\x01",
            "a\xff",
            "a\xff\xff",
            "b",
            "\xff",
            "\xff\xff"};
  for (size_t i = keys.size(); i-- > 0;) {
    t_.Put(keys[i], "v" + std::to_string(i));
  }
  EXPECT_EQ(Keys(t_.Range(Req(kNul, kNul))), keys);
  // Prefix "a\0": range_end = "a\x01".
  EXPECT_EQ(Keys(t_.Range(Req(std::string("a\0", 2), "a\x01"))),
            (V{std::string("a\0", 2), std::string("a\0\0", 3), std::string("a\0\xff", 3)}));
  // Prefix "a\xff" (carry): range_end = "b".
  EXPECT_EQ(Keys(t_.Range(Req("a\xff", "b"))), (V{"a\xff", "a\xff\xff"}));
  // All-0xff prefix: range_end "\0" = to the end.
  EXPECT_EQ(Keys(t_.Range(Req("\xff", kNul))), (V{"\xff", "\xff\xff"}));
  EXPECT_EQ(Keys(t_.Range(Req(std::string("a\0\0", 3)))), V{std::string("a\0\0", 3)});
  EXPECT_EQ(t_.Range(Req(std::string("a\0\0", 3))).kvs[0].value, "v2");
  EXPECT_EQ(Keys(t_.Range(Req("a", std::string("a\0", 2)))), V{"a"});
}

TEST_F(RangeTest, LimitCountAndMore) {
  for (std::string k : {"a", "b", "c", "d", "e"}) {
    t_.Put(k, k);
  }
  RangeRequest r = Req("a", "z");
  r.limit = 2;
  RangeResult res = t_.Range(r);
  EXPECT_EQ(Keys(res), (V{"a", "b"}));
  EXPECT_TRUE(res.more);
  EXPECT_EQ(res.count, 5);  // count ignores limit
  r.limit = 5;
  res = t_.Range(r);
  EXPECT_EQ(res.kvs.size(), 5u);
  EXPECT_FALSE(res.more);
  r.limit = 4;
  EXPECT_TRUE(t_.Range(r).more);
  r.limit = -1;  // negative = unlimited (etcd)
  res = t_.Range(r);
  EXPECT_EQ(res.kvs.size(), 5u);
  EXPECT_FALSE(res.more);
}

TEST_F(RangeTest, CountOnlyAndKeysOnly) {
  t_.Put("a", "1", 3);
  t_.Put("b", "2");
  RangeRequest r = Req("a", "z");
  r.count_only = true;
  r.limit = 1;
  RangeResult res = t_.Range(r);
  EXPECT_TRUE(res.kvs.empty());
  EXPECT_EQ(res.count, 2);
  EXPECT_FALSE(res.more);

  r = Req("a", "z");
  r.keys_only = true;
  res = t_.Range(r);
  ASSERT_EQ(res.kvs.size(), 2u);
  EXPECT_EQ(res.kvs[0].value, "");
  EXPECT_EQ(res.kvs[0].lease, 3);
  EXPECT_EQ(res.kvs[0].version, 1);
  EXPECT_EQ(res.kvs[0].mod_revision, 2);
  // keys_only with sort by value: sorted by the (stripped) values.
  r.sort_target = SortTarget::kValue;
  r.sort_order = SortOrder::kDescend;
  res = t_.Range(r);
  EXPECT_EQ(Keys(res), (V{"b", "a"}));
  EXPECT_EQ(res.kvs[0].value, "");
}

class SortTest : public RangeTest {
 protected:
  void SetUp() override {
    // key  create  mod  version  value
    // a    3       9    3        "m"
    // b    4       4    1        "z"
    // c    2       8    3        "a"
    // d    5       5    1        "q"
    t_.Put("c", "x");  // 2
    t_.Put("a", "x");  // 3
    t_.Put("b", "z");  // 4
    t_.Put("d", "q");  // 5
    t_.Put("c", "y");  // 6 (c v2)
    t_.Put("a", "y");  // 7 (a v2)
    t_.Put("c", "a");  // 8 (c v3)
    t_.Put("a", "m");  // 9 (a v3)
  }
  V Sorted(SortOrder order, SortTarget target, int64_t limit = 0) {
    RangeRequest r = Req("a", "z");
    r.sort_order = order;
    r.sort_target = target;
    r.limit = limit;
    return Keys(t_.Range(r));
  }
};

TEST_F(SortTest, EveryTargetAndOrder) {
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kKey), (V{"a", "b", "c", "d"}));
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kKey), (V{"a", "b", "c", "d"}));
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kKey), (V{"d", "c", "b", "a"}));
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kCreate), (V{"c", "a", "b", "d"}));
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kCreate), (V{"d", "b", "a", "c"}));
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kMod), (V{"b", "d", "c", "a"}));
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kMod), (V{"a", "c", "d", "b"}));
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kValue), (V{"c", "a", "d", "b"}));
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kValue), (V{"b", "d", "a", "c"}));
  // Version ties (a,c = 3; b,d = 1) keep ascending key order.
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kVersion), (V{"b", "d", "a", "c"}));
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kVersion), (V{"a", "c", "b", "d"}));
}

TEST_F(SortTest, NoneWithNonKeyTargetSortsAscending) {
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kMod), (V{"b", "d", "c", "a"}));
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kCreate), (V{"c", "a", "b", "d"}));
}

TEST_F(SortTest, SortWithLimitSortsWholeRangeFirst) {
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kMod, 1), V{"a"});
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kCreate, 2), (V{"c", "a"}));
  RangeRequest r = Req("a", "z");
  r.sort_order = SortOrder::kDescend;
  r.sort_target = SortTarget::kCreate;
  r.limit = 1;
  RangeResult res = t_.Range(r);
  EXPECT_TRUE(res.more);
  EXPECT_EQ(res.count, 4);
}

// etcd 3.4 quirk: with sort_order NONE the server fetches limit + 1 keys in
// key order and only then sorts them by the target.
TEST_F(SortTest, NoneWithTargetAndLimitSortsOnlyTheFetchedPrefix) {
  // Fetched: a (mod 9), b (mod 4) -> sorted by mod: b, a -> limit 1: b.
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kMod, 1), V{"b"});
  // Whereas ASCEND sorts everything first: b (4), d (5), ...
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kMod, 1), V{"b"});
  // Fetched a (create 3), b (4), c (2) -> c, a.
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kCreate, 2), (V{"c", "a"}));
  // Fetched a (create 3), b (4) -> a; ASCEND over all -> c.
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kCreate, 1), V{"a"});
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kCreate, 1), V{"c"});
}

TEST_F(SortTest, MinMaxFiltersPruneKvsButNotCount) {
  RangeRequest r = Req("a", "z");
  r.min_mod_revision = 5;
  r.max_mod_revision = 8;
  RangeResult res = t_.Range(r);
  EXPECT_EQ(Keys(res), (V{"c", "d"}));
  EXPECT_EQ(res.count, 4);

  r = Req("a", "z");
  r.max_create_revision = 3;
  EXPECT_EQ(Keys(t_.Range(r)), (V{"a", "c"}));
  r.min_create_revision = 3;
  EXPECT_EQ(Keys(t_.Range(r)), V{"a"});

  // Go concurrency's lock query: max_create_revision + CREATE DESCEND + limit 1.
  r = Req("a", "z");
  r.max_create_revision = 4;
  r.sort_target = SortTarget::kCreate;
  r.sort_order = SortOrder::kDescend;
  r.limit = 1;
  res = t_.Range(r);
  EXPECT_EQ(Keys(res), V{"b"});
  EXPECT_TRUE(res.more);  // a and c also matched
  EXPECT_EQ(res.count, 4);

  // Filters fetch the whole range even with limit.
  r = Req("a", "z");
  r.min_mod_revision = 8;
  r.limit = 1;
  res = t_.Range(r);
  EXPECT_EQ(Keys(res), V{"a"});
  EXPECT_TRUE(res.more);
}

TEST_F(RangeTest, HistoricalReadsAndRevisionErrors) {
  for (int i = 0; i < 10; ++i) {
    t_.Put("k", std::to_string(i));  // revs 2..11
  }
  t_.Put("other", "o");  // 12
  for (int64_t rev = 2; rev <= 11; ++rev) {
    RangeRequest r = Req("k");
    r.revision = rev;
    RangeResult res = t_.Range(r);
    ASSERT_EQ(res.kvs.size(), 1u);
    EXPECT_EQ(res.kvs[0].value, std::to_string(rev - 2));
    EXPECT_EQ(res.kvs[0].version, rev - 1);
    EXPECT_EQ(res.revision, 12);  // header revision = current
  }
  RangeRequest r = Req("a", "z");
  r.revision = 11;
  EXPECT_EQ(Keys(t_.Range(r)), V{"k"});
  r.revision = -3;
  EXPECT_EQ(Keys(t_.Range(r)), (V{"k", "other"}));

  r.revision = 13;
  auto future = t_.store().Range(r);
  EXPECT_TRUE(IsFutureRev(future.status()));
  EXPECT_EQ(future.status().message(), "mvcc: required revision is a future revision");
  EXPECT_EQ(future.status().code(), Code::kOutOfRange);

  t_.Compact(6);
  r.revision = 5;
  auto compacted = t_.store().Range(r);
  EXPECT_TRUE(IsCompacted(compacted.status()));
  EXPECT_EQ(compacted.status().message(), "mvcc: required revision has been compacted");
  r.revision = 6;  // exactly at the compact revision is allowed
  r.key = "k";
  r.range_end = "";
  RangeResult at = t_.Range(r);
  ASSERT_EQ(at.kvs.size(), 1u);
  EXPECT_EQ(at.kvs[0].value, "4");
}

}  // namespace
}  // namespace tidemark::mvcc
