#include "bench/bench_cli.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "bench/bench_flags.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/stats.h"

#include <CLI/CLI.hpp>

namespace tidemark::bench {

namespace {

std::atomic<bool> g_cancel{false};

void OnSigint(int) {
  g_cancel.store(true);
  // A second Ctrl-C kills the process the usual way.
  signal(SIGINT, SIG_DFL);
}

// While alive, Ctrl-C sets g_cancel (finished repetitions are kept) instead
// of killing the process; the previous SIGINT action comes back after.
class CtrlCCancels {
 public:
  CtrlCCancels() {
    g_cancel = false;
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~CtrlCCancels() { sigaction(SIGINT, &old_, nullptr); }
  CtrlCCancels(const CtrlCCancels&) = delete;
  CtrlCCancels& operator=(const CtrlCCancels&) = delete;

 private:
  struct sigaction old_ {};
};

void AddWorkloadFlags(CLI::App* c, BenchFlags* f) {
  c->add_option("--workload", f->workload,
                "put, range, delete, txn (compare + put), mixed (needs --mix) or watch")
      ->default_val(f->workload);
  c->add_option("--watchers", f->watchers, "watch: number of watchers")->default_val(f->watchers);
  c->add_option("--watch-streams", f->watch_streams, "watch: gRPC Watch streams carrying them")
      ->default_val(f->watch_streams);
  c->add_option("--watched-keys", f->watched_keys, "watch: keys watched (watcher w on key w mod K)")
      ->default_val(f->watched_keys);
  c->add_option("--put-rate", f->put_rate, "watch: puts/s on the watched keys (open loop)")
      ->default_val(f->put_rate);
  c->add_option("--mix", f->mix,
                "operation mix by ratio, e.g. range=8,put=2 (overrides --workload)");
  c->add_option("--consistency", f->consistency,
                "range consistency: l (linearizable) or s (serializable)")
      ->default_val(f->consistency);
  c->add_option("--key-dist", f->key_dist,
                "uniform | zipf:ALPHA | seq | hot:X:Y (X % of requests on Y % of keys)")
      ->default_val(f->key_dist);
  c->add_option("--key-space", f->key_space, "number of distinct keys")->default_val(f->key_space);
  c->add_option("--key-size", f->key_size, "key size in bytes")->default_val(f->key_size);
  c->add_option("--value-size", f->value_size, "value size in bytes: N or LO-HI (uniform)")
      ->default_val(f->value_size);
  c->add_flag("--prefill", f->prefill, "put every key of the key space once before measuring");
  c->add_option("--conns", f->conns, "gRPC connections per target")->default_val(f->conns);
  c->add_option("--clients", f->clients, "concurrent clients (one request in flight each)")
      ->default_val(f->clients);
  c->add_option(
       "--rate", f->rate,
       "open loop at this many requests/s (latency from the intended send time); 0 = closed loop")
      ->default_val(0);
  c->add_option("--arrivals", f->arrivals,
                "open loop: uniform (constant spacing) or poisson (exponential gaps)")
      ->default_val(f->arrivals);
  c->add_option("--duration", f->duration,
                "measured duration per repetition, e.g. 10s (default 5s unless --requests)");
  c->add_option("--requests", f->requests,
                "measured requests per repetition (instead of --duration)");
  c->add_option("--warmup", f->warmup, "unrecorded warm-up per repetition")->default_val(f->warmup);
  c->add_option("--reps", f->reps, "repetitions per target")->default_val(f->reps);
  c->add_option(
       "--delay", f->delay,
       "client-side injected delay before each request: none | const:D | uniform:D1-D2 | exp:MEAN")
      ->default_val(f->delay);
  c->add_option("--seed", f->seed, "random seed")->default_val(f->seed);
  c->add_option("--out", f->out, "output directory for results.json, results.md and the SVG plots")
      ->default_val(f->out);
  c->add_option("--progress", f->progress, "auto (when stderr is a terminal), always or never")
      ->default_val(f->progress);
  c->add_flag("--test-mode", f->test_mode, "refuse any target that is not on loopback");
  c->add_option("--connect-timeout", f->connect_timeout, "how long to wait for each connection")
      ->default_val(f->connect_timeout);
}

std::string JoinArgs(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i > 0)
      s += ' ';
    std::string a = argv[i];
    if (i == 0) {
      size_t slash = a.rfind('/');
      if (slash != std::string::npos)
        a = a.substr(slash + 1);
    }
    bool quote = a.find_first_of(" \t'\"$*?") != std::string::npos;
    s += quote ? "'" + a + "'" : a;
  }
  return s;
}

}  // namespace

