#pragma once
// FaultInjectionFileSystem: an fs::FileSystem wrapper that simulates I/O
// errors and power loss. TEST-ONLY (library tm_testing); never link it into
// the server.
//
// Power-loss model (what survives DropUnsyncedData()):
//   * File data: per file we track the length made durable by the last
//     successful Sync() (`synced_size`, including preallocated space) and the
//     lowest offset written since then (`dirty_begin`). A power loss keeps
//     [0, dirty_begin) and zero-fills [dirty_begin, synced_size): unsynced
//     writes are lost and read back as zeros, the way unwritten extents of a
//     preallocated file do, and the file is cut back to synced_size. The model
//     assumes writes land on zeros or past EOF (appends, preallocated space);
//     overwritten durable bytes are not restored. Truncate() is treated like a
//     write at the new size (the old length survives until a Sync).
//   * Directory entries: files created since the last SyncDir() of their
//     directory are removed, and renames since then are undone (a rename
//     that replaced an existing file does not bring the old file back).
//     Remove() and CreateDir(s)() are treated as immediately durable.
//   * Files never opened for writing through this wrapper are durable as-is.
//     A file re-opened with ReopenWritableFile(path, off) counts as synced up
//     to its current size, with [off, size) dirty-on-write.
//
// Typical power-loss test:
//   fault_fs.SetActive(false);          // power off: every op now fails
//   wal.reset();                        // old handles die without writing
//   ASSERT_TRUE(fault_fs.DropUnsyncedData().ok());  // (optionally after TearLastWrite)
//   fault_fs.SetActive(true);           // power on; reopen and check
//
// Handles opened before DropUnsyncedData() are stale afterwards: every call
// on them fails with kIoError.
//
// Thread safety: thread-safe; one mutex serializes all operations (fine for
// tests). `base` must outlive this object, and this object must outlive every
// file it returned.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "fs/file_system.h"

namespace tidemark::test {

// Operations that FailNext() can target. kAny matches every operation.
enum class FaultOp : int {
  kNewWritableFile = 0,
  kReopenWritableFile,
  kNewRandomAccessFile,
  kRead,
  kAppend,
  kFlush,
  kSync,
  kTruncate,
  kPreallocate,
  kClose,
  kFileSize,
  kExists,
  kRename,
  kRemove,
  kRemoveDir,
  kListDir,
  kCreateDir,
  kSyncDir,
  kLockFile,
  kAny,  // must stay last
};
inline constexpr int kNumFaultOps = static_cast<int>(FaultOp::kAny) + 1;
const char* FaultOpName(FaultOp op);

// How TearLastWrite() damages the most recent unsynced Append.
enum class TearMode {
  // The first `bytes` of the append reached the disk, the rest did not.
  kKeepPrefix,
  // The whole append reached the disk except the 512-byte sector (aligned in
  // file offsets) that contains append-offset `bytes`; that part of it reads
  // back as zeros. Page-cache writeback can persist later sectors of a write
  // while an earlier one is lost.
  kZeroSector,
};
inline constexpr uint64_t kSectorSize = 512;

struct FaultInjectionOptions {
  // When false, Sync()/SyncDir() update the simulated durable state but skip
  // the real fdatasync/fsync. The simulation never needs them, so
  // randomized power-loss loops run much faster.
  bool forward_syncs = true;
};

class FaultInjectionFileSystem final : public fs::FileSystem {
 public:
  explicit FaultInjectionFileSystem(fs::FileSystem* base, FaultInjectionOptions options = {});
  ~FaultInjectionFileSystem() override;
  FaultInjectionFileSystem(const FaultInjectionFileSystem&) = delete;
  FaultInjectionFileSystem& operator=(const FaultInjectionFileSystem&) = delete;
  FaultInjectionFileSystem(FaultInjectionFileSystem&&) = delete;
  FaultInjectionFileSystem& operator=(FaultInjectionFileSystem&&) = delete;

