#pragma once
// bench statistics over repetitions: medians, t-based 95 % confidence
// intervals and Welch's unequal-variance t-test, with the Student t
// distribution computed here (regularized incomplete beta function).
//
// All functions are pure and thread-safe. Sample vectors are taken by value
// or const reference and never modified.

#include <string>
#include <vector>

namespace tidemark::bench {

double Mean(const std::vector<double>& xs);          // 0 for an empty sample
double Median(std::vector<double> xs);               // 0 for an empty sample
double SampleStdDev(const std::vector<double>& xs);  // n-1 denominator; 0 if n < 2

// Student t distribution with `df` > 0 degrees of freedom (df may be
// fractional, as Welch's test produces).
double StudentTCdf(double t, double df);
// The t with StudentTCdf(t, df) == p, for p in (0, 1).
double StudentTQuantile(double p, double df);

// Regularized incomplete beta I_x(a, b), x in [0, 1], a, b > 0.
double RegularizedIncompleteBeta(double x, double a, double b);

struct Interval {
  double low = 0;
  double high = 0;
};

// 95 % confidence interval of the mean: mean +- t(0.975, n-1) * s / sqrt(n).
// For n < 2 the interval is [mean, mean] (unknown spread; callers should show
// n next to it).
Interval MeanCi95(const std::vector<double>& xs);

// Welch's two-sample t-test of mean(b) - mean(a).
struct WelchResult {
  double diff = 0;  // mean(b) - mean(a)
  double t = 0;
  double df = 0;       // Welch-Satterthwaite
  double p_value = 1;  // two-sided
  Interval ci95;       // of diff
  bool valid = false;  // false if either sample has < 2 values or both have zero spread
};
WelchResult WelchTTest(const std::vector<double>& a, const std::vector<double>& b);

// Ratio mean(B)/mean(A) estimated on the log scale: Welch's test on ln(x),
// ratio = exp(diff), CI = exp(diff CI). Values must be > 0 (others ignored).
struct RatioResult {
  double ratio = 1;
  Interval ci95{1, 1};
  double p_value = 1;
  bool valid = false;
};
RatioResult RatioTest(const std::vector<double>& a, const std::vector<double>& b);

// One-line verdict, e.g. "B/A put throughput 2.30x [CI95 2.00-2.60], p < 0.01"
// or "B/A put p99 latency: no significant difference (1.04x [CI95 0.91-1.19],
// p = 0.48)". `alpha` is the significance level (0.05).
std::string Verdict(const std::string& what, const RatioResult& r, double alpha = 0.05);

}  // namespace tidemark::bench
