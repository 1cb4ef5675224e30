#include "bench/distributions.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "bench/workload.h"

namespace tidemark::bench {
namespace {

// Pearson chi-square statistic of observed counts against probabilities.
double ChiSquare(const std::vector<uint64_t>& observed, const std::vector<double>& p, double n) {
  double chi2 = 0;
  for (size_t k = 0; k < observed.size(); ++k) {
    double e = p[k] * n;
    chi2 += (observed[k] - e) * (observed[k] - e) / e;
  }
  return chi2;
}

// 50 keys -> 49 degrees of freedom; the 0.999 quantile of chi2(49) is 85.35.
// With a fixed seed the test is deterministic; the bound would fail only
// 1 time in 1000 for a correct sampler and any seed.
TEST(DistributionsTest, ZipfFrequenciesPassChiSquare) {
  constexpr uint64_t kKeys = 50;
  constexpr int kSamples = 200000;
  const uint64_t seed = 12345;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  for (double alpha : {0.5, 0.99, 1.5}) {
    ZipfChooser z(kKeys, alpha);
    Rng rng(seed);
    std::vector<uint64_t> counts(kKeys, 0);
    for (int i = 0; i < kSamples; ++i)
      ++counts[z.Next(rng)];
    // Expected probabilities from the definition, independent of the CDF.
    std::vector<double> p(kKeys);
    double norm = 0;
    for (uint64_t k = 0; k < kKeys; ++k)
      norm += std::pow(k + 1.0, -alpha);
    for (uint64_t k = 0; k < kKeys; ++k) {
      p[k] = std::pow(k + 1.0, -alpha) / norm;
      EXPECT_NEAR(z.Probability(k), p[k], 1e-12);
    }
    EXPECT_LT(ChiSquare(counts, p, kSamples), 85.35) << "alpha=" << alpha;
    // Power check: the same counts are far from uniform.
    std::vector<double> uniform(kKeys, 1.0 / kKeys);
    EXPECT_GT(ChiSquare(counts, uniform, kSamples), 1000) << "alpha=" << alpha;
  }
}

TEST(DistributionsTest, HotSetSendsTheRightShareToHotKeys) {
  auto c = ParseKeyChooser("hot:90:10", 1000);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Rng rng(1);
  int hot = 0;
  for (int i = 0; i < 100000; ++i)
    hot += (*c)->Next(rng) < 100;
  EXPECT_NEAR(hot / 100000.0, 0.90, 0.01);
}

TEST(DistributionsTest, SequentialWraps) {
  SequentialChooser s(3);
  Rng rng(1);
  std::vector<uint64_t> got;
  for (int i = 0; i < 7; ++i)
    got.push_back(s.Next(rng));
  EXPECT_EQ(got, (std::vector<uint64_t>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(DistributionsTest, BadSpecsAreClearErrors) {
  auto z = ParseKeyChooser("zipf:0", 10);
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.status().code(), Code::kInvalidArgument);
  EXPECT_NE(z.status().message().find("alpha must be > 0"), std::string::npos);
  EXPECT_FALSE(ParseKeyChooser("zipf:-1", 10).ok());
  EXPECT_FALSE(ParseKeyChooser("zipf:abc", 10).ok());
  auto unknown = ParseKeyChooser("pareto", 10);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown key distribution"), std::string::npos);
  EXPECT_FALSE(ParseKeyChooser("hot:90", 10).ok());
  EXPECT_FALSE(ParseSizeDist("10-5").ok());
  EXPECT_FALSE(ParseDelayDist("exp:0ms").ok());
  EXPECT_FALSE(ParseDurationNs("5 parsecs").ok());
  auto mix = ParseOpMix("put=1,scan=2");
  ASSERT_FALSE(mix.ok());
  EXPECT_NE(mix.status().message().find("unknown workload operation 'scan'"), std::string::npos);
}

TEST(DistributionsTest, ParsesSizesDelaysAndMixes) {
  auto s = ParseSizeDist("100-200");
  ASSERT_TRUE(s.ok());
  Rng rng(3);
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = s->Next(rng);
    ASSERT_GE(v, 100u);
    ASSERT_LE(v, 200u);
  }
  auto d = ParseDelayDist("uniform:1ms-2ms");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->Describe(), "uniform:1ms-2ms");
  auto e = ParseDelayDist("exp:250us");
  ASSERT_TRUE(e.ok());
  double sum = 0;
  for (int i = 0; i < 20000; ++i)
    sum += e->Next(rng);
  EXPECT_NEAR(sum / 20000, 250000, 10000);
  auto mix = ParseOpMix("range=8,put=2");
  ASSERT_TRUE(mix.ok());
  EXPECT_EQ(mix->Describe(), "range=8,put=2");
}

TEST(DistributionsTest, KeysHaveFixedWidthAndAreDistinct) {
  EXPECT_EQ(FormatKey(42, 8), "k0000042");
  EXPECT_EQ(FormatKey(0, 1), "0");
  EXPECT_NE(FormatKey(1, 8), FormatKey(2, 8));
  EXPECT_EQ(FormatKey(99999, 8).size(), 8u);
}

}  // namespace
}  // namespace tidemark::bench
