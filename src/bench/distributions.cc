#include "bench/distributions.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace tidemark::bench {
namespace {

constexpr uint64_t kMaxZipfKeys = 64ull << 20;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos)
      return out;
    start = pos + 1;
  }
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty())
    return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] == '-')
    return false;
  char* end = nullptr;
  *out = std::strtoull(s.c_str(), &end, 10);
  return end == s.c_str() + s.size();
}

std::string Fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string FmtNs(int64_t ns) {
  if (ns % 1000000000 == 0 && ns != 0)
    return std::to_string(ns / 1000000000) + "s";
  if (ns % 1000000 == 0 && ns != 0)
    return std::to_string(ns / 1000000) + "ms";
  if (ns % 1000 == 0 && ns != 0)
    return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}

}  // namespace

uint64_t UniformChooser::Next(Rng& rng) {
  return std::uniform_int_distribution<uint64_t>(0, n_ - 1)(rng);
}

ZipfChooser::ZipfChooser(uint64_t n, double alpha) : alpha_(alpha), cdf_(n) {
  double sum = 0;
  for (uint64_t k = 0; k < n; ++k) {
    sum += std::pow(static_cast<double>(k + 1), -alpha);
    cdf_[k] = sum;
  }
  for (double& c : cdf_)
    c /= sum;
  cdf_.back() = 1.0;
}

uint64_t ZipfChooser::Next(Rng& rng) {
  double u = std::uniform_real_distribution<double>(0, 1)(rng);
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end())
    --it;
  return static_cast<uint64_t>(it - cdf_.begin());
}

double ZipfChooser::Probability(uint64_t k) const {
  return k == 0 ? cdf_[0] : cdf_[k] - cdf_[k - 1];
}

std::string ZipfChooser::Describe() const {
  return "zipf:" + Fmt(alpha_);
}

uint64_t SequentialChooser::Next(Rng&) {
  return next_.fetch_add(1, std::memory_order_relaxed) % n_;
}

HotSetChooser::HotSetChooser(uint64_t n, double hot_request_pct, double hot_key_pct)
    : n_(n), req_pct_(hot_request_pct), key_pct_(hot_key_pct) {
  hot_n_ = std::clamp<uint64_t>(static_cast<uint64_t>(std::llround(n * hot_key_pct / 100.0)), 1, n);
}

uint64_t HotSetChooser::Next(Rng& rng) {
  bool hot = std::uniform_real_distribution<double>(0, 100)(rng) < req_pct_;
  if (hot || hot_n_ == n_)
    return std::uniform_int_distribution<uint64_t>(0, hot_n_ - 1)(rng);
  return std::uniform_int_distribution<uint64_t>(hot_n_, n_ - 1)(rng);
}

std::string HotSetChooser::Describe() const {
  return "hot:" + Fmt(req_pct_) + ":" + Fmt(key_pct_);
}

Result<std::unique_ptr<KeyChooser>> ParseKeyChooser(const std::string& spec, uint64_t key_space) {
  if (key_space == 0)
    return InvalidArgumentError("key space must be at least 1 key");
  std::vector<std::string> parts = Split(spec, ':');
  const std::string& kind = parts[0];
  if (kind == "uniform" && parts.size() == 1) {
    return std::unique_ptr<KeyChooser>(new UniformChooser(key_space));
  }
  if ((kind == "seq" || kind == "sequential") && parts.size() == 1) {
    return std::unique_ptr<KeyChooser>(new SequentialChooser(key_space));
  }
  if (kind == "zipf") {
    double alpha = 0;
    if (parts.size() != 2 || !ParseDouble(parts[1], &alpha)) {
      return InvalidArgumentError("key distribution '" + spec +
                                  "': expected zipf:ALPHA, e.g. zipf:0.99");
    }
    if (alpha <= 0)
      return InvalidArgumentError("zipf alpha must be > 0, got " + parts[1]);
    if (key_space > kMaxZipfKeys) {
      return InvalidArgumentError("zipf supports at most " + std::to_string(kMaxZipfKeys) +
                                  " keys, key space is " + std::to_string(key_space));
    }
    return std::unique_ptr<KeyChooser>(new ZipfChooser(key_space, alpha));
  }
  if (kind == "hot") {
    double x = 0, y = 0;
    if (parts.size() != 3 || !ParseDouble(parts[1], &x) || !ParseDouble(parts[2], &y)) {
      return InvalidArgumentError(
          "key distribution '" + spec +
          "': expected hot:X:Y (X % of requests on Y % of keys), e.g. hot:90:10");
    }
    if (x < 0 || x > 100 || y <= 0 || y > 100) {
      return InvalidArgumentError("hot-set '" + spec + "': X must be in [0,100] and Y in (0,100]");
    }
    return std::unique_ptr<KeyChooser>(new HotSetChooser(key_space, x, y));
  }
  return InvalidArgumentError("unknown key distribution '" + spec +
                              "' (expected uniform, zipf:ALPHA, seq or hot:X:Y)");
}

