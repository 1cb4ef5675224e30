// Power-loss and I/O-failure tests through FaultInjectionFileSystem:
// do work -> power off -> DropUnsyncedData (optionally tearing the last
// write) -> reopen -> the recovered log is a prefix of what was appended that
// contains everything that was synced.

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fs/path.h"
#include "fs/posix_file_system.h"
#include "testing/fault_injection_fs.h"
#include "testing/temp_dir.h"
#include "wal/format.h"
#include "wal/wal.h"
#include "wal/wal_test_util.h"

namespace tidemark::wal {
namespace {

using test::FaultInjectionFileSystem;
using test::FaultOp;
using test::TearMode;
using testutil::MakeEntry;
using testutil::ReadAll;

class WalPowerLossTest : public ::testing::Test {
 protected:
  WalPowerLossTest()
      : fault_(fs::PosixFileSystem::Default(),
               test::FaultInjectionOptions{.forward_syncs = false}) {
    options_.segment_size = uint64_t{64} * 1024;
  }

  std::unique_ptr<Wal> OpenWal(const std::string& sub = "wal") {
    auto w = Wal::Open(&fault_, dir_.Join(sub), options_);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(*w) : nullptr;
  }

  // Power off, drop the WAL object (its handles die), lose unsynced data
  // (after `tear`, if given), power on.
  void PowerLoss(std::unique_ptr<Wal>* wal, const std::function<void()>& tear = nullptr) {
    fault_.SetActive(false);
    wal->reset();
    if (tear) {
      tear();
    }
    ASSERT_TRUE(fault_.DropUnsyncedData().ok());
    fault_.ClearFailures();
    fault_.SetActive(true);
  }

  // The recovered log holds exactly [1, last], each entry as appended.
  void ExpectPrefix(const Wal& wal, uint64_t min_last, uint64_t max_last, size_t payload) {
    EXPECT_GE(wal.last_index(), min_last);
    EXPECT_LE(wal.last_index(), max_last);
    std::vector<Entry> got = ReadAll(wal, 1);
    ASSERT_EQ(got.size(), wal.last_index());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], MakeEntry(i + 1, payload));
    }
  }

  test::TempDir dir_;
  FaultInjectionFileSystem fault_;
  WalOptions options_;
};

TEST_F(WalPowerLossTest, SyncedEntriesSurviveUnsyncedOnesAreDropped) {
  auto wal = OpenWal();
  for (uint64_t i = 1; i <= 50; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i, 100)).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
  for (uint64_t i = 51; i <= 80; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i, 100)).ok());
  }
  ASSERT_TRUE(wal->Flush().ok());  // in the "kernel", not on "disk"
  for (uint64_t i = 81; i <= 90; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i, 100)).ok());
  }
  PowerLoss(&wal);
  wal = OpenWal();
  ExpectPrefix(*wal, 50, 50, 100);
  EXPECT_FALSE(wal->recovery_info().tail_truncated);  // lost data reads back as zeros
  // Life goes on from index 51.
  ASSERT_TRUE(wal->Append(MakeEntry(51, 100)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  PowerLoss(&wal);
  wal = OpenWal();
  ExpectPrefix(*wal, 51, 51, 100);
}

TEST_F(WalPowerLossTest, NewWalWithoutAnySyncSurvivesPowerLoss) {
  auto wal = OpenWal();
  for (uint64_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i)).ok());
  }
  ASSERT_TRUE(wal->Flush().ok());
  PowerLoss(&wal);
  wal = OpenWal();
  ExpectPrefix(*wal, 0, 0, 32);
}

TEST_F(WalPowerLossTest, TornPrefixAtEverySectorBoundary) {
  // Sync 1..20, then write 21..45 in one append and keep a sector-aligned
  // prefix of it: the log must end somewhere in [20, 45], intact.
  for (uint64_t boundary = 0;; ++boundary) {
    const std::string sub = "prefix" + std::to_string(boundary);
    auto wal = OpenWal(sub);
    for (uint64_t i = 1; i <= 20; ++i) {
      ASSERT_TRUE(wal->Append(MakeEntry(i, 150)).ok());
    }
    ASSERT_TRUE(wal->Sync().ok());
    for (uint64_t i = 21; i <= 45; ++i) {
      ASSERT_TRUE(wal->Append(MakeEntry(i, 150)).ok());
    }
    ASSERT_TRUE(wal->Flush().ok());
    auto last = fault_.LastUnsyncedWrite();
    ASSERT_TRUE(last.has_value());
    // (No structured bindings: clang 14 cannot capture them in lambdas.)
    const uint64_t off = last->first;
    const uint64_t len = last->second;
    const uint64_t first_sector_end = (off / test::kSectorSize + 1) * test::kSectorSize;
    const uint64_t keep_end = first_sector_end + boundary * test::kSectorSize;
    if (keep_end >= off + len) {
      break;
    }
    PowerLoss(&wal, [&] {
      ASSERT_TRUE(fault_.TearLastWrite(keep_end - off, TearMode::kKeepPrefix).ok());
    });
    wal = OpenWal(sub);
    SCOPED_TRACE("keep_end=" + std::to_string(keep_end));
    ExpectPrefix(*wal, 20, 45, 150);
    // Everything wholly before the tear point is there.
    const uint64_t complete = (keep_end - kSegmentHeaderSize) / EntryRecordSize(150);
    EXPECT_EQ(wal->last_index(), complete);
  }
}

