#include "bench/stats.h"

#include <cmath>

#include <gtest/gtest.h>

namespace tidemark::bench {
namespace {

TEST(StatsTest, MedianAndMean) {
  EXPECT_DOUBLE_EQ(Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Mean({1, 2, 3, 4}), 2.5);
  EXPECT_NEAR(SampleStdDev({10, 12, 11, 13, 9}), std::sqrt(2.5), 1e-12);
}

// Closed forms: df = 1 is Cauchy, df = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
TEST(StatsTest, StudentTCdfMatchesClosedForms) {
  for (double t : {-5.0, -1.0, 0.0, 0.3, 2.0, 12.7}) {
    EXPECT_NEAR(StudentTCdf(t, 1), 0.5 + std::atan(t) / M_PI, 1e-12) << t;
    EXPECT_NEAR(StudentTCdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-12) << t;
  }
}

// Printed t tables (two-sided 95 % / 99 %).
TEST(StatsTest, StudentTQuantileMatchesTables) {
  EXPECT_NEAR(StudentTQuantile(0.975, 1), 12.706205, 1e-5);
  EXPECT_NEAR(StudentTQuantile(0.975, 4), 2.776445, 1e-5);
  EXPECT_NEAR(StudentTQuantile(0.975, 10), 2.228139, 1e-5);
  EXPECT_NEAR(StudentTQuantile(0.995, 8), 3.355387, 1e-5);
  EXPECT_NEAR(StudentTQuantile(0.975, 1e6), 1.959966, 1e-4);
  EXPECT_NEAR(StudentTQuantile(0.025, 4), -2.776445, 1e-5);
}

// a: mean 11, s = sqrt(2.5), n = 5 -> 11 +- 2.776445 * sqrt(2.5) / sqrt(5).
TEST(StatsTest, MeanCi95ByHand) {
  Interval ci = MeanCi95({10, 12, 11, 13, 9});
  EXPECT_NEAR(ci.low, 11 - 1.963243, 1e-5);
  EXPECT_NEAR(ci.high, 11 + 1.963243, 1e-5);
  Interval one = MeanCi95({7});
  EXPECT_DOUBLE_EQ(one.low, 7);
  EXPECT_DOUBLE_EQ(one.high, 7);
}

// By hand: va/na = 2.5/5 = 0.5, vb/nb = 2/6; se = sqrt(0.8333) = 0.912871;
// t = 4 / se = 4.381780; df = 0.8333^2 / (0.25/4 + 0.1111/5) = 8.196721.
// p (two-sided) = 0.0022105, from numerically integrating the t density.
TEST(StatsTest, WelchTTestByHand) {
  WelchResult r = WelchTTest({10, 12, 11, 13, 9}, {14, 15, 13, 16, 17, 15});
  ASSERT_TRUE(r.valid);
  EXPECT_DOUBLE_EQ(r.diff, 4);
  EXPECT_NEAR(r.t, 4.381780, 1e-5);
  EXPECT_NEAR(r.df, 8.196721, 1e-5);
  EXPECT_NEAR(r.p_value, 0.0022105, 2e-6);
  EXPECT_LT(r.ci95.low, 4);
  EXPECT_GT(r.ci95.high, 4);
  EXPECT_GT(r.ci95.low, 0);  // significant at 5 %
}

TEST(StatsTest, WelchNeedsTwoValuesEach) {
  EXPECT_FALSE(WelchTTest({1}, {2, 3}).valid);
  EXPECT_FALSE(WelchTTest({1, 1}, {2, 2}).valid);  // zero spread
}

TEST(StatsTest, RatioVerdicts) {
  RatioResult big = RatioTest({100, 110, 90, 105}, {230, 240, 220, 235});
  ASSERT_TRUE(big.valid);
  EXPECT_NEAR(big.ratio, 2.3, 0.1);
  EXPECT_LT(big.p_value, 0.001);
  std::string v = Verdict("put throughput", big);
  EXPECT_EQ(v.rfind("B/A put throughput 2.", 0), 0u) << v;
  EXPECT_NE(v.find("[CI95 "), std::string::npos) << v;
  EXPECT_NE(v.find("p < 0.001"), std::string::npos) << v;

  RatioResult same = RatioTest({100, 120, 90}, {110, 95, 115});
  std::string s = Verdict("put throughput", same);
  EXPECT_NE(s.find("no significant difference"), std::string::npos) << s;
}

TEST(StatsTest, IncompleteBetaSymmetry) {
  for (double x : {0.1, 0.4, 0.9}) {
    EXPECT_NEAR(RegularizedIncompleteBeta(x, 2.5, 4) + RegularizedIncompleteBeta(1 - x, 4, 2.5), 1,
                1e-12);
  }
  EXPECT_NEAR(RegularizedIncompleteBeta(0.3, 1, 1), 0.3, 1e-12);
}

}  // namespace
}  // namespace tidemark::bench
