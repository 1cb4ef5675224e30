#include "bench/runner.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "bench/driver.h"
#include "bench/grpc_target.h"
#include "bench/proc_stats.h"
#include "bench/timer_queue.h"

namespace tidemark::bench {
namespace {

int PortOf(const std::string& endpoint) {
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos)
    return -1;
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
  if (watcher.joinable())
    watcher.join();
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
    return UnavailableError("prefill of " + t.spec.endpoint + " failed: " +
                            std::to_string(r.errors) + " errors, first: " + r.first_error);
  }
  return Status::Ok();
}

// Stamps every put with its send time (decimal ns, 20 digits) so that the
// watch side can measure put -> event latency.
class StampingTarget final : public Target {
 public:
  explicit StampingTarget(Target* inner) : inner_(inner) {}
  void Start(int client, const Op& op, std::function<void(const Status&)> done) override {
    Op o = op;
    char stamp[24];
    std::snprintf(stamp, sizeof stamp, "%020lld", static_cast<long long>(NowNs()));
    o.value = std::string(stamp) + (o.value.size() > 20 ? o.value.substr(20) : std::string());
    inner_->Start(client, o, std::move(done));
  }

 private:
  Target* inner_;
};

// One repetition of the watch workload; fills rec->result and rec->extra.
Status RunWatchRep(const RunConfig& c, LiveTarget& t, int rep, const std::atomic<bool>* cancel,
                   const ProgressFn& progress, RepRecord* rec) {
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < c.watched_keys; ++i)
    keys.push_back(FormatKey(i, c.workload.key_size));
  struct Shared {
    std::mutex mu;
    Histogram latency;
    std::atomic<int64_t> warm_end{INT64_MAX};
    std::atomic<uint64_t> measured{0}, early{0};
    std::atomic<int64_t> last_event{0};
  } sh;
  auto on_event = [&sh](const std::string& value, int64_t now) {
    if (value.size() < 20)
      return;
    int64_t sent = std::strtoll(value.substr(0, 20).c_str(), nullptr, 10);
    if (sent < sh.warm_end.load(std::memory_order_relaxed)) {
      sh.early.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.latency.Record(now - sent);
    sh.measured.fetch_add(1, std::memory_order_relaxed);
    if (now > sh.last_event.load())
      sh.last_event.store(now);
  };
  TM_ASSIGN_OR_RETURN(auto session, t.grpc->OpenWatchers(c.watchers, c.watch_streams, keys,
                                                         on_event, c.connect_timeout_ms * 4));
  WorkloadSpec w = c.workload;
  w.mix = OpMix{};
  w.key_dist = "seq";
  w.key_space = c.watched_keys;
  if (ParseSizeDist(w.value_size).ok() && ParseSizeDist(w.value_size)->lo < 20)
    w.value_size = "20";
  TM_ASSIGN_OR_RETURN(auto gen, OpGenerator::Create(w));
  StampingTarget stamping(t.grpc.get());
  DriverOptions o;
  o.clients = c.clients;
  o.rate = c.put_rate;
  o.duration_ns = c.duration_ns;
  o.requests = c.requests;
  o.warmup_ns = c.warmup_ns;
  o.seed = c.seed + static_cast<uint64_t>(rep);
  o.cancel = cancel;
  TM_ASSIGN_OR_RETURN(auto driver, Driver::Create(&stamping, gen.get(), o));
  sh.warm_end = NowNs() + c.warmup_ns;
  DriverResult puts = RunWithProgress(driver.get(), progress, t.spec.label, rep, c.reps);
  // Let the last events arrive: stop once none came for 300 ms (max 5 s).
  int64_t give_up = NowNs() + 5'000'000'000;
  uint64_t seen = session->events();
  int64_t quiet_since = NowNs();
  while (NowNs() < give_up && !cancel->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t now_seen = session->events();
    if (now_seen != seen) {
      seen = now_seen;
      quiet_since = NowNs();
    } else if (NowNs() - quiet_since > 300'000'000) {
      break;
    }
  }
  session.reset();  // cancels the streams
  DriverResult& r = rec->result;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    r.latency = sh.latency;
  }
  r.service = puts.latency;  // put latency, for reference
  r.ok = sh.measured.load();
  r.warmup_requests = sh.early.load();
  r.errors = puts.errors;
  r.first_error = puts.first_error;
  r.cancelled = puts.cancelled;
  r.measured_seconds = puts.measured_seconds;
  r.throughput = r.measured_seconds > 0 ? r.ok / r.measured_seconds : 0;
  rec->extra = {{"watch_events_total", seen},
                {"watchers", c.watchers},
                {"watch_streams", c.watch_streams},
                {"watched_keys", c.watched_keys},
                {"puts_ok", puts.ok},
                {"put_throughput", puts.throughput},
                {"put_p99_ms", puts.latency.ValueAtPercentile(99) / 1e6}};
  return Status::Ok();
}

}  // namespace

