#pragma once
// bench::Driver: runs one measured repetition of a workload against a Target
// with M logical clients, each with at most one request in flight.
//
// Closed loop (rate == 0): each client sends its next request as soon as the
// previous one completed (plus the optional injected delay). Latency is
// completion - send.
//
// Open loop (rate > 0): request i is INTENDED to be sent at
// start + i / rate (OpenLoopSchedule), whatever happens to earlier requests.
// A request whose intended time has come waits in a FIFO until a client is
// free; its latency is completion - INTENDED send time, so a stalled server
// shows up as the long latencies of everything that should have been sent
// during the stall (no coordinated omission). The histogram `service` keeps
// completion - actual send for comparison.
//
// Warm-up: requests sent (intended) before start + warmup are executed but
// not recorded. The run ends after `duration_ns` of measurement or after
// `requests` measured requests (whichever is set; duration wins if both),
// or as soon as *cancel becomes true (then result.cancelled is set).
//
// Thread safety: Run() blocks the calling thread; Target callbacks may come
// from any thread. Progress counters may be read concurrently.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "bench/distributions.h"
#include "bench/histogram.h"
#include "bench/workload.h"

namespace tidemark::bench {

// Executes operations asynchronously. Start() must call `done` exactly once,
// from any thread (possibly before Start returns), with OK or the error.
class Target {
 public:
  virtual ~Target() = default;
  virtual void Start(int client, const Op& op, std::function<void(const Status&)> done) = 0;
};

// Intended send times of an open-loop run: IntendedAt(i) = start + i / rate,
// computed from i (not accumulated), so it never drifts and never depends on
// when earlier requests were actually sent or completed.
class OpenLoopSchedule {
 public:
  OpenLoopSchedule(int64_t start_ns, double rate_per_s) : start_(start_ns), rate_(rate_per_s) {}
  int64_t IntendedAt(uint64_t i) const {
    return start_ + static_cast<int64_t>(static_cast<long double>(i) * 1e9L / rate_);
  }

 private:
  int64_t start_;
  double rate_;
};

struct DriverOptions {
  int clients = 1;
  double rate = 0;  // total requests/s; 0 = closed loop
  // Open loop only: Poisson arrivals (exponential gaps drawn from `seed`,
  // still fixed in advance of any completion) instead of constant spacing.
  bool poisson = false;
  int64_t duration_ns = 0;  // measured duration; 0 = use `requests`
  uint64_t requests = 0;    // measured requests when duration_ns == 0
  int64_t warmup_ns = 0;
  DelayDist injected_delay;  // client-side delay before each send
  uint64_t seed = 1;
  const std::atomic<bool>* cancel = nullptr;  // may be null
};

struct DriverResult {
  Histogram latency;                      // measured: completion - intended (open) / send (closed)
  Histogram service;                      // completion - actual send
  std::array<Histogram, kOpTypes> by_op;  // latency per operation type
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t warmup_requests = 0;
  std::string first_error;
  double measured_seconds = 0;
  double throughput = 0;  // ok measured requests / measured_seconds
  bool cancelled = false;
};

struct DriverProgress {
  std::atomic<uint64_t> completed{0};  // including warm-up
  std::atomic<bool> measuring{false};
};

class Driver {
 public:
  // `target` and `gen` must outlive the driver. kInvalidArgument for
  // clients < 1, rate < 0, or neither duration nor requests set.
  static Result<std::unique_ptr<Driver>> Create(Target* target, OpGenerator* gen,
                                                DriverOptions options);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  DriverResult Run();
  const DriverProgress& progress() const { return progress_; }

 private:
  struct Client;
  Driver(Target* target, OpGenerator* gen, DriverOptions options);
  bool ShouldStop(int64_t now) const;
  void IssueClosed(int c);
  void Send(int c, int64_t intended);
  void OnDone(int c, OpType type, int64_t intended, int64_t sent, const Status& s);
  void SendAfterDelay(int c, int64_t intended);
  bool ShouldStopForCancel() const;
  void ClientFinished();
  void Dispatch();  // open-loop dispatcher thread body

  struct Impl;
  std::unique_ptr<Impl> impl_;
  Target* target_;
  OpGenerator* gen_;
  DriverOptions options_;
  DriverProgress progress_;
};

}  // namespace tidemark::bench
