#include "bench/runner.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "bench/driver.h"
#include "bench/grpc_target.h"
#include "bench/proc_stats.h"
#include "bench/timer_queue.h"

namespace tidemark::bench {
namespace {

double LoadAvg1() {
  double v = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1;
    std::fclose(f);
  }
  return v;
}

int PortOf(const std::string& endpoint) {
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) return -1;
  return std::atoi(endpoint.c_str() + colon + 1);
}

// Runs the driver while a watcher thread reports progress every 200 ms.
DriverResult RunWithProgress(Driver* driver, const ProgressFn& progress, const std::string& label,
                             int rep, int reps) {
  std::atomic<bool> done{false};
  std::thread watcher;
  if (progress) {
    watcher = std::thread([&] {
      int64_t t0 = NowNs();
      while (!done.load()) {
        const DriverProgress& p = driver->progress();
        progress(label, rep, reps, p.completed.load(), p.measuring.load(), (NowNs() - t0) / 1e9);
        for (int i = 0; i < 20 && !done.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    });
  }
  DriverResult r = driver->Run();
  done = true;
  if (watcher.joinable()) watcher.join();
  return r;
}

struct LiveTarget {
  TargetSpec spec;
  std::unique_ptr<GrpcTarget> grpc;
  int pid = -1;
};

Status Prefill(const RunConfig& config, LiveTarget& t, const std::atomic<bool>* cancel,
               TargetInfo* info) {
  WorkloadSpec w = config.workload;
  w.mix = OpMix{};  // put only
  w.key_dist = "seq";
  TM_ASSIGN_OR_RETURN(auto gen, OpGenerator::Create(w));
  DriverOptions o;
  o.clients = std::min(config.clients, 64);
  o.requests = config.workload.key_space;
  o.seed = config.seed;
  o.cancel = cancel;
  TM_ASSIGN_OR_RETURN(auto driver, Driver::Create(t.grpc.get(), gen.get(), o));
  int64_t t0 = NowNs();
  DriverResult r = driver->Run();
  info->prefill_seconds = (NowNs() - t0) / 1e9;
  if (r.errors > 0) {
    return UnavailableError("prefill of " + t.spec.endpoint + " failed: " + std::to_string(r.errors) +
                            " errors, first: " + r.first_error);
  }
  return Status::Ok();
}

}  // namespace

Status ValidateConfig(const RunConfig& c) {
  if (c.targets.empty()) return InvalidArgumentError("no target endpoint given");
  for (const auto& t : c.targets) {
    if (t.endpoint.empty()) return InvalidArgumentError("empty endpoint for target " + t.label);
    if (c.loopback_only && !IsLoopbackEndpoint(t.endpoint)) {
      return InvalidArgumentError("target " + t.label + " (" + t.endpoint +
                                  ") is not a loopback address; test mode allows only "
                                  "127.0.0.0/8, [::1] or localhost");
    }
  }
  if (c.connections < 1) return InvalidArgumentError("--conns must be at least 1");
  if (c.clients < 1) return InvalidArgumentError("--clients must be at least 1");
  if (c.rate < 0) return InvalidArgumentError("--rate must be >= 0 (0 = closed loop)");
  if (c.reps < 1) return InvalidArgumentError("--reps must be at least 1");
  if (c.duration_ns <= 0 && c.requests == 0) {
    return InvalidArgumentError("give --duration or --requests");
  }
  auto gen = OpGenerator::Create(c.workload);
  if (!gen.ok()) return gen.status();
  auto d = ParseDelayDist(c.injected_delay);
  if (!d.ok()) return d.status();
  return Status::Ok();
}

Status RunBenchmark(const RunConfig& config, const std::atomic<bool>* cancel,
                    const ProgressFn& progress, BenchReport* report) {
  TM_RETURN_IF_ERROR(ValidateConfig(config));
  TM_ASSIGN_OR_RETURN(auto gen, OpGenerator::Create(config.workload));
  TM_ASSIGN_OR_RETURN(DelayDist delay, ParseDelayDist(config.injected_delay));
  report->mode = config.targets.size() == 2 ? "ab" : "run";
  report->workload_name = config.workload_name;
  report->command_line = config.command_line;
  report->load_avg_before = LoadAvg1();

  std::vector<LiveTarget> live;
  for (const auto& spec : config.targets) {
    LiveTarget t;
    t.spec = spec;
    GrpcTargetOptions go;
    go.endpoint = spec.endpoint;
    go.connections = config.connections;
    go.connect_timeout_ms = config.connect_timeout_ms;
    auto grpc = GrpcTarget::Connect(go);
    if (!grpc.ok()) {
      return Status(grpc.status().code(), "target " + spec.label + ": " + grpc.status().message());
    }
    t.grpc = std::move(*grpc);
    TargetInfo info;
    info.label = spec.label;
    info.endpoint = spec.endpoint;
    auto version = t.grpc->ServerVersion();
    if (!version.ok()) {
      return UnavailableError("target " + spec.label + " (" + spec.endpoint +
                              ") does not answer the etcd Maintenance.Status RPC: " +
                              version.status().message());
    }
    info.server_version = *version;
    t.pid = spec.pid;
    if (t.pid == 0) {
      t.pid = -1;
      if (IsLoopbackEndpoint(spec.endpoint)) {
        auto pid = FindListeningPid(PortOf(spec.endpoint));
        if (pid.ok()) {
          t.pid = *pid;
        } else {
          report->problems.push_back("server PID of " + spec.label +
                                     " not found (CPU/RSS not reported): " + pid.status().message());
        }
      }
    }
    info.pid = t.pid;
    if (config.prefill) TM_RETURN_IF_ERROR(Prefill(config, t, cancel, &info));
    report->targets.push_back(info);
    live.push_back(std::move(t));
  }

  for (int rep = 0; rep < config.reps; ++rep) {
    for (size_t i = 0; i < live.size(); ++i) {
      LiveTarget& t = live[i];
      DriverOptions o;
      o.clients = config.clients;
      o.rate = config.rate;
      o.duration_ns = config.duration_ns;
      o.requests = config.requests;
      o.warmup_ns = config.warmup_ns;
      o.injected_delay = delay;
      o.seed = config.seed + static_cast<uint64_t>(rep);  // same sequence for A and B
      o.cancel = cancel;
      TM_ASSIGN_OR_RETURN(auto driver, Driver::Create(t.grpc.get(), gen.get(), o));
      RepRecord rec;
      rec.target = t.spec.label;
      rec.rep = rep;
      rec.start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      Result<double> cpu0 = t.pid > 0 ? ProcCpuSeconds(t.pid) : Result<double>(NotFoundError(""));
      rec.result = RunWithProgress(driver.get(), progress, t.spec.label, rep, config.reps);
      Result<double> cpu1 = t.pid > 0 ? ProcCpuSeconds(t.pid) : Result<double>(NotFoundError(""));
      if (cpu0.ok() && cpu1.ok()) rec.server_cpu_s = *cpu1 - *cpu0;
      if (rec.result.cancelled) {
        report->cancelled = true;
        break;
      }
      if (rec.result.errors > 0) {
        report->problems.push_back(t.spec.label + " repetition " + std::to_string(rep + 1) + ": " +
                                   std::to_string(rec.result.errors) +
                                   " failed requests, first: " + rec.result.first_error);
      }
      report->reps.push_back(std::move(rec));
    }
    if (report->cancelled) break;
  }
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i].pid > 0) {
      auto rss = ProcPeakRssBytes(live[i].pid);
      if (rss.ok()) report->targets[i].peak_rss_bytes = *rss;
    }
  }
  report->load_avg_after = LoadAvg1();
  return Status::Ok();
}

}  // namespace tidemark::bench
