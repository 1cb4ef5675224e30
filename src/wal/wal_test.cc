// Basic Wal behaviour, run on PosixFileSystem and on
// FaultInjectionFileSystem(Posix).

#include "wal/wal.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fs/path.h"
#include "fs/posix_file_system.h"
#include "testing/fault_injection_fs.h"
#include "testing/temp_dir.h"
#include "wal/format.h"
#include "wal/wal_test_util.h"

namespace tidemark::wal {
namespace {

using testutil::MakeEntry;
using testutil::ReadAll;

enum class Impl { kPosix, kFault };

class WalTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    if (GetParam() == Impl::kFault) {
      fault_ = std::make_unique<test::FaultInjectionFileSystem>(fs::PosixFileSystem::Default());
      fs_ = fault_.get();
    } else {
      fs_ = fs::PosixFileSystem::Default();
    }
    options_.segment_size = 4096;
  }

  std::unique_ptr<Wal> OpenWal() {
    auto w = Wal::Open(fs_, dir_.path(), options_);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(*w) : nullptr;
  }

  void AppendRange(Wal* wal, uint64_t first, uint64_t last, size_t payload = 32) {
    for (uint64_t i = first; i <= last; ++i) {
      Status s = wal->Append(MakeEntry(i, payload));
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }

  void ExpectEntries(const Wal& wal, uint64_t first, uint64_t last, size_t payload = 32) {
    std::vector<Entry> got = ReadAll(wal, first);
    ASSERT_EQ(got.size(), last + 1 - first);
    for (uint64_t i = first; i <= last; ++i) {
      ASSERT_EQ(got[i - first], MakeEntry(i, payload));
    }
  }

  test::TempDir dir_;
  std::unique_ptr<test::FaultInjectionFileSystem> fault_;
  fs::FileSystem* fs_ = nullptr;
  WalOptions options_;
};

TEST_P(WalTest, OpenEmptyCreatesFirstSegment) {
  auto wal = OpenWal();
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->first_index(), 1u);
  EXPECT_EQ(wal->last_index(), 0u);
  EXPECT_EQ(wal->synced_index(), 0u);
  auto segs = wal->Segments();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(fs::Basename(segs[0].path), "0000000000000001-0000000000000001.wal");
  EXPECT_FALSE(segs[0].sealed);
  EXPECT_EQ(segs[0].last_index, 0u);
  EXPECT_EQ(*fs_->FileSize(segs[0].path), options_.segment_size);  // preallocated
  EXPECT_TRUE(ReadAll(*wal, 1).empty());
  EXPECT_FALSE(wal->recovery_info().tail_truncated);
}

TEST_P(WalTest, AppendSyncReopenRoundTrip) {
  {
    auto wal = OpenWal();
    AppendRange(wal.get(), 1, 20);
    EXPECT_EQ(wal->last_index(), 20u);
    EXPECT_EQ(wal->synced_index(), 0u);
    EXPECT_TRUE(ReadAll(*wal, 1).empty());  // nothing durable yet
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_EQ(wal->synced_index(), 20u);
    ExpectEntries(*wal, 1, 20);
    ASSERT_TRUE(wal->Close().ok());
  }
  auto wal = OpenWal();
  EXPECT_EQ(wal->first_index(), 1u);
  EXPECT_EQ(wal->last_index(), 20u);
  EXPECT_EQ(wal->synced_index(), 20u);
  ExpectEntries(*wal, 1, 20);
  ExpectEntries(*wal, 15, 20);
  EXPECT_TRUE(ReadAll(*wal, 21).empty());
  AppendRange(wal.get(), 21, 25);
  ASSERT_TRUE(wal->Sync().ok());
  ExpectEntries(*wal, 1, 25);
}

TEST_P(WalTest, AppendRejectsNonContiguousIndexes) {
  auto wal = OpenWal();
  AppendRange(wal.get(), 1, 3);
  Status s = wal->Append(MakeEntry(5));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("expected 4"), std::string::npos) << s.message();
  EXPECT_EQ(wal->Append(MakeEntry(3)).code(), Code::kInvalidArgument);
  EXPECT_EQ(wal->last_index(), 3u);
  EXPECT_TRUE(wal->health().ok());  // a caller bug does not poison the WAL

  std::vector<Entry> batch = {MakeEntry(4), MakeEntry(5), MakeEntry(7)};
  EXPECT_EQ(wal->AppendBatch(batch).code(), Code::kInvalidArgument);
  EXPECT_EQ(wal->last_index(), 3u);  // nothing of the bad batch was taken
  batch[2] = MakeEntry(6);
  ASSERT_TRUE(wal->AppendBatch(batch).ok());
  ASSERT_TRUE(wal->Sync().ok());
  ExpectEntries(*wal, 1, 6);
}

