#include "server/auto_compactor.h"

#include <gtest/gtest.h>

#include <vector>

namespace tidemark::server {
namespace {

constexpr int64_t kSec = 1000000000LL;

struct Fixture {
  ManualClock clock;
  int64_t current = 1;
  int64_t compacted = -1;
  std::vector<int64_t> compactions;
  AutoCompactor Make(const std::string& mode, const std::string& retention) {
    auto c = AutoCompactor::Create(
        mode, retention, &clock, [this] { return current; }, [this] { return compacted; },
        [this](int64_t rev) {
          compactions.push_back(rev);
          compacted = rev;
        });
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
};

TEST(AutoCompactorTest, ParsesDurations) {
  EXPECT_EQ(*ParseRetentionDuration("1"), 3600 * kSec);
  EXPECT_EQ(*ParseRetentionDuration("1h30m"), 5400 * kSec);
  EXPECT_EQ(*ParseRetentionDuration("90s"), 90 * kSec);
  EXPECT_EQ(*ParseRetentionDuration("500ms"), kSec / 2);
  EXPECT_FALSE(ParseRetentionDuration("5 parsecs").ok());
  EXPECT_FALSE(ParseRetentionDuration("").ok());
}

TEST(AutoCompactorTest, RejectsBadFlags) {
  ManualClock clock;
  auto noop = [] { return int64_t{0}; };
  auto bad_mode = AutoCompactor::Create("hourly", "1", &clock, noop, noop, [](int64_t) {});
  EXPECT_NE(bad_mode.status().message().find("--auto-compaction-mode"), std::string::npos);
  auto bad_rev = AutoCompactor::Create("revision", "1h", &clock, noop, noop, [](int64_t) {});
  EXPECT_NE(bad_rev.status().message().find("--auto-compaction-retention"), std::string::npos);
  auto off = AutoCompactor::Create("periodic", "0", &clock, noop, noop, [](int64_t) {});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled());
}

TEST(AutoCompactorTest, PeriodicKeepsRetentionWindow) {
  Fixture f;
  auto c = f.Make("periodic", "100s");  // samples every 10 s
  ASSERT_EQ(c.interval_ns(), 10 * kSec);
  for (int step = 1; step <= 30; ++step) {
    f.current = 100 + step * 10;  // revision grows 10 per interval
    f.clock.Advance(10 * kSec);
    c.Tick();
  }
  ASSERT_FALSE(f.compactions.empty());
  // At t=300 s the newest sample >= 100 s old is the one from t=200 s.
  EXPECT_EQ(f.compactions.back(), 100 + 20 * 10);
  // Compactions only move forward.
  for (size_t i = 1; i < f.compactions.size(); ++i) {
    EXPECT_GT(f.compactions[i], f.compactions[i - 1]);
  }
}

TEST(AutoCompactorTest, RevisionModeKeepsLastN) {
  Fixture f;
  auto c = f.Make("revision", "1000");
  f.current = 500;
  f.clock.Advance(5 * 60 * kSec);
  c.Tick();
  EXPECT_TRUE(f.compactions.empty());  // not enough history yet
  f.current = 5000;
  f.clock.Advance(60 * kSec);
  c.Tick();  // before the 5-minute interval: nothing
  EXPECT_TRUE(f.compactions.empty());
  f.clock.Advance(4 * 60 * kSec);
  c.Tick();
  ASSERT_EQ(f.compactions.size(), 1u);
  EXPECT_EQ(f.compactions[0], 4000);
}

}  // namespace
}  // namespace tidemark::server
