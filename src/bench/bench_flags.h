#pragma once
// The raw flag values of `tidemark bench` (filled by CLI11 in bench_cli.cc,
// read by bench_cli.cc and engines.cc). Plain data.

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

#include <nlohmann/json.hpp>

namespace tidemark::bench {

struct RunConfig;

struct BenchFlags {
  // Targets.
  std::string endpoint = "127.0.0.1:2379";
  std::string a, b, a_name = "A", b_name = "B";
  int pid = 0, a_pid = 0, b_pid = 0;
  // Workload.
  std::string workload = "put";
  std::string mix;
  std::string consistency = "l";
  std::string key_dist = "uniform";
  uint64_t key_space = 100000;
  size_t key_size = 8;
  std::string value_size = "256";
  bool prefill = false;
  // Load shape.
  int conns = 10;
  int clients = 100;
  double rate = 0;
  std::string arrivals = "uniform";
  std::string duration;
  uint64_t requests = 0;
  std::string warmup = "1s";
  int reps = 3;
  std::string delay = "none";
  uint64_t seed = 1;
  // Watch workload.
  int watchers = 100;
  int watch_streams = 10;
  uint64_t watched_keys = 10;
  double put_rate = 1000;
  // Output and safety.
  std::string out = "bench-out";
  std::string progress = "auto";
  bool test_mode = false;
  std::string connect_timeout = "5s";
  // Engines mode (engines.cc).
  std::string engines = "all";
  std::string engine_dir;
  std::string sync = "both";
  bool keep_data = false;
};

// Turns flags into a validated RunConfig (bench_cli.cc): targets (ab = two),
// workload, load shape. kInvalidArgument with a message for the user.
Status BuildConfig(const BenchFlags& f, bool ab, RunConfig* c);
// The configuration part of results.json.
nlohmann::json ConfigJson(const RunConfig& c);

}  // namespace tidemark::bench
