#pragma once
// The production fs::FileSystem, on POSIX syscalls (Linux).
//
// Every descriptor is opened O_CLOEXEC. Writes use pwrite at the tracked
// offset (no user-space buffering, no O_APPEND); Sync is fdatasync;
// Preallocate is fallocate(mode 0) with an ftruncate fallback; LockFile is
// flock(LOCK_EX | LOCK_NB). EINTR is retried; short writes are continued.
//
// Thread safety: stateless, so every method may be called concurrently.

#include "fs/file_system.h"

namespace tidemark::fs {

class PosixFileSystem final : public FileSystem {
 public:
  // A process-wide instance; never destroyed.
  static PosixFileSystem* Default();

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> ReopenWritableFile(const std::string& path,
                                                           uint64_t offset) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<bool> Exists(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
};

// Builds the Status for a failed syscall: "fs: <op> <path>: <strerror(err)>",
// with ENOENT -> kNotFound, ENOSPC/EDQUOT -> kResourceExhausted, else kIoError.
Status PosixError(std::string_view op, const std::string& path, int err);

}  // namespace tidemark::fs
