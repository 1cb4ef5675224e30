#include "bench/report.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "bench/stats.h"
#include "bench/svg_plot.h"

namespace tidemark::bench {
namespace {

double Ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

nlohmann::json LatencyJson(const Histogram& h) {
  return {{"count", h.count()},
          {"mean_ms", h.Mean() / 1e6},
          {"p50_ms", Ms(h.ValueAtPercentile(50))},
          {"p90_ms", Ms(h.ValueAtPercentile(90))},
          {"p99_ms", Ms(h.ValueAtPercentile(99))},
          {"p999_ms", Ms(h.ValueAtPercentile(99.9))},
          {"max_ms", Ms(h.max())},
          {"min_ms", Ms(h.min())}};
}

}  // namespace

std::vector<double> Values(const BenchReport& report, const std::string& target,
                           const std::string& metric) {
  std::vector<double> out;
  for (const auto& r : report.reps) {
    if (r.target != target)
      continue;
    double v = MetricValue(r, metric);
    if (v >= 0)
      out.push_back(v);
  }
  return out;
}

namespace {

// Display form of a figure; negative values mean "unknown" unless `signed_ok`
// (a CI bound may legitimately be negative with few repetitions).
std::string Fmt(double v, int prec = 3, bool signed_ok = false) {
  if (v < 0 && !signed_ok)
    return "n/a";
  char buf[48];
  if (std::fabs(v) >= 1000) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  }
  return buf;
}

Histogram Merged(const BenchReport& report, const std::string& target) {
  Histogram h;
  for (const auto& r : report.reps) {
    if (r.target == target)
      h.Merge(r.result.latency);
  }
  return h;
}

}  // namespace

const std::vector<Metric>& Metrics() {
  static const std::vector<Metric> kMetrics = {
      {"throughput", "throughput (req/s)", true},
      {"p50_ms", "p50 latency (ms)", false},
      {"p90_ms", "p90 latency (ms)", false},
      {"p99_ms", "p99 latency (ms)", false},
      {"p999_ms", "p99.9 latency (ms)", false},
      {"max_ms", "max latency (ms)", false},
      {"cpu_us_per_op", "server CPU per request (us)", false},
  };
  return kMetrics;
}

double MetricValue(const RepRecord& r, const std::string& name) {
  const Histogram& h = r.result.latency;
  if (name == "throughput")
    return r.result.throughput;
  if (name == "p50_ms")
    return Ms(h.ValueAtPercentile(50));
  if (name == "p90_ms")
    return Ms(h.ValueAtPercentile(90));
  if (name == "p99_ms")
    return Ms(h.ValueAtPercentile(99));
  if (name == "p999_ms")
    return Ms(h.ValueAtPercentile(99.9));
  if (name == "max_ms")
    return Ms(h.max());
  if (name == "cpu_us_per_op") {
    if (r.server_cpu_s < 0 || r.result.ok == 0)
      return -1;
    return r.server_cpu_s * 1e6 / static_cast<double>(r.result.ok + r.result.warmup_requests);
  }
  return -1;
}

std::vector<std::string> Verdicts(const BenchReport& report) {
  std::vector<std::string> out;
  if (report.targets.size() != 2)
    return out;
  const std::string& a = report.targets[0].label;
  const std::string& b = report.targets[1].label;
  for (const Metric& m : Metrics()) {
    std::string name = m.name;
    if (name == "p90_ms" || name == "max_ms")
      continue;  // keep the verdict list short
    auto va = Values(report, a, name), vb = Values(report, b, name);
    if (va.empty() || vb.empty())
      continue;
    std::string what = report.workload_name + " " +
                       (name == "throughput" ? std::string("throughput")
                        : name == "cpu_us_per_op"
                            ? std::string(report.workload_name == "watch" ? "server CPU/event"
                                                                          : "server CPU/request")
                        : name == "p999_ms" ? std::string("p99.9 latency")
                                            : name.substr(0, name.size() - 3) + " latency");
    out.push_back(Verdict(what, RatioTest(va, vb)));
  }
  return out;
}