TEST_P(WalTest, InitialIndexForAnEmptyDirectory) {
  options_.initial_index = 1000;
  {
    auto wal = OpenWal();
    EXPECT_EQ(wal->first_index(), 1000u);
    EXPECT_EQ(wal->last_index(), 999u);
    EXPECT_EQ(wal->Append(MakeEntry(1)).code(), Code::kInvalidArgument);
    AppendRange(wal.get(), 1000, 1010);
    ASSERT_TRUE(wal->Sync().ok());
  }
  options_.initial_index = 1;  // ignored once segments exist
  auto wal = OpenWal();
  EXPECT_EQ(wal->first_index(), 1000u);
  ExpectEntries(*wal, 1000, 1010);
  EXPECT_EQ(wal->ReadFrom(5, [](const Entry&) { return Status::Ok(); }).code(), Code::kOutOfRange);
}

TEST_P(WalTest, RotationAcrossManySegmentsAndReopen) {
  constexpr uint64_t kN = 600;
  {
    auto wal = OpenWal();
    for (uint64_t i = 1; i <= kN; ++i) {
      ASSERT_TRUE(wal->Append(MakeEntry(i, 10 + i % 90)).ok());
      if (i % 7 == 0) {
        ASSERT_TRUE(wal->Sync().ok());
      }
    }
    ASSERT_TRUE(wal->Sync().ok());
    auto segs = wal->Segments();
    EXPECT_GT(segs.size(), 10u);
    uint64_t next = 1;
    for (size_t i = 0; i < segs.size(); ++i) {
      EXPECT_EQ(segs[i].sequence, i + 1);
      EXPECT_EQ(segs[i].first_index, next);
      EXPECT_EQ(segs[i].sealed, i + 1 < segs.size());
      next = segs[i].last_index + 1;
    }
    EXPECT_EQ(next, kN + 1);
  }
  auto wal = OpenWal();
  EXPECT_EQ(wal->last_index(), kN);
  EXPECT_GT(wal->recovery_info().segment_count, 10u);
  std::vector<Entry> got = ReadAll(*wal, 1);
  ASSERT_EQ(got.size(), kN);
  for (uint64_t i = 1; i <= kN; ++i) {
    ASSERT_EQ(got[i - 1], MakeEntry(i, 10 + i % 90));
  }
  // ReadFrom in the middle of a sealed segment.
  got = ReadAll(*wal, 333);
  ASSERT_EQ(got.size(), kN - 332);
  EXPECT_EQ(got.front().index, 333u);
}

TEST_P(WalTest, LargeEntryOvershootsSegmentSize) {
  auto wal = OpenWal();
  ASSERT_TRUE(wal->Append(MakeEntry(1, 10000)).ok());  // > segment_size
  ASSERT_TRUE(wal->Append(MakeEntry(2, 10)).ok());     // goes to a new segment
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(wal->Segments().size(), 2u);
  wal.reset();
  wal = OpenWal();
  std::vector<Entry> got = ReadAll(*wal, 1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], MakeEntry(1, 10000));
  EXPECT_EQ(got[1], MakeEntry(2, 10));
}

TEST_P(WalTest, PayloadLimitIsEnforced) {
  auto wal = OpenWal();
  Entry big = MakeEntry(1, 0);
  big.payload.resize(kMaxEntryPayload + 1);
  EXPECT_EQ(wal->Append(big).code(), Code::kInvalidArgument);
  EXPECT_EQ(wal->last_index(), 0u);
}

TEST_P(WalTest, ReleaseBeforeRemovesWholeOldSegments) {
  auto wal = OpenWal();
  AppendRange(wal.get(), 1, 400, 50);
  ASSERT_TRUE(wal->Sync().ok());
  auto segs = wal->Segments();
  ASSERT_GE(segs.size(), 4u);

  // An index inside segment 2: only segment 1 goes.
  const uint64_t cut = segs[1].first_index + 1;
  ASSERT_TRUE(wal->ReleaseBefore(cut).ok());
  EXPECT_EQ(wal->first_index(), segs[1].first_index);
  EXPECT_EQ(wal->Segments().size(), segs.size() - 1);
  EXPECT_EQ(*fs_->Exists(segs[0].path), false);
  EXPECT_EQ(*fs_->Exists(segs[1].path), true);
  EXPECT_EQ(wal->ReadFrom(1, [](const Entry&) { return Status::Ok(); }).code(), Code::kOutOfRange);
  ExpectEntries(*wal, segs[1].first_index, 400, 50);

  // Far beyond the end: everything but the active segment goes.
  ASSERT_TRUE(wal->ReleaseBefore(1'000'000).ok());
  ASSERT_EQ(wal->Segments().size(), 1u);
  EXPECT_EQ(wal->first_index(), segs.back().first_index);
  ExpectEntries(*wal, wal->first_index(), 400, 50);

  wal.reset();
  wal = OpenWal();
  EXPECT_EQ(wal->first_index(), segs.back().first_index);
  EXPECT_EQ(wal->last_index(), 400u);
  AppendRange(wal.get(), 401, 410, 50);
  ASSERT_TRUE(wal->Sync().ok());
  ExpectEntries(*wal, wal->first_index(), 410, 50);
}