  // ---- fs::FileSystem --------------------------------------------------------
  Result<std::unique_ptr<fs::WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<fs::WritableFile>> ReopenWritableFile(const std::string& path,
                                                               uint64_t offset) override;
  Result<std::unique_ptr<fs::RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<bool> Exists(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<fs::FileLock>> LockFile(const std::string& path) override;

  // ---- Fault controls ----------------------------------------------------------

  // Power switch. While inactive, every operation (including on open handles)
  // fails with kIoError and changes nothing.
  void SetActive(bool active);
  bool IsActive() const;

  // The next `count` calls of `op` fail with `code` without reaching the base
  // file system (kAny: the next `count` calls of any operation). Replaces an
  // earlier setting for the same op.
  void FailNext(FaultOp op, int count, Code code = Code::kIoError);
  void ClearFailures();

  // Simulates the power loss described above on the base file system, then
  // forgets all tracking (everything left is durable) and makes every handle
  // opened so far stale. Works whether or not the file system is active.
  Status DropUnsyncedData();

  // Marks the most recent Append (on any file) as torn, per `mode`: the
  // surviving bytes of it - and every unsynced byte before it in that file -
  // are treated as having reached the disk. Call DropUnsyncedData() next to
  // lose everything else. kFailedPrecondition if there is no unsynced append
  // (none yet, or it was synced, or its file was removed).
  Status TearLastWrite(uint64_t bytes, TearMode mode);

  // ---- Introspection -----------------------------------------------------------

  // Number of calls of `op` that reached this wrapper (kAny: all calls).
  int64_t CallCount(FaultOp op) const;
  // Offset/length of the last unsynced append, if any.
  std::optional<std::pair<uint64_t, uint64_t>> LastUnsyncedWrite() const;

 private:
  class FaultWritableFile;
  class FaultRandomAccessFile;

  struct FileState {
    uint64_t pos = 0;               // write offset of the latest handle
    uint64_t size = 0;              // current length, as far as we know
    uint64_t synced_size = 0;       // length that survives power loss
    uint64_t dirty_begin = kClean;  // lowest offset written since the last Sync
    static constexpr uint64_t kClean = ~uint64_t{0};
  };
  struct DirState {
    std::vector<std::string> created;                          // paths, in creation order
    std::vector<std::pair<std::string, std::string>> renames;  // (from, to), in order
  };
  struct LastWrite {
    std::string path;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  struct Failure {
    int remaining = 0;
    Code code = Code::kIoError;
  };

  // Counts the call and returns the injected error, if any. Requires mu_.
  Status CheckLocked(FaultOp op, const std::string& path);
  // Same, plus the stale-handle check for calls made through a handle.
  Status CheckHandleLocked(FaultOp op, const std::string& path, uint64_t generation);

  Status FileAppend(const std::string& path, uint64_t generation, fs::WritableFile* base,
                    std::string_view data);
  Status FileSync(const std::string& path, uint64_t generation, fs::WritableFile* base);
  Status FileTruncate(const std::string& path, uint64_t generation, fs::WritableFile* base,
                      uint64_t size);
  Status FilePreallocate(const std::string& path, uint64_t generation, fs::WritableFile* base,
                         uint64_t size);
  Status FileSimple(FaultOp op, const std::string& path, uint64_t generation);

  Status ZeroRangeLocked(const std::string& path, uint64_t begin, uint64_t end);

  fs::FileSystem* const base_;
  const FaultInjectionOptions options_;

  mutable std::mutex mu_;
  bool active_ = true;                            // guarded by mu_
  uint64_t generation_ = 0;                       // guarded by mu_
  std::map<std::string, FileState> files_;        // guarded by mu_
  std::map<std::string, DirState> dirs_;          // guarded by mu_ (pending entries)
  std::optional<LastWrite> last_write_;           // guarded by mu_
  std::array<Failure, kNumFaultOps> failures_{};  // guarded by mu_
  std::array<int64_t, kNumFaultOps> calls_{};     // guarded by mu_
  std::set<FaultWritableFile*> live_files_;       // guarded by mu_; for Rename
};

}  // namespace tidemark::test