nlohmann::json RenderJson(const BenchReport& report) {
  nlohmann::json j;
  j["tool"] = "tidemark bench";
  j["format_version"] = 1;
  j["mode"] = report.mode;
  j["command"] = report.command_line;
  j["workload"] = report.workload_name;
  j["config"] = report.config;
  j["cancelled"] = report.cancelled;
  j["problems"] = report.problems;
  j["loadavg1_before"] = report.load_avg_before;
  j["loadavg1_after"] = report.load_avg_after;
  j["targets"] = nlohmann::json::array();
  for (const auto& t : report.targets) {
    j["targets"].push_back({{"label", t.label},
                            {"endpoint", t.endpoint},
                            {"server_version", t.server_version},
                            {"pid", t.pid},
                            {"peak_rss_bytes", t.peak_rss_bytes},
                            {"prefill_seconds", t.prefill_seconds}});
  }
  j["repetitions"] = nlohmann::json::array();
  for (const auto& r : report.reps) {
    nlohmann::json rep = {{"target", r.target},
                          {"rep", r.rep},
                          {"start_unix_ms", r.start_unix_ms},
                          {"ok", r.result.ok},
                          {"errors", r.result.errors},
                          {"first_error", r.result.first_error},
                          {"warmup_requests", r.result.warmup_requests},
                          {"measured_seconds", r.result.measured_seconds},
                          {"throughput", r.result.throughput},
                          {"server_cpu_seconds", r.server_cpu_s},
                          {"cpu_us_per_op", MetricValue(r, "cpu_us_per_op")},
                          {"latency", LatencyJson(r.result.latency)},
                          {"service_time", LatencyJson(r.result.service)}};
    for (size_t i = 0; i < kOpTypes; ++i) {
      if (r.result.by_op[i].count() > 0) {
        rep["by_op"][OpTypeName(static_cast<OpType>(i))] = LatencyJson(r.result.by_op[i]);
      }
    }
    nlohmann::json cdf = nlohmann::json::array();
    for (const auto& p : r.result.latency.Cdf())
      cdf.push_back({Ms(p.value), p.fraction});
    rep["latency_cdf_ms"] = std::move(cdf);
    for (const auto& [k, v] : r.extra.items())
      rep[k] = v;
    j["repetitions"].push_back(std::move(rep));
  }
  for (const auto& t : report.targets) {
    nlohmann::json s;
    for (const Metric& m : Metrics()) {
      auto v = Values(report, t.label, m.name);
      if (v.empty())
        continue;
      Interval ci = MeanCi95(v);
      s[m.name] = {{"n", v.size()},
                   {"values", v},
                   {"median", Median(v)},
                   {"mean", Mean(v)},
                   {"stddev", SampleStdDev(v)},
                   {"ci95_mean", {ci.low, ci.high}}};
    }
    j["summary"][t.label] = std::move(s);
  }
  if (report.targets.size() == 2) {
    j["comparisons"] = nlohmann::json::array();
    for (const Metric& m : Metrics()) {
      auto va = Values(report, report.targets[0].label, m.name);
      auto vb = Values(report, report.targets[1].label, m.name);
      if (va.empty() || vb.empty())
        continue;
      RatioResult r = RatioTest(va, vb);
      WelchResult w = WelchTTest(va, vb);
      j["comparisons"].push_back({{"metric", m.name},
                                  {"ratio_b_over_a", r.ratio},
                                  {"ratio_ci95", {r.ci95.low, r.ci95.high}},
                                  {"p_value_log_welch", r.p_value},
                                  {"welch_t", w.t},
                                  {"welch_df", w.df},
                                  {"welch_p_value", w.p_value},
                                  {"valid", r.valid},
                                  {"higher_is_better", m.higher_is_better}});
    }
    j["verdicts"] = Verdicts(report);
  }
  return j;
}

