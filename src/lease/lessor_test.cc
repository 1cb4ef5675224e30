// Lessor: grant/renew/expiry with a ManualClock (no sleeping), persistence
// through the caller's batch, reload with TTL reset, ID and TTL rules.
#include "lease/lessor.h"

#include "base/coding.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "storage/engine.h"
#include "storage/write_batch.h"

namespace tidemark::lease {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class LessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = storage::NewInMemoryEnv();
    OpenEngine();
    OpenLessor();
  }
  void OpenEngine() {
    storage::Options o;
    o.env = env_;
    auto e = storage::Engine::Open("/lessor-test", o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void OpenLessor() {
    Lessor::Options o;
    o.clock = &clock_;
    auto l = Lessor::Open(engine_.get(), o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lessor_ = std::move(*l);
  }
  // Simulates a clean restart (engine flushed on Close).
  void Restart() {
    lessor_.reset();
    ASSERT_TRUE(engine_->Close().ok());
    engine_.reset();
    OpenEngine();
    OpenLessor();
  }
  // What the applier does: persist in a batch, write it, then publish.
  void Commit(const Delta& d) {
    storage::WriteBatch b(engine_.get());
    lessor_->WriteTo(d, &b);
    ASSERT_TRUE(engine_->Write(b).ok());
    lessor_->Publish(d);
  }
  void Grant(int64_t id, int64_t ttl) {
    Delta d;
    d.Grant(id, lessor_->EffectiveTTL(ttl));
    Commit(d);
  }

  ManualClock clock_;
  std::shared_ptr<storage::Env> env_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<Lessor> lessor_;
};

TEST_F(LessorTest, GrantAndTimeToLive) {
  Grant(7, 10);
  ASSERT_TRUE(lessor_->Exists(7));
  auto info = lessor_->TimeToLive(7, false);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->granted_ttl, 10);
  EXPECT_EQ(info->remaining_ttl, 10);
  clock_.Advance(milliseconds(2500));
  EXPECT_EQ(lessor_->TimeToLive(7, false)->remaining_ttl, 7);  // 7.5 truncated
  EXPECT_FALSE(lessor_->TimeToLive(8, false).has_value());
  EXPECT_EQ(lessor_->Leases(), std::vector<int64_t>{7});
}

TEST_F(LessorTest, MinimumTTLRaised) {
  EXPECT_EQ(lessor_->EffectiveTTL(0), 2);
  EXPECT_EQ(lessor_->EffectiveTTL(1), 2);
  EXPECT_EQ(lessor_->EffectiveTTL(2), 2);
  EXPECT_EQ(lessor_->EffectiveTTL(kMaxTTLSeconds), kMaxTTLSeconds);
  Grant(1, kMaxTTLSeconds);  // huge deadlines saturate, never overflow
  clock_.Advance(seconds(100));
  EXPECT_TRUE(lessor_->CheckExpired().empty());
  EXPECT_GT(lessor_->TimeToLive(1, false)->remaining_ttl, 8'000'000'000);
}

TEST_F(LessorTest, RenewResetsDeadline) {
  Grant(7, 10);
  clock_.Advance(seconds(8));
  auto r = lessor_->Renew(7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 10);
  clock_.Advance(seconds(8));
  EXPECT_TRUE(lessor_->CheckExpired().empty());  // 16 s after grant, 8 after renew
  clock_.Advance(seconds(2));
  EXPECT_EQ(lessor_->CheckExpired(), std::vector<int64_t>{7});
  EXPECT_FALSE(lessor_->Renew(99).ok());
}

TEST_F(LessorTest, ExpiredLeaseCannotBeRenewedAndIsHandedOutOnce) {
  Grant(7, 2);
  clock_.Advance(seconds(2));
  EXPECT_EQ(lessor_->Renew(7).status().code(), Code::kNotFound);
  EXPECT_EQ(lessor_->CheckExpired(), std::vector<int64_t>{7});
  EXPECT_TRUE(lessor_->CheckExpired().empty());  // in flight: not again
  // A failed proposal puts it back.
  lessor_->ExpireFinished(7, false);
  EXPECT_EQ(lessor_->CheckExpired(), std::vector<int64_t>{7});
  // The revoke applies.
  Delta d;
  d.Revoke(7);
  Commit(d);
  lessor_->ExpireFinished(7, true);
  EXPECT_FALSE(lessor_->Exists(7));
  EXPECT_TRUE(lessor_->CheckExpired().empty());
}

TEST_F(LessorTest, ExpiryOrderFollowsDeadlines) {
  Grant(1, 30);
  Grant(2, 10);
  Grant(3, 20);
  clock_.Advance(seconds(10));
  EXPECT_EQ(lessor_->CheckExpired(), std::vector<int64_t>{2});
  clock_.Advance(seconds(20));
  EXPECT_EQ(lessor_->CheckExpired(), (std::vector<int64_t>{3, 1}));
}

TEST_F(LessorTest, AttachDetachAndRevoke) {
  Grant(7, 10);
  Delta d;
  d.Attach(7, "b");
  d.Attach(7, "a");
  d.Attach(7, "c");
  d.Detach(7, "c");
  Commit(d);
  EXPECT_EQ(lessor_->Keys(7), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(lessor_->TimeToLive(7, true)->keys, (std::vector<std::string>{"a", "b"}));
  Delta r;
  r.Revoke(7);
  Commit(r);
  EXPECT_FALSE(lessor_->Exists(7));
  EXPECT_TRUE(lessor_->Keys(7).empty());
  Restart();
  EXPECT_FALSE(lessor_->Exists(7));  // record and attachments both gone
}

TEST_F(LessorTest, NothingChangesUntilPublish) {
  Delta d;
  d.Grant(5, 10);
  storage::WriteBatch b(engine_.get());
  lessor_->WriteTo(d, &b);
  EXPECT_GT(b.Count(), 0u);
  EXPECT_FALSE(lessor_->Exists(5));  // a batch that never commits changes nothing
}

TEST_F(LessorTest, RestartReloadsLeasesAndResetsTTL) {
  Grant(7, 10);
  Grant(-3, 100);  // client-chosen IDs may be negative in etcd
  Delta d;
  d.Attach(7, "k1");
  d.Attach(7, std::string("k\0bin", 5));
  d.Attach(-3, "k3");
  Commit(d);
  clock_.Advance(seconds(9));
  ASSERT_TRUE(lessor_->Renew(7).ok());  // renewals are not persisted
  clock_.Advance(seconds(5));
  Restart();
  EXPECT_EQ(lessor_->Leases(), (std::vector<int64_t>{-3, 7}));
  auto info = lessor_->TimeToLive(7, true);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->granted_ttl, 10);
  EXPECT_EQ(info->remaining_ttl, 10);  // full TTL again
  EXPECT_EQ(info->keys, (std::vector<std::string>{std::string("k\0bin", 5), "k1"}));
  EXPECT_EQ(lessor_->Keys(-3), std::vector<std::string>{"k3"});
  clock_.Advance(seconds(10));
  EXPECT_EQ(lessor_->CheckExpired(), std::vector<int64_t>{7});
}

// Version-1 records (written before grant indexes were kept) still load, with
// grant index 0; a record of another length is reported, not skipped.
TEST_F(LessorTest, LoadsVersion1RecordsAndRefusesBadOnes) {
  storage::WriteBatch b(engine_.get());
  std::string v1(1, '\x01');
  PutFixed64(&v1, 30);
  b.Put(storage::kMetaCf, LeaseRecordKey(9), v1);
  ASSERT_TRUE(engine_->Write(b).ok());
  Delta d;
  d.Grant(10, 20, /*grant_index=*/77);
  Commit(d);
  Restart();
  EXPECT_EQ(lessor_->TimeToLive(9, false)->granted_ttl, 30);
  EXPECT_EQ(lessor_->GrantIndex(9), 0u);
  EXPECT_EQ(lessor_->GrantIndex(10), 77u);
  EXPECT_FALSE(lessor_->GrantIndex(11).has_value());
  storage::WriteBatch bad(engine_.get());
  bad.Put(storage::kMetaCf, LeaseRecordKey(12), std::string("\x02short", 6));
  ASSERT_TRUE(engine_->Write(bad).ok());
  lessor_.reset();
  auto l = Lessor::Open(engine_.get(), Lessor::Options{.clock = &clock_});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), Code::kCorruption);
  EXPECT_NE(l.status().message().find("lease 12"), std::string::npos) << l.status().ToString();
}

TEST_F(LessorTest, UnflushedBatchIsLostLikeTheData) {
  Grant(7, 10);
  ASSERT_TRUE(engine_->Flush().ok());
  Grant(8, 10);  // never flushed: lost with the rest of the batch
  lessor_.reset();
  engine_->CloseWithoutFlushForTesting();
  engine_.reset();
  OpenEngine();
  OpenLessor();
  EXPECT_EQ(lessor_->Leases(), std::vector<int64_t>{7});
}

TEST_F(LessorTest, ExpiryThreadHandsOutExpiredLeases) {
  Lessor::Options o;
  o.clock = &clock_;
  o.check_interval_ms = 5;
  lessor_.reset();
  auto l = Lessor::Open(engine_.get(), o);
  ASSERT_TRUE(l.ok());
  lessor_ = std::move(*l);
  Grant(11, 2);
  std::atomic<int64_t> got{0};
  lessor_->Start([&](const std::vector<Lessor::Expired>& e) { got = e.front().id; });
  clock_.Advance(seconds(3));
  for (int i = 0; i < 2000 && got.load() == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(got.load(), 11);
  lessor_->Stop();
}

}  // namespace
}  // namespace tidemark::lease
