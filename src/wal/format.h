#pragma once
// WAL on-disk format, version 1. The byte-exact specification (with
// diagrams, recovery rules and version history) is docs/formats/wal.md; keep
// the two in sync. All integers are little-endian.
//
//   segment file  = SegmentHeader (40 bytes) || record* || zero fill
//   record        = crc:u32 | length:u32 | type:u8 | reserved:u8 (0) |
//                   header_check:u16 | payload[length]
//       crc          = Mask(crc32c(record[4 .. 12 + length)))
//       header_check = low 16 bits of Mask(crc32c(record[4 .. 10)))
//   entry payload = index:u64 | term:u64 | unix_nanos:i64 | data[length - 24]
//
// Thread safety: everything here is a pure function or a constant.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "wal/entry.h"

namespace tidemark::fs {
class FileSystem;
}

namespace tidemark::wal {

// ---- Segment header ----------------------------------------------------------

inline constexpr char kSegmentMagic[8] = {'T', 'M', 'W', 'A', 'L', 'S', 'E', 'G'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 40;

struct SegmentHeader {
  uint32_t version = kFormatVersion;
  uint64_t sequence = 0;     // 1 for the first segment of a WAL, +1 per rotation
  uint64_t first_index = 0;  // index of the segment's first entry (if it has one)
  uint32_t flags = 0;        // none defined in version 1; must be 0
};

// Exactly kSegmentHeaderSize bytes.
std::string EncodeSegmentHeader(const SegmentHeader& header);

// Parses and validates a header. `file_name` is used in messages only.
// kCorruption: short input, wrong magic, checksum mismatch, nonzero flags,
// header_size != 40. kFailedPrecondition: a version this build cannot read.
Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes, std::string_view file_name);

// ---- Records ---------------------------------------------------------------------

inline constexpr size_t kRecordHeaderSize = 12;
// Upper bound on a record payload; a length field above it is corruption.
inline constexpr uint32_t kMaxRecordPayload = 64u << 20;

// Record types. Type 0 never appears in a valid record (an all-zero header
// marks the zero-filled end of a segment). Types with kOptionalRecordBit set
// may be skipped by readers that do not know them; an unknown type without
// the bit is corruption.
inline constexpr uint8_t kRecordTypeEntry = 1;
inline constexpr uint8_t kOptionalRecordBit = 0x80;

// Appends one framed record of `type` around `payload` to `dst`.
// Precondition: payload.size() <= kMaxRecordPayload.
void AppendRecord(std::string* dst, uint8_t type, std::string_view payload);

// ---- Entries -----------------------------------------------------------------------

inline constexpr size_t kEntryFixedSize = 24;  // index, term, unix_nanos
inline constexpr size_t kMaxEntryPayload = kMaxRecordPayload - kEntryFixedSize;

// Appends `entry` framed as a kRecordTypeEntry record (no intermediate copy).
// Precondition: entry.payload.size() <= kMaxEntryPayload.
void AppendEntryRecord(std::string* dst, const Entry& entry);

// Decodes the payload of a kRecordTypeEntry record; nullopt if shorter than
// kEntryFixedSize.
std::optional<Entry> DecodeEntryPayload(std::string_view payload);

// Size on disk of an entry record with this many payload bytes.
inline constexpr uint64_t EntryRecordSize(size_t payload_bytes) {
  return kRecordHeaderSize + kEntryFixedSize + payload_bytes;
}

// ---- Torn-write detection ----------------------------------------------------------

// Sector size assumed atomic by the storage device (etcd's minSectorSize).
inline constexpr uint64_t kSectorSize = 512;

// True if `bytes`, which start at file offset `file_offset`, contain a chunk
// that is entirely zero, where chunks are split at multiples of kSectorSize in
// file-offset space (so the first and last chunk may be partial). A record
// failing its checksum with such a chunk is a torn write, not bit rot.
bool HasZeroSector(uint64_t file_offset, std::string_view bytes);

// ---- Segment files -----------------------------------------------------------------

// "%016x-%016x.wal" of (sequence, first index), lowercase hex: names sort in
// sequence order and reveal the first index without opening the file.
inline constexpr std::string_view kSegmentSuffix = ".wal";
// A segment being created; never a valid segment, removed by Wal::Open.
inline constexpr std::string_view kTempSuffix = ".wal.tmp";

std::string SegmentFileName(uint64_t sequence, uint64_t first_index);

struct SegmentName {
  uint64_t sequence = 0;
  uint64_t first_index = 0;
  std::string name;  // file name, without directory
};
// Parses a segment file name; nullopt for any other name (including *.tmp).
std::optional<SegmentName> ParseSegmentFileName(std::string_view name);

// The segment files in `dir`, sorted by sequence. Other files are ignored.
Result<std::vector<SegmentName>> ListSegmentFiles(fs::FileSystem* fs, const std::string& dir);

}  // namespace tidemark::wal
