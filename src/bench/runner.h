#pragma once
// bench::Runner: runs `bench run` (one target) or `bench ab` (two targets,
// interleaved A B A B ...) over gRPC and collects a BenchReport.
//
// Per target, before the repetitions: connect (all N connections must become
// ready within the connect timeout), read the server version (Status RPC),
// find the server PID (given, or the owner of the listening port when the
// target is local), optionally prefill every key. Each repetition runs the
// Driver with the same seed for A and B, so both see the same key sequence;
// server CPU time is read from /proc before and after.
//
// Cancellation: when *cancel becomes true the running repetition is
// abandoned (not reported) and Run() returns what has finished.
//
// Thread safety: one Run() at a time.

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/distributions.h"
#include "bench/report.h"
#include "bench/workload.h"

namespace tidemark::bench {

struct TargetSpec {
  std::string label;
  std::string endpoint;
  int pid = 0;  // 0 = find it from the listening port (local targets); -1 = don't
};

struct RunConfig {
  std::vector<TargetSpec> targets;  // 1 (run) or 2 (ab)
  WorkloadSpec workload;
  std::string workload_name;
  int connections = 10;
  int clients = 100;
  double rate = 0;
  bool poisson = false;  // open-loop arrivals: constant spacing or Poisson
  int64_t duration_ns = 0;
  uint64_t requests = 0;
  int64_t warmup_ns = 0;
  int reps = 3;
  std::string injected_delay = "none";
  uint64_t seed = 1;
  bool prefill = false;
  bool loopback_only = false;
  int64_t connect_timeout_ms = 5000;
  std::string command_line;
  // Watch workload (workload_name "watch"): `watchers` watchers over
  // `watch_streams` streams on the first `watched_keys` keys; puts on those
  // keys in open loop at `put_rate`/s carry their send time in the value;
  // the reported latency is put send -> event received, throughput events/s.
  bool watch = false;
  int watchers = 100;
  int watch_streams = 10;
  uint64_t watched_keys = 10;
  double put_rate = 1000;
};

// Validates `config` without touching the network: kInvalidArgument with a
// message meant for the user (unknown mix, alpha <= 0, non-loopback target
// with loopback_only, ...).
Status ValidateConfig(const RunConfig& config);

// Progress callback: target label, repetition (0-based), total repetitions,
// completed requests so far in this repetition, whether warm-up is over,
// elapsed seconds of this repetition.
using ProgressFn = std::function<void(const std::string&, int, int, uint64_t, bool, double)>;

// Runs everything. Errors before the first repetition (connect, prefill) are
// returned as Status; later failures are recorded in report->problems.
Status RunBenchmark(const RunConfig& config, const std::atomic<bool>* cancel,
                    const ProgressFn& progress, BenchReport* report);

}  // namespace tidemark::bench
