#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>

namespace tidemark::bench {
namespace {

constexpr int kSub = Histogram::kSubBucketBits;
constexpr uint64_t kLinear = uint64_t{1} << kSub;      // exact values [0, 2^kSub)
constexpr uint64_t kHalf = uint64_t{1} << (kSub - 1);  // sub-buckets per octave
// Octaves e = kSub .. 63 each hold kHalf buckets.
constexpr size_t kBuckets = kLinear + (64 - kSub) * kHalf;

}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

size_t Histogram::IndexOf(int64_t value) {
  uint64_t v = value < 0 ? 0 : static_cast<uint64_t>(value);
  if (v < kLinear)
    return static_cast<size_t>(v);
  int e = 63 - std::countl_zero(v);              // v in [2^e, 2^(e+1)), e >= kSub
  uint64_t sub = (v >> (e - kSub + 1)) - kHalf;  // top kSub bits minus the leading one
  return static_cast<size_t>(kLinear + static_cast<uint64_t>(e - kSub) * kHalf + sub);
}

int64_t Histogram::HighestEquivalent(size_t index) {
  if (index < kLinear)
    return static_cast<int64_t>(index);
  uint64_t rel = index - kLinear;
  int e = static_cast<int>(rel / kHalf) + kSub;
  uint64_t sub = rel % kHalf;
  int shift = e - kSub + 1;
  unsigned __int128 hi = (static_cast<unsigned __int128>(kHalf + sub + 1) << shift) - 1;
  if (hi > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  }
  return static_cast<int64_t>(hi);
}

void Histogram::Record(int64_t value, uint64_t count) {
  if (count == 0)
    return;
  if (value < 0)
    value = 0;
  counts_[IndexOf(value)] += count;
  if (total_ == 0 || value < min_)
    min_ = value;
  if (value > max_)
    max_ = value;
  total_ += count;
  sum_ += static_cast<long double>(value) * count;
}

void Histogram::Merge(const Histogram& other) {
  if (other.total_ == 0)
    return;
  for (size_t i = 0; i < kBuckets; ++i)
    counts_[i] += other.counts_[i];
  if (total_ == 0 || other.min_ < min_)
    min_ = other.min_;
  max_ = std::max(max_, other.max_);
  total_ += other.total_;
  sum_ += other.sum_;
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

double Histogram::Mean() const {
  return total_ == 0 ? 0.0 : static_cast<double>(sum_ / total_);
}

int64_t Histogram::ValueAtPercentile(double p) const {
  if (total_ == 0)
    return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Rank of the wanted value, 1-based; at least the first value.
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
  rank = std::clamp<uint64_t>(rank, 1, total_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank)
      return std::clamp(HighestEquivalent(i), min_, max_);
  }
  return max_;
}

std::string Histogram::Encode() const {
  std::string out = std::to_string(total_) + " " + std::to_string(min_) + " " +
                    std::to_string(max_) + " " + std::to_string(static_cast<double>(sum_)) + ";";
  bool first = true;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (counts_[i] == 0)
      continue;
    if (!first)
      out += ',';
    first = false;
    out += std::to_string(i) + ":" + std::to_string(counts_[i]);
  }
  return out;
}

bool Histogram::Decode(const std::string& text, Histogram* out) {
  Histogram h;
  unsigned long long total = 0;
  long long mn = 0, mx = 0;
  double sum = 0;
  int used = 0;
  if (std::sscanf(text.c_str(), "%llu %lld %lld %lf;%n", &total, &mn, &mx, &sum, &used) != 4) {
    return false;
  }
  uint64_t seen = 0;
  const char* p = text.c_str() + used;
  while (*p != '\0') {
    unsigned long idx = 0;
    unsigned long long n = 0;
    int len = 0;
    if (std::sscanf(p, "%lu:%llu%n", &idx, &n, &len) != 2 || idx >= kBuckets)
      return false;
    h.counts_[idx] = n;
    seen += n;
    p += len;
    if (*p == ',')
      ++p;
  }
  if (seen != total)
    return false;
  h.total_ = total;
  h.min_ = mn;
  h.max_ = mx;
  h.sum_ = sum;
  *out = std::move(h);
  return true;
}

std::vector<Histogram::CdfPoint> Histogram::Cdf() const {
  std::vector<CdfPoint> out;
  if (total_ == 0)
    return out;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (counts_[i] == 0)
      continue;
    seen += counts_[i];
    out.push_back({std::clamp(HighestEquivalent(i), min_, max_),
                   static_cast<double>(seen) / static_cast<double>(total_)});
  }
  return out;
}

}  // namespace tidemark::bench
