#include "bench/driver.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "bench/timer_queue.h"

namespace tidemark::bench {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxShards = 16;
// Completions that arrive synchronously inside Start() would otherwise
// recurse once per request; past this depth the next send is bounced to the
// timer thread.
constexpr int kMaxInlineDepth = 16;
thread_local int g_inline_depth = 0;

}  // namespace

struct Driver::Impl {
  struct Shard {
    std::mutex mu;
    DriverResult r;
  };
  std::vector<Rng> rngs;  // one per client; used only by the client's own chain
  std::vector<std::unique_ptr<Shard>> shards;
  int64_t start = 0, warmup_end = 0, measure_end = kNever;
  std::atomic<uint64_t> measured_admitted{0};
  std::atomic<int64_t> last_end{0};
  std::atomic<bool> stop_all{false};

  std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  int active_closed = 0;
  std::deque<int64_t> pending;  // open loop: intended times waiting for a client
  std::vector<int> idle;        // open loop: free clients
  bool dispatch_done = false;

  TimerQueue timers;
  std::thread dispatcher;
};

Result<std::unique_ptr<Driver>> Driver::Create(Target* target, OpGenerator* gen,
                                               DriverOptions options) {
  if (options.clients < 1)
    return InvalidArgumentError("clients must be at least 1");
  if (options.rate < 0)
    return InvalidArgumentError("rate must be >= 0 (0 = closed loop)");
  if (options.duration_ns <= 0 && options.requests == 0) {
    return InvalidArgumentError("set a duration or a number of requests");
  }
  if (options.warmup_ns < 0)
    return InvalidArgumentError("warm-up must be >= 0");
  return std::unique_ptr<Driver>(new Driver(target, gen, options));
}

Driver::Driver(Target* target, OpGenerator* gen, DriverOptions options)
    : impl_(std::make_unique<Impl>()), target_(target), gen_(gen), options_(options) {
  Rng seeder(options.seed);
  for (int c = 0; c < options.clients; ++c)
    impl_->rngs.emplace_back(seeder());
  size_t n = std::min<size_t>(kMaxShards, static_cast<size_t>(options.clients));
  for (size_t i = 0; i < n; ++i)
    impl_->shards.push_back(std::make_unique<Impl::Shard>());
}

Driver::~Driver() {
  if (impl_->dispatcher.joinable())
    impl_->dispatcher.join();
}

bool Driver::ShouldStop(int64_t t) const {
  if (impl_->stop_all.load(std::memory_order_relaxed))
    return true;
  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed))
    return true;
  return t >= impl_->measure_end;
}

// Whether a request intended at `t` may still be sent (request-count mode).
static bool AdmitCounted(std::atomic<uint64_t>& admitted, uint64_t limit) {
  return admitted.fetch_add(1, std::memory_order_relaxed) < limit;
}

void Driver::IssueClosed(int c) {
  int64_t now = NowNs();
  if (ShouldStop(now) || (options_.duration_ns <= 0 && now >= impl_->warmup_end &&
                          !AdmitCounted(impl_->measured_admitted, options_.requests))) {
    ClientFinished();
    return;
  }
  int64_t delay = options_.injected_delay.Next(impl_->rngs[c]);
  if (delay > 0) {
    impl_->timers.At(now + delay, [this, c] {
      int64_t t = NowNs();
      Send(c, t);
    });
    return;
  }
  Send(c, now);
}

void Driver::Send(int c, int64_t intended) {
  if (intended >= impl_->warmup_end)
    progress_.measuring.store(true, std::memory_order_relaxed);
  Op op = gen_->Next(impl_->rngs[c]);
  OpType type = op.type;
  int64_t sent = NowNs();
  target_->Start(c, op, [this, c, type, intended, sent](const Status& s) {
    OnDone(c, type, intended, sent, s);
  });
}

void Driver::OnDone(int c, OpType type, int64_t intended, int64_t sent, const Status& s) {
  int64_t end = NowNs();
  progress_.completed.fetch_add(1, std::memory_order_relaxed);
  Impl::Shard& shard = *impl_->shards[static_cast<size_t>(c) % impl_->shards.size()];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (intended < impl_->warmup_end) {
      ++shard.r.warmup_requests;
    } else if (s.ok()) {
      ++shard.r.ok;
      shard.r.latency.Record(end - intended);
      shard.r.service.Record(end - sent);
      shard.r.by_op[static_cast<size_t>(type)].Record(end - intended);
    } else {
      if (shard.r.errors++ == 0)
        shard.r.first_error = s.ToString();
    }
  }
  int64_t prev = impl_->last_end.load(std::memory_order_relaxed);
  while (prev < end && !impl_->last_end.compare_exchange_weak(prev, end)) {
  }

  auto next = [this, c] {
    if (options_.rate <= 0) {
      IssueClosed(c);
      return;
    }
    int64_t t = 0;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->pending.empty() || ShouldStopForCancel()) {
        impl_->pending.clear();
        impl_->idle.push_back(c);
        if (impl_->dispatch_done)
          impl_->cv.notify_all();
        return;
      }
      t = impl_->pending.front();
      impl_->pending.pop_front();
    }
    SendAfterDelay(c, t);
  };
  if (g_inline_depth >= kMaxInlineDepth) {
    impl_->timers.At(0, next);
    return;
  }
  ++g_inline_depth;
  next();
  --g_inline_depth;
}