TEST_F(WalPowerLossTest, ZeroedSectorAnywhereInTheLastWrite) {
  for (uint64_t hit = 0;; hit += 301) {
    const std::string sub = "sector" + std::to_string(hit);
    auto wal = OpenWal(sub);
    for (uint64_t i = 1; i <= 10; ++i) {
      ASSERT_TRUE(wal->Append(MakeEntry(i, 700)).ok());
    }
    ASSERT_TRUE(wal->Sync().ok());
    for (uint64_t i = 11; i <= 30; ++i) {
      ASSERT_TRUE(wal->Append(MakeEntry(i, 700)).ok());
    }
    ASSERT_TRUE(wal->Flush().ok());
    const auto last = fault_.LastUnsyncedWrite();
    ASSERT_TRUE(last.has_value());
    const uint64_t off = last->first;
    const uint64_t len = last->second;
    if (hit >= len) {
      break;
    }
    PowerLoss(&wal, [&] { ASSERT_TRUE(fault_.TearLastWrite(hit, TearMode::kZeroSector).ok()); });
    wal = OpenWal(sub);
    SCOPED_TRACE("hit=" + std::to_string(hit));
    ExpectPrefix(*wal, 10, 30, 700);
    // The record holding the zeroed sector and everything after it are gone.
    const uint64_t zeroed = std::max(off, (off + hit) / test::kSectorSize * test::kSectorSize);
    const uint64_t hit_record = (zeroed - kSegmentHeaderSize) / EntryRecordSize(700) + 1;
    EXPECT_LT(wal->last_index(), hit_record);
  }
}

TEST_F(WalPowerLossTest, SyncFailurePoisonsTheWal) {
  auto wal = OpenWal();
  for (uint64_t i = 1; i <= 10; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i)).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
  for (uint64_t i = 11; i <= 20; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i)).ok());
  }
  const int64_t syncs_before = fault_.CallCount(FaultOp::kSync);
  fault_.FailNext(FaultOp::kSync, 1);
  const Status failed = wal->Sync();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), Code::kIoError);
  EXPECT_NE(failed.message().find("poisoned"), std::string::npos) << failed.message();
  EXPECT_EQ(wal->synced_index(), 10u);
  // The file system works again, but the WAL never retries: same error forever.
  EXPECT_EQ(wal->Sync(), failed);
  EXPECT_EQ(wal->Append(MakeEntry(21)), failed);
  EXPECT_EQ(wal->Flush(), failed);
  EXPECT_EQ(wal->Close(), failed);
  EXPECT_EQ(wal->health(), failed);
  EXPECT_EQ(fault_.CallCount(FaultOp::kSync) - syncs_before, 1);  // never a second attempt
  // Readers still see the durable prefix.
  EXPECT_EQ(ReadAll(*wal, 1).size(), 10u);
  PowerLoss(&wal);
  wal = OpenWal();
  ExpectPrefix(*wal, 10, 10, 32);
}

TEST_F(WalPowerLossTest, WriteFailurePoisonsTheWal) {
  auto wal = OpenWal();
  ASSERT_TRUE(wal->Append(MakeEntry(1)).ok());
  fault_.FailNext(FaultOp::kAppend, 1, Code::kResourceExhausted);
  const Status failed = wal->Sync();
  EXPECT_EQ(failed.code(), Code::kResourceExhausted);
  EXPECT_EQ(wal->Append(MakeEntry(2)), failed);
  EXPECT_EQ(wal->Sync(), failed);
}

