#include "base/clock.h"

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace tidemark {
namespace {

TEST(ClockTest, SystemClockIsPlausible) {
  Clock* clock = Clock::System();
  ASSERT_NE(clock, nullptr);
  EXPECT_GT(clock->NowNanos(), int64_t{1'600'000'000} * 1'000'000'000);  // after 2020
  const int64_t a = clock->MonotonicNanos();
  const int64_t b = clock->MonotonicNanos();
  EXPECT_LE(a, b);
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(1000, 50);
  EXPECT_EQ(clock.NowNanos(), 1000);
  EXPECT_EQ(clock.MonotonicNanos(), 50);
  clock.Advance(std::chrono::microseconds(2));
  EXPECT_EQ(clock.NowNanos(), 3000);
  EXPECT_EQ(clock.MonotonicNanos(), 2050);
  clock.Advance(-5);  // ignored: monotonic never goes back
  EXPECT_EQ(clock.MonotonicNanos(), 2050);
  clock.SetNowNanos(10);  // wall clock step back (NTP)
  EXPECT_EQ(clock.NowNanos(), 10);
  EXPECT_EQ(clock.MonotonicNanos(), 2050);
}

TEST(ClockTest, ManualClockIsThreadSafe) {
  ManualClock clock(0, 0);
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&clock] {
      for (int i = 0; i < 10000; ++i) {
        clock.Advance(1);
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(clock.MonotonicNanos(), 40000);
  EXPECT_EQ(clock.NowNanos(), 40000);
}

}  // namespace
}  // namespace tidemark