bool Driver::ShouldStopForCancel() const {
  return impl_->stop_all.load(std::memory_order_relaxed) ||
         (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed));
}

void Driver::SendAfterDelay(int c, int64_t intended) {
  int64_t delay = options_.injected_delay.Next(impl_->rngs[c]);
  if (delay > 0) {
    impl_->timers.At(NowNs() + delay, [this, c, intended] { Send(c, intended); });
  } else {
    Send(c, intended);
  }
}

void Driver::ClientFinished() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (--impl_->active_closed == 0)
    impl_->cv.notify_all();
}

void Driver::Dispatch() {
  OpenLoopSchedule schedule(impl_->start, options_.rate);
  Rng gaps(options_.seed ^ 0x9e3779b97f4a7c15ull);
  std::exponential_distribution<double> gap_ns(options_.rate / 1e9);
  double poisson_t = static_cast<double>(impl_->start);
  for (uint64_t i = 0;; ++i) {
    int64_t t = schedule.IntendedAt(i);
    if (options_.poisson) {
      t = static_cast<int64_t>(poisson_t);
      poisson_t += gap_ns(gaps);
    }
    if (ShouldStop(t))
      break;
    if (options_.duration_ns <= 0 && t >= impl_->warmup_end &&
        !AdmitCounted(impl_->measured_admitted, options_.requests)) {
      break;
    }
    // Sleep until the intended time, in slices so that Ctrl-C is prompt.
    for (int64_t now = NowNs(); now < t; now = NowNs()) {
      if (ShouldStopForCancel())
        break;
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(t - now, 50000000)));
    }
    if (ShouldStopForCancel())
      break;
    int c = -1;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->idle.empty()) {
        impl_->pending.push_back(t);  // sent late, but timed from t
      } else {
        c = impl_->idle.back();
        impl_->idle.pop_back();
      }
    }
    if (c >= 0)
      SendAfterDelay(c, t);
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->dispatch_done = true;
  if (ShouldStopForCancel())
    impl_->pending.clear();
  impl_->cv.notify_all();
}

DriverResult Driver::Run() {
  Impl& m = *impl_;
  m.start = NowNs();
  m.warmup_end = m.start + options_.warmup_ns;
  if (options_.duration_ns > 0)
    m.measure_end = m.warmup_end + options_.duration_ns;
  const int n = options_.clients;
  if (options_.rate <= 0) {
    {
      std::lock_guard<std::mutex> lock(m.mu);
      m.active_closed = n;
    }
    for (int c = 0; c < n; ++c)
      IssueClosed(c);
    std::unique_lock<std::mutex> lock(m.mu);
    m.cv.wait(lock, [&] { return m.active_closed == 0; });
  } else {
    {
      std::lock_guard<std::mutex> lock(m.mu);
      for (int c = n - 1; c >= 0; --c)
        m.idle.push_back(c);
    }
    m.dispatcher = std::thread([this] { Dispatch(); });
    std::unique_lock<std::mutex> lock(m.mu);
    m.cv.wait(lock, [&] {
      return m.dispatch_done && m.pending.empty() && m.idle.size() == static_cast<size_t>(n);
    });
  }
  if (m.dispatcher.joinable())
    m.dispatcher.join();

  DriverResult out;
  for (auto& shard : m.shards) {
    std::lock_guard<std::mutex> lock(shard->mu);
    DriverResult& r = shard->r;
    out.latency.Merge(r.latency);
    out.service.Merge(r.service);
    for (size_t i = 0; i < kOpTypes; ++i)
      out.by_op[i].Merge(r.by_op[i]);
    out.ok += r.ok;
    out.errors += r.errors;
    out.warmup_requests += r.warmup_requests;
    if (out.first_error.empty())
      out.first_error = r.first_error;
  }
  int64_t last = m.last_end.load();
  out.measured_seconds = last > m.warmup_end ? (last - m.warmup_end) / 1e9 : 0;
  out.throughput = out.measured_seconds > 0 ? out.ok / out.measured_seconds : 0;
  out.cancelled = ShouldStopForCancel();
  return out;
}

}  // namespace tidemark::bench