TEST_F(WalPowerLossTest, OneFdatasyncPerSyncForAWholeBatch) {
  auto wal = OpenWal();
  const int64_t before = fault_.CallCount(FaultOp::kSync);
  std::vector<Entry> batch;
  for (uint64_t i = 1; i <= 200; ++i) {
    batch.push_back(MakeEntry(i, 64));
  }
  ASSERT_TRUE(wal->AppendBatch(batch).ok());
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(fault_.CallCount(FaultOp::kSync) - before, 1);
  ASSERT_TRUE(wal->Sync().ok());  // nothing new: no fdatasync
  EXPECT_EQ(fault_.CallCount(FaultOp::kSync) - before, 1);
  EXPECT_EQ(wal->synced_index(), 200u);
}

TEST_F(WalPowerLossTest, PowerLossMidRotationLosesNothingSynced) {
  options_.segment_size = 2048;
  for (FaultOp op :
       {FaultOp::kNewWritableFile, FaultOp::kPreallocate, FaultOp::kRename, FaultOp::kSyncDir}) {
    const std::string sub = std::string("rot-") + test::FaultOpName(op);
    auto wal = OpenWal(sub);
    // Fill the first segment up to the point where the next append rotates.
    uint64_t i = 1;
    while (kSegmentHeaderSize + (i - 1) * EntryRecordSize(100) < options_.segment_size) {
      ASSERT_TRUE(wal->Append(MakeEntry(i++, 100)).ok());
    }
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_EQ(wal->Segments().size(), 1u);
    const uint64_t synced = wal->synced_index();
    fault_.FailNext(op, 1);
    const Status s = wal->Append(MakeEntry(i, 100));
    ASSERT_FALSE(s.ok()) << test::FaultOpName(op);
    EXPECT_EQ(wal->health(), s);
    // Rotation synced the full segment before failing to create the next.
    EXPECT_EQ(wal->synced_index(), synced);
    PowerLoss(&wal);
    wal = OpenWal(sub);
    SCOPED_TRACE(test::FaultOpName(op));
    ExpectPrefix(*wal, synced, synced, 100);
    ASSERT_TRUE(wal->Append(MakeEntry(synced + 1, 100)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_EQ(wal->Segments().size(), 2u);
  }
}

TEST_F(WalPowerLossTest, NewSegmentsAreDurableAfterRotation) {
  options_.segment_size = 2048;
  auto wal = OpenWal();
  for (uint64_t i = 1; i <= 100; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i, 100)).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
  const size_t segments = wal->Segments().size();
  ASSERT_GT(segments, 3u);
  PowerLoss(&wal);
  wal = OpenWal();
  EXPECT_EQ(wal->Segments().size(), segments);
  ExpectPrefix(*wal, 100, 100, 100);
}

TEST_F(WalPowerLossTest, ReleaseBeforeThenPowerLoss) {
  options_.segment_size = 2048;
  auto wal = OpenWal();
  for (uint64_t i = 1; i <= 100; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i, 100)).ok());
  }
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->ReleaseBefore(50).ok());
  const uint64_t first = wal->first_index();
  EXPECT_GT(first, 1u);
  EXPECT_LE(first, 50u);
  PowerLoss(&wal);
  wal = OpenWal();
  EXPECT_EQ(wal->first_index(), first);
  EXPECT_EQ(wal->last_index(), 100u);
  EXPECT_EQ(ReadAll(*wal, first).size(), 101 - first);
}

