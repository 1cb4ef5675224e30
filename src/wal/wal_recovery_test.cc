// Wal::Open recovery rules: torn tails of the last segment are truncated and
// reported; every other kind of damage refuses to open, naming file + offset.

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "fs/path.h"
#include "fs/posix_file_system.h"
#include "testing/temp_dir.h"
#include "wal/format.h"
#include "wal/wal.h"
#include "wal/wal_test_util.h"

namespace tidemark::wal {
namespace {

using testutil::MakeEntry;
using testutil::PokeFile;
using testutil::ReadAll;

class WalRecoveryTest : public ::testing::Test {
 protected:
  WalRecoveryTest() {
    options_.segment_size = uint64_t{64} * 1024;
    options_.log = [this](const std::string& m) {
      log_.push_back(m);
    };
  }

  fs::FileSystem* fs() { return fs::PosixFileSystem::Default(); }

  Result<std::unique_ptr<Wal>> TryOpen() { return Wal::Open(fs(), dir_.path(), options_); }
  std::unique_ptr<Wal> OpenWal() {
    auto w = TryOpen();
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(*w) : nullptr;
  }

  // Writes and syncs entries [1, n] with `payload`-byte payloads; returns the
  // segment paths.
  std::vector<std::string> Write(uint64_t n, size_t payload) {
    auto wal = OpenWal();
    for (uint64_t i = 1; i <= n; ++i) {
      EXPECT_TRUE(wal->Append(MakeEntry(i, payload)).ok());
    }
    EXPECT_TRUE(wal->Close().ok());
    std::vector<std::string> paths;
    for (const SegmentInfo& s : wal->Segments()) {
      paths.push_back(s.path);
    }
    return paths;
  }

  // File offset of entry `i` in the first segment, all payloads `payload` bytes.
  static uint64_t OffsetOf(uint64_t i, size_t payload) {
    return kSegmentHeaderSize + (i - 1) * EntryRecordSize(payload);
  }

