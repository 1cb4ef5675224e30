// `tidemark bench engines`: drives embedded engines (engines/kv_engine.h)
// with the same operation generator as `bench run`, closed loop with
// --clients threads. Each (repetition, engine, sync) runs in a forked child
// process so that peak RSS, CPU time and bytes written (/proc/self/io) belong
// to that engine alone; the child sends its figures back as one JSON line.
// Repetitions are interleaved: rep 1 of every engine, then rep 2, ...
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "bench/bench_flags.h"
#include "bench/engines/kv_engine.h"
#include "bench/proc_stats.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/stats.h"
#include "bench/timer_queue.h"

namespace tidemark::bench {
namespace {

// Writes back every dirty page of the file system holding `dir`. The kernel
// charges write_bytes (/proc/self/io) when a page turns dirty, so syncing
// before the measured window makes every page the window dirties count.
void SyncFileSystem(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return;
  ::syncfs(fd);
  ::close(fd);
}

uint64_t ProcWriteBytes() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t v = 0;
  while (in >> key >> v) {
    if (key == "write_bytes:")
      return v;
  }
  return 0;
}

// Allocated bytes (st_blocks) under `dir`: sparse files (LMDB's map) count
// only what is really on disk.
uint64_t DiskBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

// Runs one (engine, sync) measurement in this process; returns its JSON.
nlohmann::json MeasureEngine(const std::string& name, bool sync, const std::string& dir,
                             const RunConfig& c, const std::atomic<bool>* cancel) {
  nlohmann::json out;
  auto fail = [&](const Status& s) {
    out["fatal"] = s.ToString();
    return out;
  };
  std::filesystem::create_directories(dir);
  auto gen = OpGenerator::Create(c.workload);
  if (!gen.ok())
    return fail(gen.status());

  int64_t t0 = NowNs();
  if (c.prefill) {
    // Prefill without sync (it is not measured), then close and reopen
    // below with the mode under test.
    auto pre_engine = OpenEngine(name, dir, /*sync=*/false);
    if (!pre_engine.ok())
      return fail(pre_engine.status());
    WorkloadSpec w = c.workload;
    w.mix = OpMix{};
    w.key_dist = "seq";
    auto pre = OpGenerator::Create(w);
    if (!pre.ok())
      return fail(pre.status());
    Rng rng(c.seed);
    for (uint64_t i = 0; i < c.workload.key_space && !cancel->load(); ++i) {
      Op op = (*pre)->Next(rng);
      Status s = (*pre_engine)->Put(op.key, op.value);
      if (!s.ok())
        return fail(s);
    }
    Status s = (*pre_engine)->Close();
    if (!s.ok())
      return fail(s);
  }
  out["prefill_seconds"] = (NowNs() - t0) / 1e9;
  auto engine = OpenEngine(name, dir, sync);
  if (!engine.ok())
    return fail(engine.status());
  KvEngine* db = engine->get();
  SyncFileSystem(dir);
  const uint64_t written0 = ProcWriteBytes();
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);

