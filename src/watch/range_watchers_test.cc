#include "watch/range_watchers.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tidemark::watch {
namespace {

struct Range {
  std::string key, end;
};

// A few overlapping ranges: prefixes, a [key, end) range, from-key, all keys.
const std::vector<Range> kRanges = {
    {"/a/", "/a0"}, {"/a/b/", "/a/b0"}, {"/b/", "/b0"}, {"/a/c", "/b/x"},
    {"/b/m", std::string(1, '\0')}, {std::string(1, '\0'), std::string(1, '\0')},
};
const std::vector<std::string> kKeys = {"/a/", "/a/b/1", "/a/c", "/a/z", "/b/", "/b/m",
                                        "/b/x", "/b/y", "/c", "0", std::string(1, '\0')};

bool Holds(const Range& r, const std::string& k) {
  if (k < r.key) return false;
  if (r.end == std::string(1, '\0')) return true;
  return k < r.end;
}

TEST(RangeWatchersTest, MatchesBruteForceUnderRandomInsertsAndRemoves) {
  const unsigned seed = std::getenv("TM_TEST_SEED") ? std::atoi(std::getenv("TM_TEST_SEED"))
                                                     : std::random_device{}();
  std::printf("TM_TEST_SEED=%u\n", seed);
  std::mt19937 rng(seed);
  RangeWatchers rw;
  std::vector<Watcher*> members, all;
  std::vector<size_t> range_of;  // by position in `all`
  for (int step = 0; step < 4000; ++step) {
    const bool insert = members.empty() || rng() % 100 < 55;
    if (insert) {
      const size_t r = rng() % kRanges.size();
      Watcher* w = Watcher::Create(kRanges[r].key, kRanges[r].end);
      w->id = static_cast<int64_t>(all.size());
      all.push_back(w);
      range_of.push_back(r);
      rw.Insert(w);
      members.push_back(w);
    } else {
      // Remove heads and followers alike, in any order.
      const size_t i = rng() % members.size();
      rw.Remove(members[i]);
      members[i] = members.back();
      members.pop_back();
    }
    ASSERT_EQ(rw.size(), members.size());
    if (step % 50 != 0) continue;
    std::set<Watcher*> listed;
    rw.ForAll([&](Watcher* w) { EXPECT_TRUE(listed.insert(w).second) << "listed twice"; });
    ASSERT_EQ(listed, std::set<Watcher*>(members.begin(), members.end())) << "step " << step;
    std::set<size_t> distinct;
    for (Watcher* w : members) distinct.insert(range_of[w->id]);
    EXPECT_EQ(rw.distinct_ranges(), distinct.size());
    for (const std::string& k : kKeys) {
      std::multiset<Watcher*> got, want;
      rw.ForEachMatching(k, [&](Watcher* w) { got.insert(w); });
      for (Watcher* w : members) {
        if (Holds(kRanges[range_of[w->id]], k)) want.insert(w);
      }
      ASSERT_EQ(got, want) << "key " << k << " at step " << step;
    }
  }
  for (Watcher* w : members) rw.Remove(w);
  EXPECT_EQ(rw.size(), 0u);
  EXPECT_EQ(rw.distinct_ranges(), 0u);
  for (Watcher* w : all) Watcher::Destroy(w);
}

TEST(RangeWatchersTest, HeadLeavingHandsItsGroupToAFollower) {
  RangeWatchers rw;
  Watcher* a = Watcher::Create("/p/", "/p0");
  Watcher* b = Watcher::Create("/p/", "/p0");
  Watcher* c = Watcher::Create("/p/", "/p0");
  Watcher* d = Watcher::Create("/q/", "/q0");
  for (Watcher* w : {a, b, c, d}) rw.Insert(w);
  EXPECT_EQ(rw.distinct_ranges(), 2u);
  rw.Remove(a);  // the head of /p/
  std::vector<Watcher*> got;
  rw.ForEachMatching("/p/x", [&](Watcher* w) { got.push_back(w); });
  std::sort(got.begin(), got.end());
  std::vector<Watcher*> want = {b, c};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  rw.Remove(c);
  rw.Remove(b);
  EXPECT_EQ(rw.distinct_ranges(), 1u);
  got.clear();
  rw.ForEachMatching("/p/x", [&](Watcher* w) { got.push_back(w); });
  EXPECT_TRUE(got.empty());
  rw.Remove(d);
  for (Watcher* w : {a, b, c, d}) Watcher::Destroy(w);
}

}  // namespace
}  // namespace tidemark::watch