Status ValidateConfig(const RunConfig& c) {
  if (c.targets.empty())
    return InvalidArgumentError("no target endpoint given");
  for (const auto& t : c.targets) {
    if (t.endpoint.empty())
      return InvalidArgumentError("empty endpoint for target " + t.label);
    if (c.loopback_only && !IsLoopbackEndpoint(t.endpoint)) {
      return InvalidArgumentError("target " + t.label + " (" + t.endpoint +
                                  ") is not a loopback address; test mode allows only "
                                  "127.0.0.0/8, [::1] or localhost");
    }
  }
  if (c.connections < 1)
    return InvalidArgumentError("--conns must be at least 1");
  if (c.clients < 1)
    return InvalidArgumentError("--clients must be at least 1");
  if (c.rate < 0)
    return InvalidArgumentError("--rate must be >= 0 (0 = closed loop)");
  if (c.reps < 1)
    return InvalidArgumentError("--reps must be at least 1");
  if (c.watch) {
    if (c.watchers < 1 || c.watch_streams < 1 || c.watched_keys < 1) {
      return InvalidArgumentError(
          "watch: --watchers, --watch-streams and --watched-keys must be >= 1");
    }
    if (c.put_rate <= 0)
      return InvalidArgumentError("watch: --put-rate must be > 0");
  }
  if (c.duration_ns <= 0 && c.requests == 0) {
    return InvalidArgumentError("give --duration or --requests");
  }
  auto gen = OpGenerator::Create(c.workload);
  if (!gen.ok())
    return gen.status();
  auto d = ParseDelayDist(c.injected_delay);
  if (!d.ok())
    return d.status();
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
      return UnavailableError(
          "target " + spec.label + " (" + spec.endpoint +
          ") does not answer the etcd Maintenance.Status RPC: " + version.status().message());
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
          report->problems.push_back(
              "server PID of " + spec.label +
              " not found (CPU/RSS not reported): " + pid.status().message());
        }
      }
    }
    info.pid = t.pid;
    if (config.prefill)
      TM_RETURN_IF_ERROR(Prefill(config, t, cancel, &info));
    report->targets.push_back(info);
    live.push_back(std::move(t));
  }

  for (int rep = 0; rep < config.reps; ++rep) {
    for (size_t i = 0; i < live.size(); ++i) {
      LiveTarget& t = live[i];
      DriverOptions o;
      o.clients = config.clients;
      o.rate = config.rate;
      o.poisson = config.poisson;
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
      if (config.watch) {
        Status ws = RunWatchRep(config, t, rep, cancel, progress, &rec);
        if (!ws.ok())
          return ws;
      } else {
        rec.result = RunWithProgress(driver.get(), progress, t.spec.label, rep, config.reps);
      }
      Result<double> cpu1 = t.pid > 0 ? ProcCpuSeconds(t.pid) : Result<double>(NotFoundError(""));
      if (cpu0.ok() && cpu1.ok())
        rec.server_cpu_s = *cpu1 - *cpu0;
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
    if (report->cancelled)
      break;
  }
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i].pid > 0) {
      auto rss = ProcPeakRssBytes(live[i].pid);
      if (rss.ok())
        report->targets[i].peak_rss_bytes = *rss;
    }
  }
  report->load_avg_after = LoadAvg1();
  return Status::Ok();
}

}  // namespace tidemark::bench