  const int64_t start = NowNs();
  const int64_t warm_end = start + c.warmup_ns;
  const int64_t end = c.duration_ns > 0 ? warm_end + c.duration_ns : INT64_MAX;
  std::atomic<uint64_t> admitted{0};
  std::atomic<uint64_t> logical{0};
  std::atomic<int64_t> last_end{0};
  std::mutex mu;
  DriverResult total;
  std::vector<std::thread> threads;
  for (int t = 0; t < c.clients; ++t) {
    threads.emplace_back([&, t] {
      DriverResult r;
      Rng rng(c.seed * 1000003 + static_cast<uint64_t>(t));
      std::string value;
      uint64_t bytes = 0;
      int64_t done_at = 0;
      for (;;) {
        int64_t now = NowNs();
        if (now >= end || cancel->load(std::memory_order_relaxed))
          break;
        if (c.duration_ns <= 0 && now >= warm_end && admitted.fetch_add(1) >= c.requests)
          break;
        Op op = (*gen)->Next(rng);
        int64_t s0 = NowNs();
        Status s;
        switch (op.type) {
          case OpType::kRange: {
            auto got = db->Get(op.key, &value);
            if (!got.ok())
              s = got.status();
            break;
          }
          case OpType::kPut:
            s = db->Put(op.key, op.value);
            break;
          case OpType::kDelete:
            s = db->Delete(op.key);
            break;
          case OpType::kTxn: {  // compare (read) + put
            auto got = db->Get(op.key, &value);
            s = got.ok() ? db->Put(op.key, op.value) : got.status();
            break;
          }
        }
        int64_t s1 = NowNs();
        done_at = s1;
        if (op.type != OpType::kRange)
          bytes += op.key.size() + op.value.size();
        if (s0 < warm_end) {
          ++r.warmup_requests;
        } else if (s.ok()) {
          ++r.ok;
          r.latency.Record(s1 - s0);
          r.by_op[static_cast<size_t>(op.type)].Record(s1 - s0);
        } else if (r.errors++ == 0) {
          r.first_error = s.ToString();
        }
      }
      logical += bytes;
      std::lock_guard<std::mutex> lock(mu);
      total.latency.Merge(r.latency);
      for (size_t i = 0; i < kOpTypes; ++i)
        total.by_op[i].Merge(r.by_op[i]);
      total.ok += r.ok;
      total.errors += r.errors;
      total.warmup_requests += r.warmup_requests;
      if (total.first_error.empty())
        total.first_error = r.first_error;
      if (done_at > last_end)
        last_end = done_at;
    });
  }
  for (auto& th : threads)
    th.join();
  double secs = last_end > warm_end ? (last_end - warm_end) / 1e9 : 0;
  Status closed = db->Close();
  if (!closed.ok())
    return fail(closed);
  engine->reset();
  SyncFileSystem(dir);
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);
  auto cpu = [](const rusage& r) {
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  uint64_t written = ProcWriteBytes() - written0;
  auto rss = ProcPeakRssBytes(getpid());
  out["ok"] = total.ok;
  out["errors"] = total.errors;
  out["first_error"] = total.first_error;
  out["warmup_requests"] = total.warmup_requests;
  out["measured_seconds"] = secs;
  out["cancelled"] = cancel->load();
  out["latency"] = total.latency.Encode();
  for (size_t i = 0; i < kOpTypes; ++i)
    out["by_op"].push_back(total.by_op[i].Encode());
  out["cpu_seconds"] = cpu(ru1) - cpu(ru0);
  out["write_bytes"] = written;
  out["logical_write_bytes"] = logical.load();
  out["write_amplification"] = logical > 0 ? static_cast<double>(written) / logical : 0.0;
  out["disk_bytes"] = DiskBytes(dir);
  out["peak_rss_bytes"] = rss.ok() ? *rss : 0;
  return out;
}

