#include "testing/fault_injection_fs.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "fs/posix_file_system.h"
#include "testing/temp_dir.h"

namespace tidemark::test {
namespace {

class FaultInjectionFileSystemTest : public ::testing::Test {
 protected:
  FaultInjectionFileSystemTest() : fault_(fs::PosixFileSystem::Default()) {}

  std::string Read(const std::string& path) {
    auto r = fs::ReadFileToString(fs::PosixFileSystem::Default(), path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::string();
  }
  bool Exists(const std::string& path) { return *fs::PosixFileSystem::Default()->Exists(path); }

  std::unique_ptr<fs::WritableFile> Create(const std::string& path) {
    auto f = fault_.NewWritableFile(path);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(*f) : nullptr;
  }

  TempDir dir_;
  FaultInjectionFileSystem fault_;
};

TEST_F(FaultInjectionFileSystemTest, DropKeepsSyncedPrefixOnly) {
  const std::string p = dir_.Join("f");
  auto f = Create(p);
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(f->Append("synced|").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("lost").ok());
  EXPECT_EQ(Read(p), "synced|lost");
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  EXPECT_EQ(Read(p), "synced|");
  // Old handles are stale after the simulated power loss.
  EXPECT_EQ(f->Append("x").code(), Code::kIoError);
}

TEST_F(FaultInjectionFileSystemTest, UnsyncedWritesIntoPreallocatedSpaceReadBackAsZeros) {
  const std::string p = dir_.Join("pre");
  auto f = Create(p);
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Preallocate(1024).ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("defgh").ok());
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  const std::string data = Read(p);
  ASSERT_EQ(data.size(), 1024u);
  EXPECT_EQ(data.substr(0, 3), "abc");
  EXPECT_EQ(data.find_first_not_of('\0', 3), std::string::npos);
}

TEST_F(FaultInjectionFileSystemTest, UnsyncedPreallocationIsLost) {
  const std::string p = dir_.Join("pre2");
  auto f = Create(p);
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Preallocate(4096).ok());
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  EXPECT_EQ(Read(p), "abc");
}

TEST_F(FaultInjectionFileSystemTest, FilesCreatedSinceLastDirSyncDisappear) {
  const std::string kept = dir_.Join("kept");
  const std::string lost = dir_.Join("lost");
  auto a = Create(kept);
  ASSERT_TRUE(a->Sync().ok());
  ASSERT_TRUE(fault_.SyncDir(dir_.path() + "/").ok());  // trailing slash is normalized
  auto b = Create(lost);
  ASSERT_TRUE(b->Append("data").ok());
  ASSERT_TRUE(b->Sync().ok());  // file data synced, but not its directory entry
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  EXPECT_TRUE(Exists(kept));
  EXPECT_FALSE(Exists(lost));
}

TEST_F(FaultInjectionFileSystemTest, RenameWithoutDirSyncIsUndone) {
  const std::string tmp = dir_.Join("x.tmp");
  const std::string final_name = dir_.Join("x");
  auto f = Create(tmp);
  ASSERT_TRUE(f->Append("payload").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(fault_.Rename(tmp, final_name).ok());
  EXPECT_EQ(f->path(), final_name);  // open handles follow the rename
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  EXPECT_TRUE(Exists(tmp));
  EXPECT_FALSE(Exists(final_name));
  EXPECT_EQ(Read(tmp), "payload");
}

TEST_F(FaultInjectionFileSystemTest, CreateRenameWithoutDirSyncLeavesNothing) {
  auto f = Create(dir_.Join("y.tmp"));
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fault_.Rename(dir_.Join("y.tmp"), dir_.Join("y")).ok());
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  EXPECT_FALSE(Exists(dir_.Join("y.tmp")));
  EXPECT_FALSE(Exists(dir_.Join("y")));
}

TEST_F(FaultInjectionFileSystemTest, FailNextFailsExactlyNCalls) {
  const std::string p = dir_.Join("s");
  auto f = Create(p);
  fault_.FailNext(FaultOp::kSync, 2);
  Status s1 = f->Sync();
  EXPECT_EQ(s1.code(), Code::kIoError);
  EXPECT_NE(s1.message().find(p), std::string::npos) << s1.message();
  EXPECT_NE(s1.message().find("sync"), std::string::npos);
  EXPECT_FALSE(f->Sync().ok());
  EXPECT_TRUE(f->Sync().ok());
  EXPECT_EQ(fault_.CallCount(FaultOp::kSync), 3);

  fault_.FailNext(FaultOp::kAppend, 1, Code::kResourceExhausted);
  EXPECT_EQ(f->Append("x").code(), Code::kResourceExhausted);
  EXPECT_TRUE(f->Append("x").ok());

  fault_.FailNext(FaultOp::kAny, 1);
  EXPECT_FALSE(fault_.ListDir(dir_.path()).ok());
  EXPECT_TRUE(fault_.ListDir(dir_.path()).ok());
}

TEST_F(FaultInjectionFileSystemTest, InactiveFileSystemFailsEverything) {
  const std::string p = dir_.Join("off");
  auto f = Create(p);
  ASSERT_TRUE(f->Append("a").ok());
  fault_.SetActive(false);
  EXPECT_FALSE(fault_.IsActive());
  EXPECT_EQ(f->Append("b").code(), Code::kIoError);
  EXPECT_EQ(f->Sync().code(), Code::kIoError);
  EXPECT_FALSE(fault_.NewWritableFile(dir_.Join("other")).ok());
  EXPECT_FALSE(fault_.ListDir(dir_.path()).ok());
  EXPECT_FALSE(fault_.SyncDir(dir_.path()).ok());
  fault_.SetActive(true);
  EXPECT_TRUE(f->Append("c").ok());
  EXPECT_EQ(Read(p), "ac");
}

TEST_F(FaultInjectionFileSystemTest, TearKeepPrefix) {
  const std::string p = dir_.Join("tear");
  auto f = Create(p);
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(f->Append("AAAA").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("BBBB").ok());  // unsynced, kept whole (before the torn write)
  ASSERT_TRUE(f->Append("CCCCCCCC").ok());
  auto last = fault_.LastUnsyncedWrite();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->first, 8u);
  EXPECT_EQ(last->second, 8u);
  ASSERT_TRUE(fault_.TearLastWrite(3, TearMode::kKeepPrefix).ok());
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  EXPECT_EQ(Read(p), "AAAABBBBCCC");
  EXPECT_EQ(fault_.TearLastWrite(1, TearMode::kKeepPrefix).code(), Code::kFailedPrecondition);
}

