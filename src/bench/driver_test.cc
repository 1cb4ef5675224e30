#include "bench/driver.h"

#include <atomic>

#include <gtest/gtest.h>

#include "bench/timer_queue.h"

namespace tidemark::bench {
namespace {

constexpr int64_t kMs = 1000000;

// A fake server: completes each request `service_ns` after it starts, except
// that a request started while the server is stalled completes only when the
// stall ends.
class FakeServer final : public Target {
 public:
  explicit FakeServer(int64_t service_ns) : service_ns_(service_ns) {}
  void Stall(int64_t from_ns, int64_t to_ns) {
    stall_from_ = from_ns;
    stall_to_ = to_ns;
  }
  void Start(int, const Op&, std::function<void(const Status&)> done) override {
    int64_t now = NowNs();
    int64_t end = now + service_ns_;
    if (now >= stall_from_ && now < stall_to_)
      end = std::max(end, stall_to_.load());
    ++started_;
    timers_.At(end, [done = std::move(done)] { done(Status::Ok()); });
  }
  uint64_t started() const { return started_; }

 private:
  int64_t service_ns_;
  std::atomic<int64_t> stall_from_{INT64_MAX}, stall_to_{INT64_MAX};
  std::atomic<uint64_t> started_{0};
  TimerQueue timers_;
};

std::unique_ptr<OpGenerator> PutGenerator() {
  WorkloadSpec spec;
  spec.key_space = 100;
  auto g = OpGenerator::Create(spec);
  EXPECT_TRUE(g.ok());
  return std::move(*g);
}

TEST(OpenLoopScheduleTest, IntendedTimesDependOnlyOnIndex) {
  OpenLoopSchedule s(1000, 4000.0);  // every 250 us
  EXPECT_EQ(s.IntendedAt(0), 1000);
  EXPECT_EQ(s.IntendedAt(1), 1000 + 250000);
  EXPECT_EQ(s.IntendedAt(4000), 1000 + 1000000000);
  EXPECT_EQ(s.IntendedAt(4000000), 1000 + 1000000000000);  // no drift
}

// The server stalls for 200 ms in the middle of a 500 ms open-loop run at
// 2000 req/s with only 4 clients. Requests intended during the stall wait
// for a client, but their latency is measured from their intended send time:
// the ~200 requests intended in the first half of the stall must show
// latencies above 100 ms. A coordinated-omission-prone driver (the
// `service` histogram, timed from the actual send) sees at most 4 of them.
TEST(DriverTest, OpenLoopKeepsIntendedSendTimesUnderStalledServer) {
  FakeServer server(100000);  // 100 us
  auto gen = PutGenerator();
  DriverOptions o;
  o.clients = 4;
  o.rate = 2000;
  o.duration_ns = 500 * kMs;
  auto driver = Driver::Create(&server, gen.get(), o);
  ASSERT_TRUE(driver.ok());
  int64_t start = NowNs();
  server.Stall(start + 100 * kMs, start + 300 * kMs);
  DriverResult r = (*driver)->Run();

  EXPECT_EQ(r.errors, 0u);
  EXPECT_NEAR(static_cast<double>(r.ok), 1000, 5);  // every intended request was sent
  // Count from the CDF: fraction of values <= 100 ms.
  double frac_le = 0;
  for (const auto& p : r.latency.Cdf()) {
    if (p.value <= 100 * kMs)
      frac_le = p.fraction;
  }
  uint64_t over_100ms =
      static_cast<uint64_t>((1 - frac_le) * static_cast<double>(r.latency.count()) + 0.5);
  EXPECT_GT(over_100ms, 150u);
  EXPECT_LT(over_100ms, 250u);
  EXPECT_GE(r.latency.max(), 180 * kMs);
  EXPECT_LE(r.latency.max(), 260 * kMs);

  double service_le = 0;
  for (const auto& p : r.service.Cdf()) {
    if (p.value <= 100 * kMs)
      service_le = p.fraction;
  }
  EXPECT_LE((1 - service_le) * static_cast<double>(r.service.count()), 4.5);
  EXPECT_NEAR(r.throughput, 2000, 200);
}

TEST(DriverTest, PoissonArrivalsKeepTheMeanRate) {
  FakeServer server(10000);
  auto gen = PutGenerator();
  DriverOptions o;
  o.clients = 4;
  o.rate = 4000;
  o.poisson = true;
  o.requests = 1000;
  auto driver = Driver::Create(&server, gen.get(), o);
  ASSERT_TRUE(driver.ok());
  int64_t t0 = NowNs();
  DriverResult r = (*driver)->Run();
  EXPECT_EQ(r.ok, 1000u);
  // 1000 exponential gaps of mean 250 us: 250 ms +- ~8 ms (1 sigma).
  EXPECT_NEAR((NowNs() - t0) / 1e6, 250, 60);
}

TEST(DriverTest, ClosedLoopRequestCountAndWarmup) {
  FakeServer server(50000);
  auto gen = PutGenerator();
  DriverOptions o;
  o.clients = 8;
  o.requests = 2000;
  o.warmup_ns = 20 * kMs;
  auto driver = Driver::Create(&server, gen.get(), o);
  ASSERT_TRUE(driver.ok());
  DriverResult r = (*driver)->Run();
  EXPECT_EQ(r.ok, 2000u);
  EXPECT_GT(r.warmup_requests, 0u);
  EXPECT_EQ(server.started(), r.ok + r.warmup_requests);
  EXPECT_GE(r.latency.ValueAtPercentile(50), 50000);
  EXPECT_GT(r.throughput, 0);
}

TEST(DriverTest, CancelStopsPromptly) {
  FakeServer server(1 * kMs);
  auto gen = PutGenerator();
  std::atomic<bool> cancel{false};
  DriverOptions o;
  o.clients = 2;
  o.rate = 100;
  o.duration_ns = 60000 * kMs;
  o.cancel = &cancel;
  auto driver = Driver::Create(&server, gen.get(), o);
  ASSERT_TRUE(driver.ok());
  TimerQueue t;
  t.At(NowNs() + 50 * kMs, [&] { cancel = true; });
  int64_t t0 = NowNs();
  DriverResult r = (*driver)->Run();
  EXPECT_TRUE(r.cancelled);
  EXPECT_LT(NowNs() - t0, 2000 * kMs);
}

TEST(DriverTest, RejectsBadOptions) {
  FakeServer server(1);
  auto gen = PutGenerator();
  DriverOptions o;
  o.clients = 0;
  o.requests = 1;
  EXPECT_FALSE(Driver::Create(&server, gen.get(), o).ok());
  o.clients = 1;
  o.requests = 0;
  EXPECT_FALSE(Driver::Create(&server, gen.get(), o).ok());
}

}  // namespace
}  // namespace tidemark::bench