Status BuildConfig(const BenchFlags& f, bool ab, RunConfig* c) {
  if (ab) {
    if (f.a.empty() || f.b.empty())
      return InvalidArgumentError("bench ab needs --a and --b endpoints");
    if (f.a_name == f.b_name)
      return InvalidArgumentError("--a-name and --b-name must differ");
    c->targets = {{f.a_name, f.a, f.a_pid}, {f.b_name, f.b, f.b_pid}};
  } else {
    c->targets = {{"A", f.endpoint, f.pid}};
  }
  std::string mix = f.mix;
  c->workload_name = f.workload;
  if (mix.empty()) {
    if (f.workload == "put" || f.workload == "range" || f.workload == "delete" ||
        f.workload == "txn") {
      mix = f.workload + "=1";
    } else if (f.workload == "watch") {
      mix = "put=1";
      c->watch = true;
    } else if (f.workload == "mixed") {
      return InvalidArgumentError("workload 'mixed' needs --mix, e.g. --mix range=8,put=2");
    } else {
      return InvalidArgumentError("unknown workload '" + f.workload +
                                  "' (expected put, range, delete, txn, mixed or watch)");
    }
  } else if (f.workload == "put") {
    c->workload_name = "mixed";
  }
  TM_ASSIGN_OR_RETURN(c->workload.mix, ParseOpMix(mix));
  if (f.consistency != "l" && f.consistency != "s") {
    return InvalidArgumentError("--consistency must be l or s, got '" + f.consistency + "'");
  }
  c->workload.serializable = f.consistency == "s";
  if (c->workload_name == "range")
    c->workload_name = c->workload.serializable ? "range-s" : "range-l";
  c->workload.key_dist = f.key_dist;
  c->workload.key_space = f.key_space;
  c->workload.key_size = f.key_size;
  c->workload.value_size = f.value_size;
  c->connections = f.conns;
  c->clients = f.clients;
  c->rate = f.rate;
  if (f.arrivals != "uniform" && f.arrivals != "poisson") {
    return InvalidArgumentError("--arrivals must be uniform or poisson, got '" + f.arrivals + "'");
  }
  c->poisson = f.arrivals == "poisson";
  c->requests = f.requests;
  if (!f.duration.empty()) {
    TM_ASSIGN_OR_RETURN(c->duration_ns, ParseDurationNs(f.duration));
    if (c->duration_ns <= 0)
      return InvalidArgumentError("--duration must be > 0");
  } else if (f.requests == 0) {
    c->duration_ns = 5'000'000'000;
  }
  TM_ASSIGN_OR_RETURN(c->warmup_ns, ParseDurationNs(f.warmup));
  TM_ASSIGN_OR_RETURN(int64_t ct, ParseDurationNs(f.connect_timeout));
  c->connect_timeout_ms = std::max<int64_t>(1, ct / 1000000);
  c->reps = f.reps;
  c->watchers = f.watchers;
  c->watch_streams = f.watch_streams;
  c->watched_keys = f.watched_keys;
  c->put_rate = f.put_rate;
  c->injected_delay = f.delay;
  c->seed = f.seed;
  c->prefill = f.prefill;
  c->loopback_only = f.test_mode;
  if (f.progress != "auto" && f.progress != "always" && f.progress != "never") {
    return InvalidArgumentError("--progress must be auto, always or never");
  }
  return ValidateConfig(*c);
}

nlohmann::json ConfigJson(const RunConfig& c) {
  auto delay = ParseDelayDist(c.injected_delay);
  return {{"mix", c.workload.mix.Describe()},
          {"serializable", c.workload.serializable},
          {"key_dist", c.workload.key_dist},
          {"key_space", c.workload.key_space},
          {"key_size", c.workload.key_size},
          {"value_size", c.workload.value_size},
          {"connections", c.connections},
          {"clients", c.clients},
          {"rate", c.rate},
          {"arrivals", c.poisson ? "poisson" : "uniform"},
          {"duration_s", c.duration_ns / 1e9},
          {"requests", c.requests},
          {"warmup_s", c.warmup_ns / 1e9},
          {"reps", c.reps},
          {"injected_delay", delay.ok() ? delay->Describe() : c.injected_delay},
          {"seed", c.seed},
          {"watch", c.watch ? nlohmann::json{{"watchers", c.watchers},
                                             {"streams", c.watch_streams},
                                             {"watched_keys", c.watched_keys},
                                             {"put_rate", c.put_rate}}
                            : nlohmann::json()},
          {"prefill", c.prefill},
          {"loopback_only", c.loopback_only}};
}

namespace {

void PrintProgress(const std::string& label, int rep, int reps, uint64_t done, bool measuring,
                   double secs) {
  std::fprintf(stderr, "\r\033[K[%s rep %d/%d] %s %7.1fs  %llu requests  %.0f req/s", label.c_str(),
               rep + 1, reps, measuring ? "measuring" : "warm-up  ", secs,
               static_cast<unsigned long long>(done), secs > 0 ? done / secs : 0.0);
  std::fflush(stderr);
}

}  // namespace

