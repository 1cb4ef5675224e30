#pragma once
// SegmentReader: reads the entries of one WAL segment file, in order, and
// classifies how the valid data ends. It is the only code that parses
// records; Wal::Open, Wal::ReadFrom and (later) the archiver and
// `tidemark wal verify` all use it.
//
// The reader applies no policy beyond what the bytes say. It reports
//   * EndKind::kEndOfFile  - the data ends exactly at the end of the file;
//   * EndKind::kZeroFill   - an all-zero record header: the zero-filled
//                            (preallocated) remainder of the segment;
//   * EndKind::kTorn       - a record that can only be the result of an
//                            interrupted write: it claims more bytes than the
//                            file has, the file ends inside a record header,
//                            or its checksum fails AND its bytes contain an
//                            all-zero 512-byte sector chunk (etcd's rule);
// and returns kCorruption for everything else (checksum mismatch with no
// zeroed sector, bad header fields, unknown mandatory record type, entry
// record too short). The caller decides what a torn end means: it is
// tolerated only at the tail of the LAST segment of a WAL (see TailError()).
//
// The reader does not check index continuity; callers do (they know the
// expected first index and the neighbouring segments).
//
// Thread safety: not thread-safe; use one reader per thread. Several readers
// may read the same file concurrently, also while a Wal appends to it,
// provided `limit` is at or below the durable end of the data.

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "fs/file_system.h"
#include "wal/entry.h"
#include "wal/format.h"

namespace tidemark::wal {

class SegmentReader {
 public:
  static constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

  enum class EndKind { kNotYet, kEndOfFile, kZeroFill, kTorn };

  // Opens `path` on `fs` and validates the segment header. Bytes at or past
  // `limit` are treated as absent (use the durable end of an active segment).
  // Errors: those of the file system (kNotFound, kIoError); kCorruption or
  // kFailedPrecondition from DecodeSegmentHeader.
  static Result<std::unique_ptr<SegmentReader>> Open(fs::FileSystem* fs, const std::string& path,
                                                     uint64_t limit = kNoLimit);
  // Same, on an already open file (taken over).
  static Result<std::unique_ptr<SegmentReader>> Open(std::unique_ptr<fs::RandomAccessFile> file,
                                                     uint64_t limit = kNoLimit);

  const SegmentHeader& header() const { return header_; }
  // The file's base name, as used in messages.
  const std::string& file_name() const { return file_name_; }
  // min(file size at Open, limit).
  uint64_t size() const { return size_; }

  // Returns the next entry, or std::nullopt once the valid data has ended
  // (then end_kind() says how). Optional record types it does not know are
  // skipped. Errors: kCorruption ("wal: <what> in <file> at offset <n>"),
  // kIoError from reads. After nullopt or an error, every later call returns
  // the same result.
  Result<std::optional<Entry>> Next();

  EndKind end_kind() const { return end_kind_; }
  // For kTorn: why the record was judged torn (e.g. "checksum mismatch and a
  // zeroed 512-byte sector"); empty otherwise.
  const std::string& end_reason() const { return end_reason_; }
  // Offset just past the last valid record read so far; after the end, the
  // offset at which a writer would resume (== kSegmentHeaderSize initially).
  uint64_t valid_end() const { return valid_end_; }
  // Offset of the record that Next() returned last (0 before the first).
  uint64_t last_record_offset() const { return last_record_offset_; }

  // kCorruption describing a torn end ("wal: torn record (<reason>) in
  // <file> at offset <n>"), for callers that must not accept one (sealed
  // segments); OK if end_kind() != kTorn.
  Status TailError() const;

  // Scans [from, size()) and returns the offset just past its last non-zero
  // byte (== `from` if the range is all zero). Used after the end of the
  // records to tell a clean zero-filled tail from leftovers of a torn write.
  Result<uint64_t> EndOfNonZeroData(uint64_t from);

 private:
  SegmentReader(std::unique_ptr<fs::RandomAccessFile> file, std::string file_name, uint64_t size);

  // Returns up to `n` bytes at `offset` (fewer only at size()). The view is
  // valid until the next call.
  Result<std::string_view> Peek(uint64_t offset, size_t n);
  Result<std::optional<Entry>> NextRecord();
  void EndWith(EndKind kind, std::string reason);
  Status Corrupt(const std::string& what, uint64_t offset);

  const std::unique_ptr<fs::RandomAccessFile> file_;
  const std::string file_name_;
  const uint64_t size_;
  SegmentHeader header_;

  std::string buffer_;          // read-ahead window
  uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]

  uint64_t valid_end_ = kSegmentHeaderSize;
  uint64_t last_record_offset_ = 0;
  EndKind end_kind_ = EndKind::kNotYet;
  std::string end_reason_;
  uint64_t end_offset_ = 0;  // offset of the torn record
  Status error_;             // sticky error
};

}  // namespace tidemark::wal