uint64_t SizeDist::Next(Rng& rng) const {
  if (lo == hi)
    return lo;
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
}

std::string SizeDist::Describe() const {
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

Result<SizeDist> ParseSizeDist(const std::string& spec) {
  std::vector<std::string> parts = Split(spec, '-');
  SizeDist d;
  if (parts.size() == 1 && ParseU64(parts[0], &d.lo)) {
    d.hi = d.lo;
  } else if (parts.size() != 2 || !ParseU64(parts[0], &d.lo) || !ParseU64(parts[1], &d.hi) ||
             d.lo > d.hi) {
    return InvalidArgumentError("size '" + spec +
                                "': expected N or LO-HI bytes, e.g. 256 or 100-1000");
  }
  if (d.hi > (64u << 20))
    return InvalidArgumentError("size '" + spec + "': at most 64 MiB");
  return d;
}

int64_t DelayDist::Next(Rng& rng) const {
  switch (kind) {
    case Kind::kNone:
      return 0;
    case Kind::kConst:
      return a_ns;
    case Kind::kUniform:
      return std::uniform_int_distribution<int64_t>(a_ns, b_ns)(rng);
    case Kind::kExp:
      return static_cast<int64_t>(
          std::exponential_distribution<double>(1.0 / static_cast<double>(a_ns))(rng));
  }
  return 0;
}

std::string DelayDist::Describe() const {
  switch (kind) {
    case Kind::kNone:
      return "none";
    case Kind::kConst:
      return "const:" + FmtNs(a_ns);
    case Kind::kUniform:
      return "uniform:" + FmtNs(a_ns) + "-" + FmtNs(b_ns);
    case Kind::kExp:
      return "exp:" + FmtNs(a_ns);
  }
  return "none";
}

Result<int64_t> ParseDurationNs(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  double v = 0;
  std::string unit = text.substr(i);
  if (!ParseDouble(text.substr(0, i), &v) || v < 0) {
    return InvalidArgumentError("duration '" + text +
                                "': expected a number with a unit, e.g. 250us");
  }
  double mult = 0;
  if (unit == "ns")
    mult = 1;
  else if (unit == "us")
    mult = 1e3;
  else if (unit == "ms")
    mult = 1e6;
  else if (unit == "s")
    mult = 1e9;
  else if (unit == "m")
    mult = 60e9;
  else
    return InvalidArgumentError("duration '" + text + "': unit must be ns, us, ms, s or m");
  return static_cast<int64_t>(std::llround(v * mult));
}

Result<DelayDist> ParseDelayDist(const std::string& spec) {
  DelayDist d;
  if (spec.empty() || spec == "none")
    return d;
  std::vector<std::string> parts = Split(spec, ':');
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(
        "delay '" + spec + "': " + why +
        " (expected none, const:D, uniform:D1-D2 or exp:MEAN, e.g. exp:1ms)");
  };
  if (parts.size() != 2)
    return bad("missing ':'");
  if (parts[0] == "const" || parts[0] == "exp") {
    auto v = ParseDurationNs(parts[1]);
    if (!v.ok())
      return bad(v.status().message());
    d.kind = parts[0] == "const" ? DelayDist::Kind::kConst : DelayDist::Kind::kExp;
    d.a_ns = *v;
    if (d.kind == DelayDist::Kind::kExp && d.a_ns <= 0)
      return bad("mean must be > 0");
    return d;
  }
  if (parts[0] == "uniform") {
    std::vector<std::string> r = Split(parts[1], '-');
    if (r.size() != 2)
      return bad("expected D1-D2");
    auto lo = ParseDurationNs(r[0]);
    auto hi = ParseDurationNs(r[1]);
    if (!lo.ok() || !hi.ok() || *lo > *hi)
      return bad("bad range");
    d.kind = DelayDist::Kind::kUniform;
    d.a_ns = *lo;
    d.b_ns = *hi;
    return d;
  }
  return bad("unknown kind '" + parts[0] + "'");
}

Result<std::function<void()>> MakeSleepHook(const std::string& spec, uint64_t seed) {
  TM_ASSIGN_OR_RETURN(DelayDist d, ParseDelayDist(spec));
  auto rng = std::make_shared<Rng>(seed);
  return std::function<void()>([d, rng] {
    int64_t ns = d.Next(*rng);
    if (ns > 0)
      std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
  });
}

std::string FormatKey(uint64_t i, size_t key_size) {
  if (key_size == 0)
    key_size = 1;
  std::string digits = std::to_string(i);
  std::string key = "k";
  if (digits.size() + 1 < key_size)
    key.append(key_size - 1 - digits.size(), '0');
  key += digits;
  if (key.size() > key_size)
    key = key.substr(key.size() - key_size);  // keep low digits
  return key;
}

}  // namespace tidemark::bench
