#pragma once
// Random choices of the workload generator: which key, how big a value, how
// long a client-side delay. Each is parsed from a short spec string so the
// CLI, the JSON report and the docs all use the same words.
//
//   key choosers   uniform | zipf:ALPHA | seq | hot:X:Y   (X % of requests on Y % of keys)
//   sizes          N | N-M (uniform, inclusive)
//   delays         none | const:D | uniform:D1-D2 | exp:MEAN  (D = 250us, 1ms, 0.5s, 100ns)
//
// Parse functions return kInvalidArgument with a message naming the bad
// spec (e.g. "zipf alpha must be > 0, got -1"); they never throw.
//
// Thread safety: choosers and distributions are immutable after creation
// except SequentialChooser's counter (atomic), so one object may be shared by
// all client threads, each passing its own Rng.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/status.h"

namespace tidemark::bench {

using Rng = std::mt19937_64;

// Picks key indices in [0, key_space).
class KeyChooser {
 public:
  virtual ~KeyChooser() = default;
  virtual uint64_t Next(Rng& rng) = 0;
  // The spec it was parsed from, normalized (e.g. "zipf:0.99").
  virtual std::string Describe() const = 0;
};

// Uniform over [0, n).
class UniformChooser final : public KeyChooser {
 public:
  explicit UniformChooser(uint64_t n) : n_(n) {}
  uint64_t Next(Rng& rng) override;
  std::string Describe() const override { return "uniform"; }

 private:
  uint64_t n_;
};

// Zipf: P(k) proportional to 1 / (k + 1)^alpha, k in [0, n). Key 0 is the
// hottest. Uses a precomputed CDF (8 bytes per key) and binary search, so it
// is exact for any alpha > 0; n is capped at 64M keys by ParseKeyChooser.
class ZipfChooser final : public KeyChooser {
 public:
  ZipfChooser(uint64_t n, double alpha);
  uint64_t Next(Rng& rng) override;
  std::string Describe() const override;
  // Probability of key k (for tests).
  double Probability(uint64_t k) const;

 private:
  double alpha_;
  std::vector<double> cdf_;  // cdf_[k] = P(key <= k)
};

// 0, 1, 2, ... wrapping at n; shared by all clients (one global sequence).
class SequentialChooser final : public KeyChooser {
 public:
  explicit SequentialChooser(uint64_t n) : n_(n) {}
  uint64_t Next(Rng& rng) override;
  std::string Describe() const override { return "seq"; }

 private:
  uint64_t n_;
  std::atomic<uint64_t> next_{0};
};

// hot_request_pct % of requests go uniformly to the first hot_key_pct % of
// keys (at least one key), the rest uniformly to the other keys.
class HotSetChooser final : public KeyChooser {
 public:
  HotSetChooser(uint64_t n, double hot_request_pct, double hot_key_pct);
  uint64_t Next(Rng& rng) override;
  std::string Describe() const override;

 private:
  uint64_t n_, hot_n_;
  double req_pct_, key_pct_;
};

Result<std::unique_ptr<KeyChooser>> ParseKeyChooser(const std::string& spec, uint64_t key_space);

// Sizes in bytes: fixed or uniform in [lo, hi].
struct SizeDist {
  uint64_t lo = 0;
  uint64_t hi = 0;
  uint64_t Next(Rng& rng) const;
  std::string Describe() const;
};
Result<SizeDist> ParseSizeDist(const std::string& spec);

// Delays in nanoseconds.
struct DelayDist {
  enum class Kind { kNone, kConst, kUniform, kExp };
  Kind kind = Kind::kNone;
  int64_t a_ns = 0;  // const value, uniform low, exp mean
  int64_t b_ns = 0;  // uniform high
  int64_t Next(Rng& rng) const;
  bool none() const { return kind == Kind::kNone; }
  std::string Describe() const;
};
Result<DelayDist> ParseDelayDist(const std::string& spec);

// A callable that sleeps for a delay drawn from `spec` (DelayDist syntax)
// on each call; for the server's hidden --debug-inject-fsync-delay flag.
// Not thread-safe (one caller thread, e.g. wal-writer). kInvalidArgument for
// a bad spec.
Result<std::function<void()>> MakeSleepHook(const std::string& spec, uint64_t seed = 1);

// "250us" -> 250000. Units: ns, us, ms, s, m (minutes). kInvalidArgument otherwise.
Result<int64_t> ParseDurationNs(const std::string& text);

// Fixed-width key for index `i`: "k" + zero-padded decimal, cut or padded to
// `key_size` bytes (min 1); distinct indices give distinct keys as long as
// key_size - 1 digits suffice for the key space.
std::string FormatKey(uint64_t i, size_t key_size);

}  // namespace tidemark::bench
