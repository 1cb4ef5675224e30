#include "bench/histogram.h"

#include <cstdint>
#include <random>

#include <gtest/gtest.h>

namespace tidemark::bench {
namespace {

TEST(HistogramTest, EmptyHistogramReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.ValueAtPercentile(50), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_TRUE(h.Cdf().empty());
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (int v = 1; v <= 100; ++v)
    h.Record(v);
  EXPECT_EQ(h.ValueAtPercentile(50), 50);
  EXPECT_EQ(h.ValueAtPercentile(90), 90);
  EXPECT_EQ(h.ValueAtPercentile(99), 99);
  EXPECT_EQ(h.ValueAtPercentile(100), 100);
  EXPECT_EQ(h.min(), 1);
  EXPECT_DOUBLE_EQ(h.Mean(), 50.5);
}

// A known sample: 1..1,000,000 ns, each once. The exact p-th percentile is
// p * 10,000; the histogram may report at most one bucket width above it
// (relative error < 2^-(kSubBucketBits-1)).
TEST(HistogramTest, PercentilesOfKnownSampleWithinBucketPrecision) {
  Histogram h;
  for (int64_t v = 1; v <= 1000000; ++v)
    h.Record(v);
  const double tol = 1.0 / (1 << (Histogram::kSubBucketBits - 1));
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double exact = p * 10000;
    double got = static_cast<double>(h.ValueAtPercentile(p));
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * (1 + tol)) << "p" << p;
  }
  EXPECT_EQ(h.ValueAtPercentile(100), 1000000);
  EXPECT_EQ(h.max(), 1000000);
  EXPECT_NEAR(h.Mean(), 500000.5, 1e-6);
}

TEST(HistogramTest, SingleValueIsEveryPercentile) {
  Histogram h;
  h.Record(123456789, 10);
  EXPECT_EQ(h.ValueAtPercentile(0), 123456789);
  EXPECT_EQ(h.ValueAtPercentile(50), 123456789);
  EXPECT_EQ(h.ValueAtPercentile(100), 123456789);
}

TEST(HistogramTest, BucketsAreContiguousAndMonotone) {
  int64_t prev_hi = -1;
  for (size_t i = 0; i < 5000; ++i) {
    int64_t hi = Histogram::HighestEquivalent(i);
    ASSERT_GT(hi, prev_hi) << i;
    ASSERT_EQ(Histogram::IndexOf(hi), i);
    ASSERT_EQ(Histogram::IndexOf(prev_hi + 1), i);
    prev_hi = hi;
  }
  EXPECT_LT(Histogram::IndexOf(INT64_MAX), 100000u);
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(12, 1.5);
  Histogram a, b, all;
  for (int i = 0; i < 20000; ++i) {
    auto v = static_cast<int64_t>(d(rng));
    (i % 2 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {1.0, 50.0, 99.0, 99.99})
    EXPECT_EQ(a.ValueAtPercentile(p), all.ValueAtPercentile(p));
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  auto cdf = a.Cdf();
  ASSERT_FALSE(cdf.empty());
  EXPECT_DOUBLE_EQ(cdf.back().fraction, 1.0);
}

TEST(HistogramTest, EncodeDecodeRoundTrip) {
  Histogram h;
  for (int64_t v : {0, 5, 300, 123456, 99999999})
    h.Record(v, 3);
  Histogram back;
  ASSERT_TRUE(Histogram::Decode(h.Encode(), &back));
  EXPECT_EQ(back.count(), h.count());
  EXPECT_EQ(back.max(), h.max());
  EXPECT_EQ(back.min(), h.min());
  EXPECT_EQ(back.ValueAtPercentile(50), h.ValueAtPercentile(50));
  EXPECT_NEAR(back.Mean(), h.Mean(), 1e-3);
  EXPECT_FALSE(Histogram::Decode("garbage", &back));
  EXPECT_FALSE(Histogram::Decode("2 0 0 0;1:1", &back));  // counts do not add up
}

}  // namespace
}  // namespace tidemark::bench
