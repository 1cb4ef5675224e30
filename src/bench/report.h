#pragma once
// The results of a `tidemark bench run|ab` invocation and their three
// renderings: a JSON file with every raw figure (results.json), a Markdown
// report (results.md) and SVG plots (latency-cdf.svg, throughput.svg).
//
// Summaries per target are over finished repetitions only: median, mean and
// the t-based 95 % CI of the mean (stats.h). For two targets every metric
// also gets B/A as a ratio with a Welch test on the log scale and a one-line
// verdict.
//
// Thread safety: plain data and pure functions.

#include <string>
#include <vector>

#include "base/status.h"
#include "bench/driver.h"

#include <nlohmann/json.hpp>

namespace tidemark::bench {

struct RepRecord {
  std::string target;  // label, "A" / "B" or a name
  int rep = 0;         // 0-based, per target
  DriverResult result;
  double server_cpu_s = -1;  // -1: PID unknown
  int64_t start_unix_ms = 0;
  nlohmann::json extra = nlohmann::json::object();  // mode-specific raw figures
};

struct TargetInfo {
  std::string label;
  std::string endpoint;
  std::string server_version;
  int pid = -1;
  uint64_t peak_rss_bytes = 0;  // 0: unknown
  double prefill_seconds = 0;
};

struct BenchReport {
  std::string mode;  // "run" or "ab"
  std::string command_line;
  std::string workload_name;  // e.g. "put", "range", "mixed"
  nlohmann::json config;
  std::vector<TargetInfo> targets;
  std::vector<RepRecord> reps;
  bool cancelled = false;
  std::vector<std::string> problems;
  double load_avg_before = -1, load_avg_after = -1;
};

// Per-repetition metrics in display units: name -> value.
struct Metric {
  const char* name;   // JSON key, e.g. "p99_ms"
  const char* title;  // Markdown, e.g. "p99 latency (ms)"
  bool higher_is_better;
};
const std::vector<Metric>& Metrics();
// The metric's value for one repetition; negative if unknown (e.g. CPU).
double MetricValue(const RepRecord& r, const std::string& name);
// The known (non-negative) values of one metric over the repetitions of one
// target, in repetition order.
std::vector<double> Values(const BenchReport& report, const std::string& target,
                           const std::string& metric);

nlohmann::json RenderJson(const BenchReport& report);
std::string RenderMarkdown(const BenchReport& report);
std::string RenderLatencySvg(const BenchReport& report);
std::string RenderThroughputSvg(const BenchReport& report);
// The verdict lines of an A/B report (empty for a single target).
std::vector<std::string> Verdicts(const BenchReport& report);

// Writes results.json, results.md, latency-cdf.svg and throughput.svg into
// `dir` (created if missing); appends the paths written to *written.
Status WriteReport(const BenchReport& report, const std::string& dir,
                   std::vector<std::string>* written);

}  // namespace tidemark::bench