TEST_P(WalTest, SecondOpenOfSameDirectoryIsRefused) {
  auto wal = OpenWal();
  auto second = Wal::Open(fs_, dir_.path(), options_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find(fs::JoinPath(dir_.path(), "LOCK")), std::string::npos);
}

TEST_P(WalTest, ReadFromStopsOnCallbackError) {
  auto wal = OpenWal();
  AppendRange(wal.get(), 1, 10);
  ASSERT_TRUE(wal->Sync().ok());
  int calls = 0;
  Status s = wal->ReadFrom(1, [&calls](const Entry& e) {
    ++calls;
    return e.index == 4 ? Status(Code::kAborted, "stop") : Status::Ok();
  });
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(calls, 4);
}

TEST_P(WalTest, CloseThenWritesFail) {
  auto wal = OpenWal();
  AppendRange(wal.get(), 1, 3);
  ASSERT_TRUE(wal->Close().ok());
  EXPECT_EQ(wal->synced_index(), 3u);
  EXPECT_EQ(wal->Append(MakeEntry(4)).code(), Code::kFailedPrecondition);
  EXPECT_TRUE(wal->Close().ok());
  ExpectEntries(*wal, 1, 3);  // reads still work
}

TEST_P(WalTest, ReaderThreadSeesOnlyDurablePrefixWhileWriterAppends) {
  auto wal = OpenWal();
  constexpr uint64_t kN = 2000;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      const uint64_t synced_before = wal->synced_index();
      uint64_t expected = 1;
      Status s = wal->ReadFrom(1, [&](const Entry& e) {
        if (e != MakeEntry(expected, 20)) {
          bad.fetch_add(1);
        }
        ++expected;
        return Status::Ok();
      });
      if (!s.ok() || expected - 1 < synced_before || expected - 1 > wal->synced_index()) {
        bad.fetch_add(1);
      }
      (void)wal->Segments();
      (void)wal->last_index();
    }
  });
  for (uint64_t i = 1; i <= kN; ++i) {
    ASSERT_TRUE(wal->Append(MakeEntry(i, 20)).ok());
    if (i % 50 == 0) {
      ASSERT_TRUE(wal->Sync().ok());
    }
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(WalTest, SegmentsReportIndexRanges) {
  auto wal = OpenWal();
  AppendRange(wal.get(), 1, 150, 40);
  auto segs = wal->Segments();
  ASSERT_GE(segs.size(), 2u);
  EXPECT_EQ(segs.front().first_index, 1u);
  EXPECT_EQ(segs.back().last_index, 150u);  // includes unsynced entries
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    EXPECT_TRUE(segs[i].sealed);
    EXPECT_EQ(segs[i].last_index + 1, segs[i + 1].first_index);
    auto parsed = ParseSegmentFileName(fs::Basename(segs[i].path));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->first_index, segs[i].first_index);
  }
}

INSTANTIATE_TEST_SUITE_P(Impls, WalTest, ::testing::Values(Impl::kPosix, Impl::kFault),
                         [](const ::testing::TestParamInfo<Impl>& info) {
                           return info.param == Impl::kPosix ? "Posix" : "FaultInjection";
                         });

TEST(WalOptionsTest, InvalidOptionsAreRejected) {
  test::TempDir dir;
  WalOptions o;
  o.initial_index = 0;
  EXPECT_EQ(Wal::Open(fs::PosixFileSystem::Default(), dir.path(), o).status().code(),
            Code::kInvalidArgument);
  o.initial_index = 1;
  o.segment_size = 10;
  EXPECT_EQ(Wal::Open(fs::PosixFileSystem::Default(), dir.path(), o).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Wal::Open(nullptr, dir.path(), {}).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tidemark::wal
