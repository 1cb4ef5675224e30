#pragma once
// SegmentWriter: appends entry records to one WAL segment file.
//
// Ownership: owns its fs::WritableFile; `fs` must outlive the writer.
//
// Thread safety: not thread-safe. Exactly one thread (the WAL writer) owns a
// SegmentWriter; readers open their own SegmentReader on the same file.
//
// Durability: AddEntry() only encodes into memory. Flush() hands the bytes to
// the kernel (survives a process crash, not a power loss). A record is
// durable once a later Sync() returns OK. The writer does not poison itself:
// after any failed Flush/Sync the file's tail is unknown and the owner (Wal)
// must stop using it.

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "fs/file_system.h"
#include "wal/entry.h"
#include "wal/format.h"

namespace tidemark::wal {

class SegmentWriter {
 public:
  // Creates segment `SegmentFileName(sequence, first_index)` in `dir`
  // atomically: the header is written to "<name>.tmp", the file is
  // preallocated to `preallocate_bytes` (zero-filled), synced, renamed to its
  // final name, and the directory is synced. So a segment file that exists
  // under its final name always has a complete, durable header.
  // Errors: file-system errors, unchanged.
  static Result<std::unique_ptr<SegmentWriter>> Create(fs::FileSystem* fs, const std::string& dir,
                                                       uint64_t sequence, uint64_t first_index,
                                                       uint64_t preallocate_bytes);

  // Opens the existing segment `path` (whose header is `header`) to append at
  // `valid_end`, the end of its last valid record as found by a
  // SegmentReader. Everything past `valid_end` is discarded (truncate, then
  // zero-fill up to `preallocate_bytes`) and the result is synced before
  // returning, so leftovers of a torn write can never follow new records.
  static Result<std::unique_ptr<SegmentWriter>> Reopen(fs::FileSystem* fs, const std::string& path,
                                                       const SegmentHeader& header,
                                                       uint64_t valid_end,
                                                       uint64_t preallocate_bytes);

  // Encodes `entry` as one record into the in-memory buffer. No I/O.
  // Precondition: entry.payload.size() <= kMaxEntryPayload.
  void AddEntry(const Entry& entry);

  // Writes the buffered records to the file (no fdatasync).
  Status Flush();
  // Flush, then fdatasync: everything added so far is durable on OK.
  Status Sync();
  // Closes the file without syncing.
  Status Close();

  // Logical end of data: bytes written plus bytes buffered.
  uint64_t size() const { return flushed_ + buffer_.size(); }
  size_t buffered_bytes() const { return buffer_.size(); }
  uint64_t entry_count() const { return entry_count_; }  // entries added since open
  const SegmentHeader& header() const { return header_; }
  const std::string& path() const { return path_; }

 private:
  SegmentWriter(std::unique_ptr<fs::WritableFile> file, std::string path, SegmentHeader header,
                uint64_t offset);

  const std::unique_ptr<fs::WritableFile> file_;
  const std::string path_;
  const SegmentHeader header_;
  uint64_t flushed_;    // bytes handed to the file so far (its write offset)
  std::string buffer_;  // encoded records not yet written
  uint64_t entry_count_ = 0;
};

}  // namespace tidemark::wal