// Many crash/recover cycles with random appends, syncs, flushes, releases,
// injected failures and tear modes. Replay with TM_TEST_SEED=<seed>.
TEST_F(WalPowerLossTest, RandomizedPowerLossLoop) {
  const uint64_t seed = testutil::TestSeed();
  SCOPED_TRACE("TM_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&rng](uint64_t n) {
    return n == 0 ? 0 : rng() % n;
  };

  std::map<uint64_t, Entry> model;  // index -> last entry appended at that index
  uint64_t durable = 0;             // every index <= durable must survive
  uint64_t appended = 0;            // highest index ever appended since last recovery
  constexpr int kIterations = 300;
  int truncated_tails = 0;  // recoveries that cut a torn tail
  int beyond_durable = 0;   // recoveries that kept unsynced entries (torn writes)
  int poisoned = 0;         // iterations that ended with a poisoned WAL
  constexpr uint64_t kSegmentSizes[] = {1024, 4096, 16384};

  for (int iter = 0; iter < kIterations; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    options_.segment_size = kSegmentSizes[pick(3)];
    auto wal = OpenWal();
    ASSERT_NE(wal, nullptr);

    // Check: durable <= last <= appended, contents match the model.
    const uint64_t last = wal->last_index();
    ASSERT_GE(last, durable);
    ASSERT_LE(last, std::max(appended, durable));
    std::vector<Entry> got = ReadAll(*wal, wal->first_index());
    ASSERT_EQ(got.size(), last + 1 - wal->first_index());
    for (const Entry& e : got) {
      auto it = model.find(e.index);
      ASSERT_NE(it, model.end()) << "index " << e.index;
      ASSERT_EQ(e, it->second) << "index " << e.index;
    }
    model.erase(model.upper_bound(last), model.end());
    if (wal->recovery_info().tail_truncated) {
      ++truncated_tails;
    }
    if (last > durable) {
      ++beyond_durable;
    }
    durable = last;  // Open synced the recovered tail
    appended = last;

    const int ops = 1 + static_cast<int>(pick(25));
    bool armed = false;  // a failure was injected in this iteration
    for (int op = 0; op < ops && wal->health().ok(); ++op) {
      const uint64_t r = pick(100);
      if (r < 60) {
        std::vector<Entry> batch;
        const uint64_t n = 1 + pick(8);
        for (uint64_t k = 0; k < n; ++k) {
          const size_t size = pick(10) == 0 ? 1000 + pick(3000) : pick(400);
          batch.push_back(MakeEntry(wal->last_index() + 1 + k, size, iter));
        }
        // On an injected fault part of the batch may already be in (even
        // durable: rotation syncs before it creates the next segment).
        const Status s = wal->AppendBatch(batch);
        for (const Entry& e : batch) {
          if (e.index <= wal->last_index()) {
            model[e.index] = e;
          }
        }
        appended = wal->last_index();
        if (!s.ok()) {
          break;
        }
      } else if (r < 80) {
        if (wal->Sync().ok()) {
          durable = wal->synced_index();
        }
      } else if (r < 88) {
        (void)wal->Flush().ok();
      } else if (r < 93) {
        const uint64_t upto =
            wal->first_index() + pick(wal->synced_index() + 2 - wal->first_index());
        const Status s = wal->ReleaseBefore(upto);
        ASSERT_TRUE(s.ok() || armed) << s.ToString();
      } else if (!armed && pick(4) == 0) {
        constexpr FaultOp kOps[] = {FaultOp::kSync, FaultOp::kAppend, FaultOp::kRename,
                                    FaultOp::kSyncDir, FaultOp::kNewWritableFile};
        fault_.FailNext(kOps[pick(5)], 1);
        armed = true;
      }
      durable = std::max(durable, wal->synced_index());
    }
    // Often end with data in flight (handed to the kernel, not synced), so
    // the tear modes have something to tear.
    if (wal->health().ok() && pick(2) == 0) {
      std::vector<Entry> batch;
      for (uint64_t k = 0, n = 1 + pick(20); k < n; ++k) {
        batch.push_back(MakeEntry(wal->last_index() + 1 + k, pick(1500), iter));
      }
      const Status s = wal->AppendBatch(batch);
      for (const Entry& e : batch) {
        if (e.index <= wal->last_index()) {
          model[e.index] = e;
        }
      }
      appended = wal->last_index();
      if (s.ok()) {
        (void)wal->Flush().ok();
      }
    }
    if (!wal->health().ok()) {
      ++poisoned;
    }
    // Whatever rotation made durable must survive as well.
    durable = std::max(durable, wal->synced_index());

    const uint64_t mode = pick(3);
    PowerLoss(&wal, [&] {
      auto w = fault_.LastUnsyncedWrite();
      if (!w || mode == 0) {
        return;
      }
      const uint64_t off = w->first;
      const uint64_t len = w->second;
      if (mode == 1) {
        // Keep a sector-aligned prefix (devices write whole sectors).
        const uint64_t cut = off + pick(len + 1);
        const uint64_t aligned =
            (cut + test::kSectorSize - 1) / test::kSectorSize * test::kSectorSize;
        ASSERT_TRUE(fault_.TearLastWrite(std::min(len, aligned - off), TearMode::kKeepPrefix).ok());
      } else {
        ASSERT_TRUE(fault_.TearLastWrite(pick(len), TearMode::kZeroSector).ok());
      }
    });
  }
  std::printf(
      "[ stats    ] %d iterations: %d torn tails truncated, %d recoveries kept unsynced "
      "entries, %d poisoned by injected faults\n",
      kIterations, truncated_tails, beyond_durable, poisoned);
}

}  // namespace
}  // namespace tidemark::wal