// engines.cc
int RunEngines(const BenchFlags& flags, const std::string& command_line,
               const std::atomic<bool>* cancel);

BenchCli::BenchCli(CLI::App* app) : flags_(std::make_unique<BenchFlags>()) {
  BenchFlags* f = flags_.get();
  bench_ = app->add_subcommand("bench", "Benchmark etcd-compatible servers or storage engines");
  bench_->require_subcommand(1);
  run_ = bench_->add_subcommand("run", "Run a workload against one endpoint");
  run_->add_option("--endpoint", f->endpoint, "host:port of the server")->default_val(f->endpoint);
  run_->add_option("--pid", f->pid,
                   "server PID for CPU and RSS (default: found from the port when local)");
  AddWorkloadFlags(run_, f);
  ab_ =
      bench_->add_subcommand("ab", "Compare two endpoints, interleaved A B A B ..., with verdicts");
  ab_->add_option("--a", f->a, "host:port of server A (the baseline)");
  ab_->add_option("--b", f->b, "host:port of server B");
  ab_->add_option("--a-name", f->a_name, "label of A")->default_val(f->a_name);
  ab_->add_option("--b-name", f->b_name, "label of B")->default_val(f->b_name);
  ab_->add_option("--a-pid", f->a_pid, "PID of A (default: from the port)");
  ab_->add_option("--b-pid", f->b_pid, "PID of B (default: from the port)");
  AddWorkloadFlags(ab_, f);
  engines_ =
      bench_->add_subcommand("engines", "Drive embedded storage engines with the same generator");
  engines_
      ->add_option("--engines", f->engines,
                   "comma list: tidemark,rocksdb,leveldb,lmdb,sqlite or all")
      ->default_val(f->engines);
  engines_->add_option("--dir", f->engine_dir,
                       "directory for the engines' files (default: a temp dir)");
  engines_->add_option("--sync", f->sync, "on, off or both")->default_val(f->sync);
  engines_->add_flag("--keep-data", f->keep_data, "keep the engines' directories");
  AddWorkloadFlags(engines_, f);
}

BenchCli::~BenchCli() = default;

bool BenchCli::parsed() const {
  return bench_->parsed();
}

int BenchCli::Run(int argc, char** argv) {
  const BenchFlags& f = *flags_;
  std::string command_line = JoinArgs(argc, argv);
  if (engines_->parsed()) {
    CtrlCCancels on_ctrl_c;
    return RunEngines(f, command_line, &g_cancel);
  }
  RunConfig config;
  config.command_line = command_line;
  Status s = BuildConfig(f, ab_->parsed(), &config);
  if (!s.ok()) {
    std::fprintf(stderr, "Error: %s\n", s.message().c_str());
    return 2;
  }
  bool show = f.progress == "always" || (f.progress == "auto" && isatty(STDERR_FILENO));
  ProgressFn progress;
  if (show)
    progress = PrintProgress;

  BenchReport report;
  report.config = ConfigJson(config);
  {
    CtrlCCancels on_ctrl_c;
    s = RunBenchmark(config, &g_cancel, progress, &report);
  }
  if (show)
    std::fprintf(stderr, "\r\033[K");
  if (!s.ok()) {
    std::fprintf(stderr, "Error: %s\n", s.message().c_str());
    return s.code() == Code::kInvalidArgument ? 2 : 1;
  }
  std::vector<std::string> written;
  s = WriteReport(report, f.out, &written);
  if (!s.ok()) {
    std::fprintf(stderr, "Error: %s\n", s.message().c_str());
    return 1;
  }
  // Console summary: one line per target, then the verdicts.
  for (const auto& t : report.targets) {
    const auto tput = Values(report, t.label, "throughput");
    std::printf("%s (%s, %s): %zu reps, median %.0f req/s, median p99 %.3f ms\n", t.label.c_str(),
                t.endpoint.c_str(), t.server_version.c_str(), tput.size(), Median(tput),
                Median(Values(report, t.label, "p99_ms")));
  }
  for (const auto& v : Verdicts(report))
    std::printf("%s\n", v.c_str());
  for (const auto& p : report.problems)
    std::printf("problem: %s\n", p.c_str());
  for (const auto& w : written)
    std::printf("wrote %s\n", w.c_str());
  if (report.cancelled) {
    std::printf("interrupted: %zu finished repetitions kept\n", report.reps.size());
    return 130;
  }
  bool errors = false;
  for (const auto& r : report.reps)
    errors = errors || r.result.errors > 0;
  return errors ? 1 : 0;
}

}  // namespace tidemark::bench
