#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace tidemark::bench {

double Mean(const std::vector<double>& xs) {
  if (xs.empty())
    return 0;
  double s = 0;
  for (double x : xs)
    s += x;
  return s / static_cast<double>(xs.size());
}

double Median(std::vector<double> xs) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  size_t n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

double SampleStdDev(const std::vector<double>& xs) {
  if (xs.size() < 2)
    return 0;
  double m = Mean(xs);
  double ss = 0;
  for (double x : xs)
    ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(xs.size() - 1));
}

namespace {

// Continued fraction for I_x(a, b) (modified Lentz), valid for
// x < (a + 1) / (a + b + 2); the caller uses the symmetry otherwise.
double BetaContinuedFraction(double x, double a, double b) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  double c = 1;
  double d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny)
    d = kTiny;
  d = 1 / d;
  double f = d;
  for (int m = 1; m <= 500; ++m) {
    // Even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    double num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + num * d;
    if (std::fabs(d) < kTiny)
      d = kTiny;
    c = 1 + num / c;
    if (std::fabs(c) < kTiny)
      c = kTiny;
    d = 1 / d;
    f *= d * c;
    // Odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    if (std::fabs(d) < kTiny)
      d = kTiny;
    c = 1 + num / c;
    if (std::fabs(c) < kTiny)
      c = kTiny;
    d = 1 / d;
    double delta = d * c;
    f *= delta;
    if (std::fabs(delta - 1) < kEps)
      break;
  }
  return f;
}

}  // namespace

double RegularizedIncompleteBeta(double x, double a, double b) {
  if (x <= 0)
    return 0;
  if (x >= 1)
    return 1;
  double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2))
    return front * BetaContinuedFraction(x, a, b) / a;
  return 1 - front * BetaContinuedFraction(1 - x, b, a) / b;
}

double StudentTCdf(double t, double df) {
  if (std::isinf(t))
    return t > 0 ? 1 : 0;
  double x = df / (df + t * t);
  double tail = 0.5 * RegularizedIncompleteBeta(x, df / 2, 0.5);  // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

double StudentTQuantile(double p, double df) {
  if (p <= 0)
    return -std::numeric_limits<double>::infinity();
  if (p >= 1)
    return std::numeric_limits<double>::infinity();
  if (p < 0.5)
    return -StudentTQuantile(1 - p, df);
  // Bracket, then bisect: the CDF is monotone and cheap enough.
  double lo = 0, hi = 1;
  while (StudentTCdf(hi, df) < p && hi < 1e12)
    hi *= 2;
  for (int i = 0; i < 200; ++i) {
    double mid = (lo + hi) / 2;
    if (StudentTCdf(mid, df) < p) {
      lo = mid;
    } else {
      hi = mid;
    }
    if (hi - lo < 1e-12 * std::max(1.0, hi))
      break;
  }
  return (lo + hi) / 2;
}

Interval MeanCi95(const std::vector<double>& xs) {
  double m = Mean(xs);
  if (xs.size() < 2)
    return {m, m};
  double n = static_cast<double>(xs.size());
  double half = StudentTQuantile(0.975, n - 1) * SampleStdDev(xs) / std::sqrt(n);
  return {m - half, m + half};
}

WelchResult WelchTTest(const std::vector<double>& a, const std::vector<double>& b) {
  WelchResult r;
  r.diff = Mean(b) - Mean(a);
  if (a.size() < 2 || b.size() < 2)
    return r;
  double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  double va = std::pow(SampleStdDev(a), 2) / na;
  double vb = std::pow(SampleStdDev(b), 2) / nb;
  double se2 = va + vb;
  if (se2 <= 0)
    return r;
  double se = std::sqrt(se2);
  r.t = r.diff / se;
  r.df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1));
  r.p_value = 2 * (1 - StudentTCdf(std::fabs(r.t), r.df));
  double half = StudentTQuantile(0.975, r.df) * se;
  r.ci95 = {r.diff - half, r.diff + half};
  r.valid = true;
  return r;
}

RatioResult RatioTest(const std::vector<double>& a, const std::vector<double>& b) {
  auto logs = [](const std::vector<double>& xs) {
    std::vector<double> out;
    for (double x : xs) {
      if (x > 0)
        out.push_back(std::log(x));
    }
    return out;
  };
  std::vector<double> la = logs(a), lb = logs(b);
  RatioResult r;
  if (la.empty() || lb.empty())
    return r;
  WelchResult w = WelchTTest(la, lb);
  r.ratio = std::exp(w.diff);
  r.valid = w.valid;
  if (w.valid) {
    r.ci95 = {std::exp(w.ci95.low), std::exp(w.ci95.high)};
    r.p_value = w.p_value;
  } else {
    r.ci95 = {r.ratio, r.ratio};
  }
  return r;
}

std::string Verdict(const std::string& what, const RatioResult& r, double alpha) {
  char buf[256];
  if (!r.valid) {
    std::snprintf(buf, sizeof buf, "B/A %s %.2fx: too few repetitions for a test (need >= 2 each)",
                  what.c_str(), r.ratio);
    return buf;
  }
  std::string p;
  if (r.p_value < 0.001) {
    p = "p < 0.001";
  } else if (r.p_value < 0.01) {
    p = "p < 0.01";
  } else {
    char pb[32];
    std::snprintf(pb, sizeof pb, "p = %.2g", r.p_value);
    p = pb;
  }
  if (r.p_value < alpha) {
    std::snprintf(buf, sizeof buf, "B/A %s %.2fx [CI95 %.2f-%.2f], %s", what.c_str(), r.ratio,
                  r.ci95.low, r.ci95.high, p.c_str());
  } else {
    std::snprintf(buf, sizeof buf, "B/A %s: no significant difference (%.2fx [CI95 %.2f-%.2f], %s)",
                  what.c_str(), r.ratio, r.ci95.low, r.ci95.high, p.c_str());
  }
  return buf;
}

}  // namespace tidemark::bench
