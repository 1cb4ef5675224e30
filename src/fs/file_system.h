#pragma once
// fs::FileSystem: the seam between Tidemark's own persistent files (WAL,
// archive spool, checkpoints metadata) and the operating system. Production
// uses PosixFileSystem (fs/posix_file_system.h); tests wrap it with
// test::FaultInjectionFileSystem (src/testing/) to simulate I/O errors and
// power loss. RocksDB's I/O does not go through here.
//
// One virtual per real syscall we rely on, so a fake can model exactly what a
// crash may lose:
//   * WritableFile::Append hands bytes to the kernel (no user-space buffer in
//     PosixFileSystem); they survive a process crash but NOT a power loss.
//   * WritableFile::Sync (fdatasync) makes the file's data and size durable.
//   * Creating, renaming or removing a file is durable only after SyncDir on
//     its parent directory.
//
// Errors: every method returns Status/Result. A missing file or directory is
// kNotFound, a full disk is kResourceExhausted, other OS errors are kIoError;
// messages read "fs: <operation> <path>: <strerror>". Calls on a closed file
// return kFailedPrecondition.
//
// Thread safety: FileSystem implementations are thread-safe. A file object
// (WritableFile, RandomAccessFile) is used by one thread at a time, except
// RandomAccessFile::Read, which may be called concurrently.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tidemark::fs {

// A file written sequentially from a write offset that starts at 0
// (NewWritableFile) or at a chosen offset (ReopenWritableFile). Writes go to
// the current offset, not to the end of the file, so a preallocated file (see
// Preallocate) is filled from the front.
//
// Destruction closes the descriptor without syncing; errors are ignored. Call
// Close() to observe them. Single-threaded.
class WritableFile {
 public:
  WritableFile() = default;
  virtual ~WritableFile() = default;
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;
  WritableFile(WritableFile&&) = delete;
  WritableFile& operator=(WritableFile&&) = delete;

  // Writes `data` at the current offset and advances it. On return the bytes
  // are in the kernel (visible to readers, lost on power failure until Sync).
  // On error, an unknown prefix of `data` may have been written.
  virtual Status Append(std::string_view data) = 0;

  // Pushes user-space buffers to the kernel. PosixWritableFile has none, so
  // this is a no-op there; kept so that buffered implementations stay correct.
  virtual Status Flush() = 0;

  // Flush, then fdatasync: everything appended so far, and the file size, are
  // durable when this returns OK. After a failed Sync the state of unsynced
  // data is unknown; callers must not retry (see wal::Wal's poisoning).
  virtual Status Sync() = 0;

  // Sets the file size to `size` (shrinking or zero-extending) and moves the
  // write offset to `size`. Not durable until Sync.
  virtual Status Truncate(uint64_t size) = 0;

  // Makes the file at least `size` bytes long, zero-filled past its current
  // contents, reserving disk blocks when the file system supports it
  // (fallocate mode 0, i.e. WITHOUT FALLOC_FL_KEEP_SIZE: st_size grows; where
  // fallocate is unsupported, ftruncate extends the file sparsely). Never
  // shrinks the file and never moves the write offset. Data written into a
  // preallocated range costs no size update at fdatasync time, and a reader
  // sees zeros beyond the last written byte. Not durable until Sync.
  virtual Status Preallocate(uint64_t size) = 0;

  // Closes the descriptor (no sync). Idempotent: a second Close returns OK.
  virtual Status Close() = 0;

  // The current write offset (bytes appended so far, plus the start offset).
  virtual uint64_t offset() const = 0;
  virtual const std::string& path() const = 0;
};

// Positional reads from an immutable (or append-only) file.
class RandomAccessFile {
 public:
  RandomAccessFile() = default;
  virtual ~RandomAccessFile() = default;
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;
  RandomAccessFile(RandomAccessFile&&) = delete;
  RandomAccessFile& operator=(RandomAccessFile&&) = delete;

  // Reads up to `n` bytes at `offset` into `scratch` (which must have room
  // for `n` bytes). Returns the number of bytes read: fewer than `n` only when
  // end of file is reached. Thread-safe (pread).
  virtual Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const = 0;

  // Current size of the file in bytes.
  virtual Result<uint64_t> Size() const = 0;

  virtual const std::string& path() const = 0;
};

// An exclusive advisory lock on a file (see FileSystem::LockFile). The lock is
// released when the object is destroyed.
class FileLock {
 public:
  FileLock() = default;
  virtual ~FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  FileLock(FileLock&&) = delete;
  FileLock& operator=(FileLock&&) = delete;
  virtual const std::string& path() const = 0;
};

class FileSystem {
 public:
  FileSystem() = default;
  virtual ~FileSystem() = default;
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;
  FileSystem(FileSystem&&) = delete;
  FileSystem& operator=(FileSystem&&) = delete;

  // Creates `path` (or truncates an existing file to 0) and opens it for
  // writing at offset 0. The directory entry is durable only after SyncDir.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;

  // Opens an existing file for writing at `offset` (0 <= offset <= size);
  // bytes past `offset` are kept until overwritten or truncated. kNotFound if
  // the file does not exist, kInvalidArgument if offset > size.
  virtual Result<std::unique_ptr<WritableFile>> ReopenWritableFile(const std::string& path,
                                                                   uint64_t offset) = 0;

  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;

  virtual Result<uint64_t> FileSize(const std::string& path) = 0;

  // True if `path` names an existing file or directory.
  virtual Result<bool> Exists(const std::string& path) = 0;

  // Atomically renames `from` to `to`, replacing `to` if it exists. Durable
  // after SyncDir of the parent directory (of both, if they differ).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;

  // Removes a file. kNotFound if it does not exist. Durable after SyncDir.
  virtual Status Remove(const std::string& path) = 0;

  // Removes an empty directory.
  virtual Status RemoveDir(const std::string& path) = 0;

  // Names (not paths) of the entries of `dir`, sorted bytewise, without "."
  // and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;

  // Creates one directory; OK if it already exists as a directory.
  virtual Status CreateDir(const std::string& dir) = 0;

  // Creates `dir` and any missing parents (mkdir -p).
  virtual Status CreateDirs(const std::string& dir) = 0;

  // fsyncs the directory itself, making file creations, renames and removals
  // inside it durable.
  virtual Status SyncDir(const std::string& dir) = 0;

  // Takes an exclusive, non-blocking flock(2) on `path` (created if missing).
  // Fails with kUnavailable, naming the path, if another process - or another
  // open of the same file in this process - holds it; used so two servers
  // cannot share a data directory.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// ---- Helpers built on the interface -----------------------------------------

// Reads a whole file.
Result<std::string> ReadFileToString(FileSystem* fs, const std::string& path);

// Writes `data` to `path` atomically and durably: write `path`.tmp, Sync,
// Rename over `path`, SyncDir. After a crash, `path` holds either the old or
// the new contents.
Status WriteStringToFileAtomic(FileSystem* fs, const std::string& path, std::string_view data);

}  // namespace tidemark::fs