  void Truncate(const std::string& path, uint64_t size) {
    auto f = fs()->ReopenWritableFile(path, 0);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(size).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  void ExpectEntries(const Wal& wal, uint64_t last, size_t payload) {
    std::vector<Entry> got = ReadAll(wal, wal.first_index());
    ASSERT_EQ(got.size(), last + 1 - wal.first_index());
    for (const Entry& e : got) {
      ASSERT_EQ(e, MakeEntry(e.index, payload));
    }
  }

  test::TempDir dir_;
  WalOptions options_;
  std::vector<std::string> log_;
};

TEST_F(WalRecoveryTest, RecordCutByEndOfFileIsTruncatedAndReported) {
  const auto paths = Write(10, 100);
  ASSERT_EQ(paths.size(), 1u);
  Truncate(paths[0], OffsetOf(10, 100) + 50);  // mid-record: length claims past EOF
  auto wal = OpenWal();
  EXPECT_EQ(wal->last_index(), 9u);
  const RecoveryInfo& info = wal->recovery_info();
  EXPECT_TRUE(info.tail_truncated);
  EXPECT_EQ(info.tail_file, fs::Basename(paths[0]));
  EXPECT_EQ(info.tail_offset, OffsetOf(10, 100));
  EXPECT_NE(info.tail_reason.find("past the end of the file"), std::string::npos);
  EXPECT_EQ(info.discarded_bytes, 50u);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_NE(log_[0].find(fs::Basename(paths[0])), std::string::npos) << log_[0];
  EXPECT_NE(log_[0].find("offset " + std::to_string(OffsetOf(10, 100))), std::string::npos);
  // The segment is preallocated again and appends continue at index 10.
  EXPECT_EQ(*fs()->FileSize(paths[0]), options_.segment_size);
  ASSERT_TRUE(wal->Append(MakeEntry(10, 100)).ok());
  ASSERT_TRUE(wal->Close().ok());
  wal.reset();
  wal = OpenWal();
  EXPECT_FALSE(wal->recovery_info().tail_truncated);
  ExpectEntries(*wal, 10, 100);
}

TEST_F(WalRecoveryTest, ZeroedSectorInLastRecordIsTruncated) {
  const auto paths = Write(5, 2000);
  const uint64_t sector = (OffsetOf(5, 2000) / 512 + 2) * 512;
  PokeFile(fs(), paths[0], sector, std::string(512, '\0'));
  auto wal = OpenWal();
  EXPECT_EQ(wal->last_index(), 4u);
  EXPECT_TRUE(wal->recovery_info().tail_truncated);
  EXPECT_EQ(wal->recovery_info().tail_offset, OffsetOf(5, 2000));
  EXPECT_NE(wal->recovery_info().tail_reason.find("zeroed 512-byte sector"), std::string::npos);
  ExpectEntries(*wal, 4, 2000);
}

TEST_F(WalRecoveryTest, ZeroedSectorEarlierInLastSegmentCutsEverythingAfterIt) {
  // etcd's rule: a checksum failure with a zeroed sector in the last segment
  // is a torn write, so the log ends before that record.
  const auto paths = Write(6, 2000);
  const uint64_t sector = (OffsetOf(3, 2000) / 512 + 1) * 512;
  PokeFile(fs(), paths[0], sector, std::string(512, '\0'));
  auto wal = OpenWal();
  EXPECT_EQ(wal->last_index(), 2u);
  EXPECT_EQ(wal->recovery_info().tail_offset, OffsetOf(3, 2000));
  EXPECT_EQ(wal->recovery_info().discarded_bytes, OffsetOf(7, 2000) - OffsetOf(3, 2000));
  // The discarded records are really gone from the file (zero-filled).
  const std::string bytes = testutil::ReadBytes(fs(), paths[0]);
  EXPECT_EQ(bytes.find_first_not_of('\0', OffsetOf(3, 2000)), std::string::npos);
}

TEST_F(WalRecoveryTest, LeftoversAfterZeroHeaderAreWipedSoLaterAppendsStayReadable) {
  // A torn write whose first sector (holding a record header) was lost while
  // later sectors reached the disk.
  const auto paths = Write(5, 100);
  const uint64_t end = OffsetOf(6, 100);
  PokeFile(fs(), paths[0], end + 700, std::string(300, 'G'));
  {
    auto wal = OpenWal();
    EXPECT_EQ(wal->last_index(), 5u);
    EXPECT_TRUE(wal->recovery_info().tail_truncated);
    EXPECT_EQ(wal->recovery_info().tail_offset, end);
    EXPECT_NE(wal->recovery_info().tail_reason.find("followed by non-zero data"),
              std::string::npos);
    // Write fewer bytes than the garbage span: without wiping, the garbage
    // would follow these records and the next Open would fail.
    ASSERT_TRUE(wal->Append(MakeEntry(6, 100)).ok());
    ASSERT_TRUE(wal->Close().ok());
  }
  auto wal = OpenWal();
  EXPECT_FALSE(wal->recovery_info().tail_truncated);
  ExpectEntries(*wal, 6, 100);
}

TEST_F(WalRecoveryTest, ChecksumMismatchInMiddleOfLastSegmentRefusesToOpen) {
  const auto paths = Write(8, 100);
  PokeFile(fs(), paths[0], OffsetOf(3, 100) + kRecordHeaderSize + 40, "X");
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_EQ(wal.status().message(), "wal: checksum mismatch in " +
                                        std::string(fs::Basename(paths[0])) + " at offset " +
                                        std::to_string(OffsetOf(3, 100)));
}

TEST_F(WalRecoveryTest, ChecksumMismatchInLastRecordWithoutZeroSectorIsCorruption) {
  // Not a torn write (no zeroed sector): bit rot in the newest record must
  // not silently drop an acknowledged entry.
  const auto paths = Write(4, 100);
  PokeFile(fs(), paths[0], OffsetOf(4, 100) + kRecordHeaderSize + 2, "\xee");
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("at offset " + std::to_string(OffsetOf(4, 100))),
            std::string::npos);
}

TEST_F(WalRecoveryTest, CorruptionInEarlierSegmentRefusesToOpen) {
  options_.segment_size = 4096;
  const auto paths = Write(300, 60);
  ASSERT_GE(paths.size(), 3u);
  const uint64_t off = OffsetOf(5, 60);
  PokeFile(fs(), paths[0], off + kRecordHeaderSize + 30, "#");
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_EQ(wal.status().message(), "wal: checksum mismatch in " +
                                        std::string(fs::Basename(paths[0])) + " at offset " +
                                        std::to_string(off));
}

TEST_F(WalRecoveryTest, TornRecordInSealedSegmentIsCorruption) {
  options_.segment_size = 8192;
  const auto paths = Write(20, 2000);
  ASSERT_GE(paths.size(), 2u);
  const uint64_t sector = (OffsetOf(2, 2000) / 512 + 1) * 512;
  PokeFile(fs(), paths[0], sector, std::string(512, '\0'));
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("torn record"), std::string::npos);
  EXPECT_NE(wal.status().message().find(std::string(fs::Basename(paths[0])) + " at offset " +
                                        std::to_string(OffsetOf(2, 2000))),
            std::string::npos)
      << wal.status().message();
}

TEST_F(WalRecoveryTest, TruncatedSealedSegmentIsAnIndexGap) {
  options_.segment_size = 4096;
  const auto paths = Write(200, 60);
  ASSERT_GE(paths.size(), 3u);
  // Cut the first segment cleanly at a record boundary: its records are all
  // valid, but its successor starts later than it ends.
  Truncate(paths[0], OffsetOf(10, 60));
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("index gap"), std::string::npos) << wal.status().message();
}