std::string RenderMarkdown(const BenchReport& report) {
  std::string o;
  o += "# tidemark bench " + report.mode + ": " + report.workload_name + "\n\n";
  o += "Command:\n\n```\n" + report.command_line + "\n```\n\n";
  o += "Workload: `" + report.config.value("mix", std::string()) + "`, keys `" +
       report.config.value("key_dist", std::string()) + "` over " +
       std::to_string(report.config.value("key_space", 0)) + " keys of " +
       std::to_string(report.config.value("key_size", 0)) + " B, values " +
       report.config.value("value_size", std::string()) + " B; " +
       (report.mode == "engines"
            ? std::to_string(report.config.value("clients", 0)) + " threads, "
            : std::to_string(report.config.value("connections", 0)) + " connections x " +
                  std::to_string(report.config.value("clients", 0)) + " clients, ") +
       (report.config.value("rate", 0.0) > 0
            ? "open loop at " + Fmt(report.config.value("rate", 0.0)) +
                  " req/s (latency from intended send time)"
            : std::string("closed loop")) +
       ". Load average (1 min) before/after: " + Fmt(report.load_avg_before) + " / " +
       Fmt(report.load_avg_after) + ".\n\n";
  if (report.cancelled)
    o += "**Interrupted:** only the finished repetitions are reported.\n\n";
  for (const auto& p : report.problems)
    o += "* Problem: " + p + "\n";
  if (!report.problems.empty())
    o += "\n";

  if (report.mode == "engines") {
    // Many targets: one row per engine instead of one column.
    o += "## Summary (median over repetitions [CI95 of the mean])\n\n| engine |";
    for (const Metric& m : Metrics())
      o += std::string(" ") + m.title + " |";
    o += "\n|---|";
    for (size_t i = 0; i < Metrics().size(); ++i)
      o += "---|";
    o += "\n";
    for (const auto& t : report.targets) {
      o += "| " + t.label + " |";
      for (const Metric& m : Metrics()) {
        auto v = Values(report, t.label, m.name);
        if (v.empty()) {
          o += " n/a |";
          continue;
        }
        o += ' ';
        o += Fmt(Median(v));
        if (v.size() > 1) {
          Interval ci = MeanCi95(v);
          o += " [";
          o += Fmt(ci.low, 3, true);
          o += " to ";
          o += Fmt(ci.high, 3, true);
          o += "]";
        }
        o += " |";
      }
      o += "\n";
    }
    o += "\n";
  } else {
    o += "## Summary (median over repetitions, CI95 of the mean)\n\n| metric |";
    for (const auto& t : report.targets)
      o += " " + t.label + " |";
    if (report.targets.size() == 2)
      o += " B/A |";
    o += "\n|---|";
    for (size_t i = 0; i < report.targets.size(); ++i)
      o += "---|";
    if (report.targets.size() == 2)
      o += "---|";
    o += "\n";
    for (const Metric& m : Metrics()) {
      std::string row = "| " + std::string(m.title) + " |";
      bool any = false;
      std::vector<std::vector<double>> vals;
      for (const auto& t : report.targets) {
        auto v = Values(report, t.label, m.name);
        vals.push_back(v);
        if (v.empty()) {
          row += " n/a |";
          continue;
        }
        any = true;
        Interval ci = MeanCi95(v);
        row += ' ';
        row += Fmt(Median(v));
        row += " [";
        row += Fmt(ci.low, 3, true);
        row += " to ";
        row += Fmt(ci.high, 3, true);
        row += "] |";
      }
      if (report.targets.size() == 2) {
        if (!vals[0].empty() && !vals[1].empty()) {
          RatioResult r = RatioTest(vals[0], vals[1]);
          row += ' ';
          row += Fmt(r.ratio);
          row += "x (p ";
          row += r.valid ? Fmt(r.p_value, 2) : std::string("n/a");
          row += ") |";
        } else {
          row += " n/a |";
        }
      }
      if (any)
        o += row + "\n";
    }
    o += "\n";
  }  // not engines
  auto verdicts = Verdicts(report);
  if (!verdicts.empty()) {
    o += "## Verdicts (Welch t-test on log values, alpha 0.05)\n\n";
    for (const auto& v : verdicts)
      o += "* " + v + "\n";
    o += "\n";
  }
  if (report.mode == "engines") {
    o += "## Engine figures (median over repetitions)\n\n"
         "CPU per request above is the whole benchmark process (engine + generator).\n\n"
         "| engine | on-disk size (MiB) | bytes written to disk | write amplification | peak RSS "
         "(MiB) |\n"
         "|---|---|---|---|---|\n";
    for (const auto& t : report.targets) {
      std::vector<double> disk, written, amp, rss;
      for (const auto& r : report.reps) {
        if (r.target != t.label)
          continue;
        disk.push_back(r.extra.value("disk_bytes", 0.0) / 1048576.0);
        written.push_back(r.extra.value("write_bytes", 0.0));
        amp.push_back(r.extra.value("write_amplification", 0.0));
        rss.push_back(r.extra.value("peak_rss_bytes", 0.0) / 1048576.0);
      }
      if (disk.empty())
        continue;
      o += "| " + t.label + " | " + Fmt(Median(disk)) + " | " + Fmt(Median(written)) + " | " +
           Fmt(Median(amp)) + " | " + Fmt(Median(rss)) + " |\n";
    }
    o += "\n";
  }
  o += report.mode == "engines" ? "## Engines\n\n| engine | directory | kind | PID | peak RSS "
                                  "(MiB) |\n|---|---|---|---|---|\n"
                                : "## Servers\n\n| target | endpoint | version | PID | peak RSS "
                                  "(MiB) |\n|---|---|---|---|---|\n";
  for (const auto& t : report.targets) {
    o += "| " + t.label + " | " + t.endpoint + " | " + t.server_version + " | " +
         (t.pid > 0 ? std::to_string(t.pid) : std::string("unknown")) + " | " +
         (t.peak_rss_bytes > 0 ? Fmt(static_cast<double>(t.peak_rss_bytes) / 1048576.0)
                               : std::string("n/a")) +
         " |\n";
  }
  o += "\n## Every repetition (in execution order)\n\n"
       "| target | rep | ok | errors | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | CPU "
       "us/req |\n"
       "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : report.reps) {
    o += "| " + r.target + " | " + std::to_string(r.rep + 1) + " | " + std::to_string(r.result.ok) +
         " | " + std::to_string(r.result.errors) + " | " + Fmt(r.result.throughput) + " | " +
         Fmt(MetricValue(r, "p50_ms")) + " | " + Fmt(MetricValue(r, "p90_ms")) + " | " +
         Fmt(MetricValue(r, "p99_ms")) + " | " + Fmt(MetricValue(r, "p999_ms")) + " | " +
         Fmt(MetricValue(r, "max_ms")) + " | " + Fmt(MetricValue(r, "cpu_us_per_op")) + " |\n";
  }
  o += "\nPlots: `latency-cdf.svg` (all repetitions merged per target), `throughput.svg`.\n";
  return o;
}