TEST_F(FaultInjectionFileSystemTest, TearZeroSectorKeepsLaterSectors) {
  const std::string p = dir_.Join("sector");
  auto f = Create(p);
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(f->Append(std::string(100, 'h')).ok());
  ASSERT_TRUE(f->Preallocate(4096).ok());
  ASSERT_TRUE(f->Sync().ok());
  // Spans file offsets [100, 1600): sectors 0 (partial), 1, 2, 3 (partial).
  ASSERT_TRUE(f->Append(std::string(1500, 'x')).ok());
  // Append-offset 500 is file offset 600, in sector [512, 1024).
  ASSERT_TRUE(fault_.TearLastWrite(500, TearMode::kZeroSector).ok());
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  const std::string data = Read(p);
  ASSERT_EQ(data.size(), 4096u);
  EXPECT_EQ(data.substr(0, 100), std::string(100, 'h'));
  EXPECT_EQ(data.substr(100, 412), std::string(412, 'x'));
  EXPECT_EQ(data.substr(512, 512), std::string(512, '\0'));
  EXPECT_EQ(data.substr(1024, 576), std::string(576, 'x'));
  EXPECT_EQ(data.find_first_not_of('\0', 1600), std::string::npos);
}

TEST_F(FaultInjectionFileSystemTest, TruncateIsNotDurableUntilSync) {
  const std::string p = dir_.Join("trunc");
  auto f = Create(p);
  ASSERT_TRUE(fault_.SyncDir(dir_.path()).ok());
  ASSERT_TRUE(f->Append("0123456789").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Truncate(4).ok());
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  // The old length survives; the cut-off part reads back as zeros (model).
  const std::string data = Read(p);
  ASSERT_EQ(data.size(), 10u);
  EXPECT_EQ(data.substr(0, 4), "0123");
}

}  // namespace
}  // namespace tidemark::test