TEST_F(WalRecoveryTest, MissingMiddleSegmentIsAnIndexGap) {
  options_.segment_size = 4096;
  const auto paths = Write(300, 60);
  ASSERT_GE(paths.size(), 3u);
  ASSERT_TRUE(fs()->Remove(paths[1]).ok());
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("index gap between " + std::string(fs::Basename(paths[0])) +
                                        " and " + std::string(fs::Basename(paths[2]))),
            std::string::npos)
      << wal.status().message();
}

TEST_F(WalRecoveryTest, DataAfterLastRecordOfSealedSegmentIsCorruption) {
  options_.segment_size = 4096;
  const auto paths = Write(300, 60);
  ASSERT_GE(paths.size(), 2u);
  // Rotation lets the last record overshoot the preallocated size, so a
  // sealed segment ends right after its last record; add a zero gap + junk.
  const uint64_t size = *fs()->FileSize(paths[0]);
  PokeFile(fs(), paths[0], size, std::string(100, '\0') + "junk");
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("unexpected data"), std::string::npos);
}

TEST_F(WalRecoveryTest, IndexDiscontinuityInsideSegmentIsCorruption) {
  SegmentHeader h;
  h.sequence = 1;
  h.first_index = 1;
  std::string bytes = EncodeSegmentHeader(h);
  AppendEntryRecord(&bytes, MakeEntry(1));
  AppendEntryRecord(&bytes, MakeEntry(2));
  const uint64_t bad = bytes.size();
  AppendEntryRecord(&bytes, MakeEntry(4));
  const std::string path = dir_.Join(SegmentFileName(1, 1));
  auto f = fs()->NewWritableFile(path);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(bytes).ok());
  ASSERT_TRUE((*f)->Close().ok());
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("index discontinuity in " + SegmentFileName(1, 1) +
                                        " at offset " + std::to_string(bad)),
            std::string::npos)
      << wal.status().message();
}

TEST_F(WalRecoveryTest, NameThatDisagreesWithHeaderIsCorruption) {
  const auto paths = Write(3, 10);
  ASSERT_TRUE(fs()->Rename(paths[0], dir_.Join(SegmentFileName(1, 7))).ok());
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kCorruption);
  EXPECT_NE(wal.status().message().find("does not match its name"), std::string::npos);
}

TEST_F(WalRecoveryTest, SegmentFromNewerFormatVersionIsRefused) {
  const auto paths = Write(3, 10);
  std::string version(4, '\0');
  EncodeFixed32(version.data(), kFormatVersion + 1);
  PokeFile(fs(), paths[0], 8, version);
  auto wal = TryOpen();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), Code::kFailedPrecondition);
}

TEST_F(WalRecoveryTest, LeftoverTempSegmentIsRemoved) {
  Write(3, 10);
  const std::string tmp = dir_.Join("0000000000000002-0000000000000004.wal.tmp");
  auto f = fs()->NewWritableFile(tmp);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("partial header").ok());
  ASSERT_TRUE((*f)->Close().ok());
  auto wal = OpenWal();
  EXPECT_EQ(wal->last_index(), 3u);
  EXPECT_EQ(*fs()->Exists(tmp), false);
  ASSERT_EQ(wal->recovery_info().removed_temp_files.size(), 1u);
  EXPECT_EQ(wal->recovery_info().removed_temp_files[0], fs::Basename(tmp));
}

TEST_F(WalRecoveryTest, UnrelatedFilesAreIgnored) {
  Write(3, 10);
  auto f = fs()->NewWritableFile(dir_.Join("README"));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Close().ok());
  auto wal = OpenWal();
  EXPECT_EQ(wal->last_index(), 3u);
}

}  // namespace
}  // namespace tidemark::wal