std::string RenderLatencySvg(const BenchReport& report) {
  PlotSpec spec;
  spec.title = "Latency by percentile: " + report.workload_name;
  spec.x_label = "percentile";
  spec.y_label = "latency (ms)";
  spec.x_ticks = {{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}};
  std::vector<PlotSeries> series;
  for (const auto& t : report.targets) {
    Histogram h = Merged(report, t.label);
    PlotSeries s;
    s.name = t.label;
    // x = log10(1 / (1 - F)): equal room for 90, 99, 99.9 ... percentiles.
    double xmax = std::log10(std::max<double>(10, static_cast<double>(h.count())));
    double prev_f = 0;
    for (const auto& p : h.Cdf()) {
      double x0 = -std::log10(1 - prev_f);
      double x1 = p.fraction >= 1 ? xmax : std::min(xmax, -std::log10(1 - p.fraction));
      s.points.emplace_back(x0, Ms(p.value));  // a step: the bucket covers [prev_f, f]
      s.points.emplace_back(x1, Ms(p.value));
      prev_f = p.fraction;
    }
    series.push_back(std::move(s));
  }
  return RenderSvg(spec, series);
}

std::string RenderThroughputSvg(const BenchReport& report) {
  PlotSpec spec;
  spec.title = "Throughput per repetition: " + report.workload_name;
  spec.x_label = "repetition";
  spec.y_label = "requests/s";
  std::vector<PlotSeries> series;
  int max_rep = 0;
  for (const auto& t : report.targets) {
    PlotSeries s;
    s.name = t.label;
    s.markers = true;
    std::vector<double> v;
    for (const auto& r : report.reps) {
      if (r.target != t.label)
        continue;
      s.points.emplace_back(r.rep + 1, r.result.throughput);
      v.push_back(r.result.throughput);
      max_rep = std::max(max_rep, r.rep + 1);
    }
    series.push_back(std::move(s));
    if (!v.empty()) {
      PlotSeries med;
      med.name = t.label + " median";
      med.dashed = true;
      med.points = {{1, Median(v)},
                    {std::max<double>(2, static_cast<double>(v.size())), Median(v)}};
      series.push_back(std::move(med));
    }
  }
  for (int i = 1; i <= std::max(max_rep, 2); ++i)
    spec.x_ticks.emplace_back(i, std::to_string(i));
  return RenderSvg(spec, series);
}

Status WriteReport(const BenchReport& report, const std::string& dir,
                   std::vector<std::string>* written) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return IoError("cannot create output directory " + dir + ": " + std::strerror(errno));
  }
  const std::pair<std::string, std::string> files[] = {
      {"results.json", RenderJson(report).dump(1) + "\n"},
      {"results.md", RenderMarkdown(report)},
      {"latency-cdf.svg", RenderLatencySvg(report)},
      {"throughput.svg", RenderThroughputSvg(report)},
  };
  for (const auto& [name, contents] : files) {
    std::string path = dir + "/" + name;
    TM_RETURN_IF_ERROR(WriteTextFile(path, contents));
    written->push_back(path);
  }
  return Status::Ok();
}

}  // namespace tidemark::bench
