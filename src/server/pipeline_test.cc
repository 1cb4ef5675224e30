// The commit pipeline end to end below gRPC: group commit (one fdatasync for
// many concurrent proposals), power loss (acknowledged writes survive a crash
// that drops every unsynced byte and the storage memtables), and fail-stop on
// an fdatasync error.
#include "server/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "apply/applier.h"
#include "fs/posix_file_system.h"
#include "mvcc/store.h"
#include "server/metrics.h"
#include "storage/engine.h"
#include "testing/fault_injection_fs.h"
#include "testing/temp_dir.h"
#include "wal/wal.h"

namespace tidemark::server {
namespace {

using test::FaultInjectionFileSystem;
using test::FaultOp;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = storage::NewInMemoryEnv();
    fault_fs_ = std::make_unique<FaultInjectionFileSystem>(&posix_);
    Open();
  }
  void TearDown() override { Close(); }

  void Open() {
    storage::Options so;
    so.env = env_;
    auto e = storage::Engine::Open("/pipeline-test-db", so);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    auto s = mvcc::Store::Open(engine_.get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    applier_ = std::make_unique<apply::Applier>(store_.get(), apply::ApplyOptions{});
    wal::WalOptions wo;
    wo.segment_size = 1 << 20;
    wo.initial_index = store_->applied_index() + 1;
    auto w = wal::Wal::Open(fault_fs_.get(), dir_.Join("wal"), wo);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    wal_ = std::move(*w);
    pipeline_ = std::make_unique<Pipeline>(wal_.get(), applier_.get(), &metrics_, &clock_,
                                           Pipeline::Options{});
    ASSERT_TRUE(pipeline_->Recover().ok());
    pipeline_->Start();
  }
  void Close() {
    if (pipeline_) pipeline_->Stop();
    pipeline_.reset();
    if (wal_) wal_->Close().IgnoreError();  // test teardown; errors are irrelevant here
    wal_.reset();
    applier_.reset();
    if (store_) store_->Close();
    store_.reset();
    if (engine_) engine_->Close().IgnoreError();  // teardown
    engine_.reset();
  }
  // Power loss: the WAL keeps only synced bytes, storage only what it flushed.
  void Crash() {
    pipeline_->Stop();
    pipeline_.reset();
    fault_fs_->SetActive(false);
    wal_.reset();
    ASSERT_TRUE(fault_fs_->DropUnsyncedData().ok());
    fault_fs_->SetActive(true);
    applier_.reset();
    store_->Close();
    store_.reset();
    engine_->CloseWithoutFlushForTesting();
    engine_.reset();
  }

  // Proposes a put and waits for its acknowledgement; returns its revision.
  int64_t PutAndWait(const std::string& k, const std::string& v) {
    internal::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int64_t rev = -1;
    pipeline_->Propose(std::move(r), [&](const Status& s, internal::InternalResponse* resp) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (s.ok()) rev = resp->put().header().revision();
      done = true;
      cv.notify_one();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    return rev;
  }

  std::optional<std::pair<std::string, int64_t>> Get(const std::string& k) {
    etcdserverpb::RangeRequest r;
    r.set_key(k);
    etcdserverpb::RangeResponse resp;
    EXPECT_TRUE(applier_->Range(r, &resp).ok());
    if (resp.kvs_size() == 0) return std::nullopt;
    return std::make_pair(resp.kvs(0).value(), resp.kvs(0).mod_revision());
  }

  test::TempDir dir_;
  fs::PosixFileSystem posix_;
  std::unique_ptr<FaultInjectionFileSystem> fault_fs_;
  std::shared_ptr<storage::Env> env_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<apply::Applier> applier_;
  std::unique_ptr<wal::Wal> wal_;
  Metrics metrics_;
  SystemClock clock_;
  std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(PipelineTest, GroupCommitSyncsOncePerBatch) {
  constexpr int kThreads = 16, kPerThread = 50;
  const int64_t syncs_before = fault_fs_->CallCount(FaultOp::kSync);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        PutAndWait("k" + std::to_string(t) + "/" + std::to_string(i), "v");
      }
    });
  }
  for (auto& th : threads) th.join();
  const int64_t syncs = fault_fs_->CallCount(FaultOp::kSync) - syncs_before;
  EXPECT_EQ(store_->current_revision(), 1 + kThreads * kPerThread);
  // Every write was durable before its ack, with far fewer fdatasyncs than writes.
  EXPECT_GT(syncs, 0);
  EXPECT_LT(syncs, kThreads * kPerThread);
  std::printf("%d acknowledged writes, %lld fdatasyncs\n", kThreads * kPerThread,
              static_cast<long long>(syncs));
}

TEST_F(PipelineTest, AcknowledgedWritesSurvivePowerLoss) {
  std::vector<std::pair<std::string, int64_t>> acked;
  for (int i = 0; i < 200; ++i) {
    std::string k = "key" + std::to_string(i);
    acked.emplace_back(k, PutAndWait(k, "value" + std::to_string(i)));
    if (i == 100) ASSERT_TRUE(engine_->Flush().ok());  // half flushed to storage, half only in WAL
  }
  Crash();
  Open();
  for (size_t i = 0; i < acked.size(); ++i) {
    auto got = Get(acked[i].first);
    ASSERT_TRUE(got.has_value()) << acked[i].first << " lost";
    EXPECT_EQ(got->first, "value" + std::to_string(i));
    EXPECT_EQ(got->second, acked[i].second);
  }
  EXPECT_EQ(store_->current_revision(), 201);
  // And it keeps going with the next revision.
  EXPECT_EQ(PutAndWait("after", "crash"), 202);
}

TEST_F(PipelineTest, FsyncFailureIsFailStop) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        fault_fs_->FailNext(FaultOp::kSync, 1);
        PutAndWait("doomed", "v");
      },
      "WAL write failed");
}

}  // namespace
}  // namespace tidemark::server