// Forks a child that runs MeasureEngine and reads its JSON back.
Result<nlohmann::json> MeasureInChild(const std::string& name, bool sync, const std::string& dir,
                                      const RunConfig& c, const std::atomic<bool>* cancel) {
  int fds[2];
  if (pipe(fds) != 0)
    return IoError("pipe failed");
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0)
    return IoError("fork failed");
  if (pid == 0) {
    close(fds[0]);
    std::string line = MeasureEngine(name, sync, dir, c, cancel).dump() + "\n";
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = write(fds[1], p, left);
      if (n <= 0)
        break;
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) {
      data.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || data.empty()) {
    return InternalError("engine " + name + " child process died (status " +
                         std::to_string(status) + ")");
  }
  auto j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return InternalError("engine " + name + ": unreadable child output");
  if (j.contains("fatal"))
    return InternalError("engine " + name + ": " + j["fatal"].get<std::string>());
  return j;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos)
      comma = s.size();
    if (comma > start)
      out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int RunEngines(const BenchFlags& f, const std::string& command_line,
               const std::atomic<bool>* cancel) {
  RunConfig c;
  Status s = BuildConfig(f, /*ab=*/false, &c);
  std::vector<std::string> engines = f.engines == "all" ? AvailableEngines() : SplitList(f.engines);
  std::vector<bool> syncs;
  if (f.sync == "on" || f.sync == "both")
    syncs.push_back(true);
  if (f.sync == "off" || f.sync == "both")
    syncs.push_back(false);
  if (s.ok() && syncs.empty())
    s = InvalidArgumentError("--sync must be on, off or both");
  if (s.ok() && c.rate > 0)
    s = InvalidArgumentError("bench engines runs closed loop only (no --rate)");
  if (s.ok() && c.watch)
    s = InvalidArgumentError("bench engines has no watch workload");
  if (s.ok() && c.clients > 256)
    s = InvalidArgumentError("bench engines: at most 256 --clients (threads)");
  for (const auto& e : engines) {
    bool known = false;
    for (const auto& a : AvailableEngines())
      known = known || a == e;
    if (s.ok() && !known) {
      std::string list;
      for (const auto& a : AvailableEngines())
        list += (list.empty() ? "" : ", ") + a;
      s = InvalidArgumentError("unknown engine '" + e + "' (this build has: " + list + ")");
    }
  }
  if (!s.ok()) {
    std::fprintf(stderr, "Error: %s\n", s.message().c_str());
    return 2;
  }
  std::string base = f.engine_dir;
  bool made_temp = false;
  if (base.empty()) {
    // /var/tmp, not /tmp: /tmp may be tmpfs, where fsync costs nothing.
    char tmpl[] = "/var/tmp/tidemark-bench-engines-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::fprintf(stderr, "Error: cannot create a directory under /var/tmp\n");
      return 1;
    }
    base = tmpl;
    made_temp = true;
  }
  BenchReport report;
  report.mode = "engines";
  report.command_line = command_line;
  report.workload_name = c.workload_name;
  report.config = ConfigJson(c);
  report.config["engines"] = engines;
  report.config["sync"] = f.sync;
  report.config["dir"] = base;
  report.load_avg_before = LoadAvg1();
  for (const auto& e : engines) {
    for (bool sync : syncs) {
      TargetInfo t;
      t.label = e + (sync ? "/sync" : "/nosync");
      t.endpoint = base;
      t.server_version = "embedded";
      report.targets.push_back(t);
    }
  }
  bool show = f.progress == "always" || (f.progress == "auto" && isatty(STDERR_FILENO));
  for (int rep = 0; rep < c.reps && !cancel->load(); ++rep) {
    size_t ti = 0;
    for (const auto& e : engines) {
      for (bool sync : syncs) {
        TargetInfo& target = report.targets[ti++];
        if (cancel->load())
          break;
        if (show) {
          std::fprintf(stderr, "\r\033[K[rep %d/%d] %s", rep + 1, c.reps, target.label.c_str());
          std::fflush(stderr);
        }
        std::string dir = base + "/" + e + (sync ? "-sync-" : "-nosync-") + std::to_string(rep);
        auto j = MeasureInChild(e, sync, dir, c, cancel);
        if (!f.keep_data)
          std::filesystem::remove_all(dir);
        if (!j.ok()) {
          report.problems.push_back(target.label + " rep " + std::to_string(rep + 1) + ": " +
                                    j.status().message());
          continue;
        }
        if ((*j)["cancelled"].get<bool>()) {
          report.cancelled = true;
          break;
        }
        RepRecord r;
        r.target = target.label;
        r.rep = rep;
        r.result.ok = (*j)["ok"];
        r.result.errors = (*j)["errors"];
        r.result.first_error = (*j)["first_error"];
        r.result.warmup_requests = (*j)["warmup_requests"];
        r.result.measured_seconds = (*j)["measured_seconds"];
        r.result.throughput =
            r.result.measured_seconds > 0 ? r.result.ok / r.result.measured_seconds : 0;
        Histogram::Decode((*j)["latency"], &r.result.latency);
        for (size_t i = 0; i < kOpTypes; ++i)
          Histogram::Decode((*j)["by_op"][i], &r.result.by_op[i]);
        r.result.service = r.result.latency;
        r.server_cpu_s = (*j)["cpu_seconds"];
        for (const char* k : {"write_bytes", "logical_write_bytes", "write_amplification",
                              "disk_bytes", "peak_rss_bytes", "prefill_seconds"}) {
          r.extra[k] = (*j)[k];
        }
        target.peak_rss_bytes = std::max<uint64_t>(target.peak_rss_bytes, (*j)["peak_rss_bytes"]);
        target.prefill_seconds = (*j)["prefill_seconds"];
        if (r.result.errors > 0) {
          report.problems.push_back(target.label + " rep " + std::to_string(rep + 1) + ": " +
                                    std::to_string(r.result.errors) +
                                    " errors, first: " + r.result.first_error);
        }
        report.reps.push_back(std::move(r));
      }
      if (report.cancelled)
        break;
    }
  }
  if (show)
    std::fprintf(stderr, "\r\033[K");
  report.load_avg_after = LoadAvg1();
  if (made_temp && !f.keep_data)
    std::filesystem::remove_all(base);
  std::vector<std::string> written;
  s = WriteReport(report, f.out, &written);
  if (!s.ok()) {
    std::fprintf(stderr, "Error: %s\n", s.message().c_str());
    return 1;
  }
  for (const auto& t : report.targets) {
    const auto tput = Values(report, t.label, "throughput");
    std::printf("%-16s %zu reps, median %8.0f ops/s, median p99 %.3f ms, peak RSS %.0f MiB\n",
                t.label.c_str(), tput.size(), Median(tput), Median(Values(report, t.label, "p99_ms")),
                t.peak_rss_bytes / 1048576.0);
  }
  for (const auto& p : report.problems)
    std::printf("problem: %s\n", p.c_str());
  for (const auto& w : written)
    std::printf("wrote %s\n", w.c_str());
  if (report.cancelled)
    return 130;
  return report.problems.empty() ? 0 : 1;
}

}  // namespace tidemark::bench
