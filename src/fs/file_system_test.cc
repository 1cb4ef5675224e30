// The fs::FileSystem contract, run against PosixFileSystem and against
// FaultInjectionFileSystem(Posix) so the fake cannot drift from the real thing.

#include "fs/file_system.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fs/path.h"
#include "fs/posix_file_system.h"
#include "testing/fault_injection_fs.h"
#include "testing/temp_dir.h"

namespace tidemark::fs {
namespace {

enum class Impl { kPosix, kFault };

class FileSystemTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    if (GetParam() == Impl::kFault) {
      fault_ = std::make_unique<test::FaultInjectionFileSystem>(PosixFileSystem::Default());
      fs_ = fault_.get();
    } else {
      fs_ = PosixFileSystem::Default();
    }
  }

  std::string Path(const std::string& name) const { return dir_.Join(name); }

  void WriteFile(const std::string& path, const std::string& data) {
    auto f = fs_->NewWritableFile(path);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Append(data).ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  std::string ReadAll(const std::string& path) {
    auto r = ReadFileToString(fs_, path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::string();
  }

  test::TempDir dir_;
  std::unique_ptr<test::FaultInjectionFileSystem> fault_;
  FileSystem* fs_ = nullptr;
};

TEST_P(FileSystemTest, WriteReadRoundTrip) {
  const std::string p = Path("a");
  auto f = fs_->NewWritableFile(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->offset(), 0u);
  EXPECT_EQ((*f)->path(), p);
  ASSERT_TRUE((*f)->Append("hello ").ok());
  ASSERT_TRUE((*f)->Append("world").ok());
  EXPECT_EQ((*f)->offset(), 11u);
  ASSERT_TRUE((*f)->Flush().ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_TRUE((*f)->Close().ok());  // idempotent
  EXPECT_EQ((*f)->Append("x").code(), Code::kFailedPrecondition);

  EXPECT_EQ(ReadAll(p), "hello world");
  auto size = fs_->FileSize(p);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 11u);

  auto r = fs_->NewRandomAccessFile(p);
  ASSERT_TRUE(r.ok());
  char buf[16];
  auto n = (*r)->Read(6, 16, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");
  n = (*r)->Read(100, 4, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_P(FileSystemTest, NewWritableFileTruncates) {
  const std::string p = Path("t");
  WriteFile(p, "old contents");
  WriteFile(p, "new");
  EXPECT_EQ(ReadAll(p), "new");
}

TEST_P(FileSystemTest, ReopenWritesAtOffsetAndKeepsTheRest) {
  const std::string p = Path("r");
  WriteFile(p, "0123456789");
  auto f = fs_->ReopenWritableFile(p, 4);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->offset(), 4u);
  ASSERT_TRUE((*f)->Append("ab").ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadAll(p), "0123ab6789");

  EXPECT_EQ(fs_->ReopenWritableFile(p, 11).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_->ReopenWritableFile(Path("missing"), 0).status().code(), Code::kNotFound);
}

TEST_P(FileSystemTest, PreallocateZeroFillsWithoutMovingOffset) {
  const std::string p = Path("p");
  auto f = fs_->NewWritableFile(p);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("head").ok());
  ASSERT_TRUE((*f)->Preallocate(4096).ok());
  EXPECT_EQ((*f)->offset(), 4u);
  ASSERT_TRUE((*f)->Append("next").ok());
  ASSERT_TRUE((*f)->Preallocate(100).ok());  // never shrinks
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  const std::string data = ReadAll(p);
  ASSERT_EQ(data.size(), 4096u);
  EXPECT_EQ(data.substr(0, 8), "headnext");
  EXPECT_EQ(data.find_first_not_of('\0', 8), std::string::npos);
}

TEST_P(FileSystemTest, TruncateShrinksAndMovesOffset) {
  const std::string p = Path("tr");
  auto f = fs_->NewWritableFile(p);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("0123456789").ok());
  ASSERT_TRUE((*f)->Truncate(3).ok());
  EXPECT_EQ((*f)->offset(), 3u);
  ASSERT_TRUE((*f)->Append("X").ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadAll(p), "012X");
}

TEST_P(FileSystemTest, DirectoryOperations) {
  const std::string sub = Path("x/y/z");
  ASSERT_TRUE(fs_->CreateDirs(sub).ok());
  ASSERT_TRUE(fs_->CreateDirs(sub).ok());  // exists: fine
  ASSERT_TRUE(fs_->CreateDir(sub).ok());   // exists: fine
  ASSERT_TRUE(fs_->CreateDir(Path("x/w")).ok());
  EXPECT_EQ(fs_->CreateDir(Path("nope/a")).code(), Code::kNotFound);
  WriteFile(JoinPath(sub, "b"), "1");
  WriteFile(JoinPath(sub, "a"), "2");
  ASSERT_TRUE(fs_->SyncDir(sub).ok());
  auto names = fs_->ListDir(sub);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(fs_->ListDir(Path("missing")).status().code(), Code::kNotFound);

  ASSERT_TRUE(fs_->Rename(JoinPath(sub, "a"), JoinPath(sub, "c")).ok());
  EXPECT_EQ(*fs_->Exists(JoinPath(sub, "a")), false);
  EXPECT_EQ(*fs_->Exists(JoinPath(sub, "c")), true);
  EXPECT_EQ(ReadAll(JoinPath(sub, "c")), "2");
  ASSERT_TRUE(fs_->Rename(JoinPath(sub, "c"), JoinPath(sub, "b")).ok());  // replaces b
  EXPECT_EQ(ReadAll(JoinPath(sub, "b")), "2");

  ASSERT_TRUE(fs_->Remove(JoinPath(sub, "b")).ok());
  Status missing = fs_->Remove(JoinPath(sub, "b"));
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_NE(missing.message().find(JoinPath(sub, "b")), std::string::npos) << missing.message();
  ASSERT_TRUE(fs_->RemoveDir(sub).ok());
  EXPECT_EQ(*fs_->Exists(sub), false);
}

TEST_P(FileSystemTest, ErrorsNameThePathAndTheOsReason) {
  const std::string p = Path("does-not-exist");
  auto r = fs_->NewRandomAccessFile(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find(p), std::string::npos);
  EXPECT_NE(r.status().message().find("No such file"), std::string::npos) << r.status().message();
  EXPECT_EQ(fs_->FileSize(p).status().code(), Code::kNotFound);
  EXPECT_EQ(fs_->SyncDir(p).code(), Code::kNotFound);
}

TEST_P(FileSystemTest, LockFileIsExclusiveAndNamesThePath) {
  const std::string p = Path("LOCK");
  auto first = fs_->LockFile(p);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = fs_->LockFile(p);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find(p), std::string::npos) << second.status().message();
  first->reset();  // release
  auto third = fs_->LockFile(p);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_P(FileSystemTest, WriteStringToFileAtomic) {
  const std::string p = Path("cfg");
  ASSERT_TRUE(WriteStringToFileAtomic(fs_, p, "v1").ok());
  ASSERT_TRUE(WriteStringToFileAtomic(fs_, p, "v2").ok());
  EXPECT_EQ(ReadAll(p), "v2");
  EXPECT_EQ(*fs_->Exists(p + ".tmp"), false);
}

INSTANTIATE_TEST_SUITE_P(Impls, FileSystemTest, ::testing::Values(Impl::kPosix, Impl::kFault),
                         [](const ::testing::TestParamInfo<Impl>& info) {
                           return info.param == Impl::kPosix ? "Posix" : "FaultInjection";
                         });

TEST(PathTest, JoinBasenameDirname) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(Basename("/x/y.wal"), "y.wal");
  EXPECT_EQ(Basename("y.wal"), "y.wal");
  EXPECT_EQ(Dirname("/x/y"), "/x");
  EXPECT_EQ(Dirname("/y"), "/");
  EXPECT_EQ(Dirname("y"), ".");
}

}  // namespace
}  // namespace tidemark::fs
