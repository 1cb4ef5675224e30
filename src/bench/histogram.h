#pragma once
// bench::Histogram: a log-linear ("HDR") latency histogram of our own.
//
// Values are non-negative integers (nanoseconds by convention). Values below
// 2^kSubBucketBits are stored exactly; above, each power-of-two range
// [2^e, 2^(e+1)) is split into 2^(kSubBucketBits-1) equal sub-buckets, so a
// recorded value is known to within a relative error of 2^-(kSubBucketBits-1)
// (~0.8 % with 8 bits). The full int64 range fits in ~7.5k counters (60 KiB),
// so Record() never fails and never allocates.
//
// Percentiles return the highest value equivalent to the bucket that holds
// the requested rank, clamped to the exact min/max seen (as HdrHistogram's
// ValueAtPercentile does): p100 == max(), and a histogram holding one value
// returns that value for every percentile.
//
// Thread safety: not thread-safe; merge per-thread histograms with Merge().

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tidemark::bench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 8;

  Histogram();

  // Records `value` (negative values are recorded as 0) `count` times.
  void Record(int64_t value, uint64_t count = 1);
  // Adds every count of `other`.
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return total_; }
  int64_t min() const { return total_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  // Exact mean of the recorded values (from a running sum).
  double Mean() const;

  // The value at percentile `p` in [0, 100]; 0 for an empty histogram.
  int64_t ValueAtPercentile(double p) const;

  // One point per non-empty bucket: the bucket's highest equivalent value and
  // the fraction of all values <= it (for CDF plots), ascending.
  struct CdfPoint {
    int64_t value;
    double fraction;
  };
  std::vector<CdfPoint> Cdf() const;

  // Compact text form for passing a histogram between processes:
  // "count min max sum;index:n,index:n,..." (non-empty buckets only).
  std::string Encode() const;
  // false (and *out unchanged) if `text` is not an Encode() result.
  static bool Decode(const std::string& text, Histogram* out);

  // Bucket index of `value` and the highest value sharing that bucket.
  static size_t IndexOf(int64_t value);
  static int64_t HighestEquivalent(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace tidemark::bench
