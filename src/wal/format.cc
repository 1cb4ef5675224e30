#include "wal/format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"
#include "fs/file_system.h"

namespace tidemark::wal {
namespace {

// Segment header field offsets (see docs/formats/wal.md).
constexpr size_t kMagicOffset = 0;
constexpr size_t kVersionOffset = 8;
constexpr size_t kHeaderSizeOffset = 12;
constexpr size_t kSequenceOffset = 16;
constexpr size_t kFirstIndexOffset = 24;
constexpr size_t kFlagsOffset = 32;
constexpr size_t kHeaderCrcOffset = 36;

// Record header field offsets.
constexpr size_t kRecordLengthOffset = 4;
constexpr size_t kRecordTypeOffset = 8;
constexpr size_t kRecordReservedOffset = 9;
constexpr size_t kRecordHeaderCheckOffset = 10;

// Writes length, type, reserved and header_check of a record whose header
// starts at `p`.
void EncodeRecordHeaderFields(char* p, uint8_t type, uint32_t length) {
  EncodeFixed32(p + kRecordLengthOffset, length);
  p[kRecordTypeOffset] = static_cast<char>(type);
  p[kRecordReservedOffset] = 0;
  const uint32_t check = crc32c::Mask(crc32c::Value(p + kRecordLengthOffset, 6));
  EncodeFixed16(p + kRecordHeaderCheckOffset, static_cast<uint16_t>(check & 0xffffu));
}

// Computes and stores the record CRC once the payload follows the header.
void SealRecord(std::string* dst, size_t start, uint32_t length) {
  const uint32_t crc = crc32c::Value(dst->data() + start + 4, kRecordHeaderSize - 4 + length);
  EncodeFixed32(dst->data() + start, crc32c::Mask(crc));
}

Status HeaderCorruption(std::string_view file_name, const std::string& why) {
  return CorruptionError("wal: bad segment header in " + std::string(file_name) + ": " + why);
}

bool ParseHex16(std::string_view s, uint64_t* out) {
  if (s.size() != 16) {
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;  // uppercase is not a name we write
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string out(kSegmentHeaderSize, '\0');
  char* p = out.data();
  std::memcpy(p + kMagicOffset, kSegmentMagic, sizeof(kSegmentMagic));
  EncodeFixed32(p + kVersionOffset, header.version);
  EncodeFixed32(p + kHeaderSizeOffset, static_cast<uint32_t>(kSegmentHeaderSize));
  EncodeFixed64(p + kSequenceOffset, header.sequence);
  EncodeFixed64(p + kFirstIndexOffset, header.first_index);
  EncodeFixed32(p + kFlagsOffset, header.flags);
  EncodeFixed32(p + kHeaderCrcOffset, crc32c::Mask(crc32c::Value(p, kHeaderCrcOffset)));
  return out;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes, std::string_view file_name) {
  if (bytes.size() < kSegmentHeaderSize) {
    return HeaderCorruption(file_name, "file is " + std::to_string(bytes.size()) +
                                           " bytes, shorter than the " +
                                           std::to_string(kSegmentHeaderSize) + "-byte header");
  }
  const char* p = bytes.data();
  if (std::memcmp(p + kMagicOffset, kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return HeaderCorruption(file_name, "bad magic");
  }
  SegmentHeader h;
  h.version = DecodeFixed32(p + kVersionOffset);
  // Magic, version and header size keep their positions in every version, so
  // they are checked before the version-specific checksum.
  if (h.version == 0 || h.version > kFormatVersion) {
    return FailedPreconditionError("wal: segment " + std::string(file_name) +
                                   " has format version " + std::to_string(h.version) +
                                   "; this build reads versions 1.." +
                                   std::to_string(kFormatVersion));
  }
  const uint32_t stored_crc = crc32c::Unmask(DecodeFixed32(p + kHeaderCrcOffset));
  if (stored_crc != crc32c::Value(p, kHeaderCrcOffset)) {
    return HeaderCorruption(file_name, "checksum mismatch");
  }
  if (DecodeFixed32(p + kHeaderSizeOffset) != kSegmentHeaderSize) {
    return HeaderCorruption(file_name, "header size " +
                                           std::to_string(DecodeFixed32(p + kHeaderSizeOffset)) +
                                           ", expected " + std::to_string(kSegmentHeaderSize));
  }
  h.sequence = DecodeFixed64(p + kSequenceOffset);
  h.first_index = DecodeFixed64(p + kFirstIndexOffset);
  h.flags = DecodeFixed32(p + kFlagsOffset);
  if (h.flags != 0) {
    return HeaderCorruption(file_name, "unknown flags " + std::to_string(h.flags));
  }
  return h;
}

void AppendRecord(std::string* dst, uint8_t type, std::string_view payload) {
  const size_t start = dst->size();
  const auto length = static_cast<uint32_t>(payload.size());
  dst->resize(start + kRecordHeaderSize);
  EncodeRecordHeaderFields(dst->data() + start, type, length);
  dst->append(payload.data(), payload.size());
  SealRecord(dst, start, length);
}

void AppendEntryRecord(std::string* dst, const Entry& entry) {
  const size_t start = dst->size();
  const auto length = static_cast<uint32_t>(kEntryFixedSize + entry.payload.size());
  dst->resize(start + kRecordHeaderSize + kEntryFixedSize);
  char* p = dst->data() + start;
  EncodeRecordHeaderFields(p, kRecordTypeEntry, length);
  EncodeFixed64(p + kRecordHeaderSize, entry.index);
  EncodeFixed64(p + kRecordHeaderSize + 8, entry.term);
  EncodeFixed64(p + kRecordHeaderSize + 16, static_cast<uint64_t>(entry.unix_nanos));
  dst->append(entry.payload);
  SealRecord(dst, start, length);
}

std::optional<Entry> DecodeEntryPayload(std::string_view payload) {
  if (payload.size() < kEntryFixedSize) {
    return std::nullopt;
  }
  Entry e;
  e.index = DecodeFixed64(payload.data());
  e.term = DecodeFixed64(payload.data() + 8);
  e.unix_nanos = static_cast<int64_t>(DecodeFixed64(payload.data() + 16));
  e.payload.assign(payload.data() + kEntryFixedSize, payload.size() - kEntryFixedSize);
  return e;
}

bool HasZeroSector(uint64_t file_offset, std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const uint64_t into_sector = (file_offset + i) % kSectorSize;
    const size_t end = std::min(bytes.size(), i + static_cast<size_t>(kSectorSize - into_sector));
    bool all_zero = true;
    for (size_t j = i; j < end; ++j) {
      if (bytes[j] != '\0') {
        all_zero = false;
        break;
      }
    }
    if (all_zero) {
      return true;
    }
    i = end;
  }
  return false;
}

std::string SegmentFileName(uint64_t sequence, uint64_t first_index) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%016llx-%016llx.wal", static_cast<unsigned long long>(sequence),
                static_cast<unsigned long long>(first_index));
  return buf;
}

std::optional<SegmentName> ParseSegmentFileName(std::string_view name) {
  // 16 hex + '-' + 16 hex + ".wal"
  constexpr size_t kLength = 16 + 1 + 16 + 4;
  if (name.size() != kLength || name[16] != '-' || name.substr(33) != kSegmentSuffix) {
    return std::nullopt;
  }
  SegmentName out;
  if (!ParseHex16(name.substr(0, 16), &out.sequence) ||
      !ParseHex16(name.substr(17, 16), &out.first_index)) {
    return std::nullopt;
  }
  out.name = std::string(name);
  return out;
}

Result<std::vector<SegmentName>> ListSegmentFiles(fs::FileSystem* fs, const std::string& dir) {
  TM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(dir));
  std::vector<SegmentName> out;
  for (const std::string& name : names) {
    if (std::optional<SegmentName> seg = ParseSegmentFileName(name)) {
      out.push_back(*seg);
    }
  }
  std::sort(out.begin(), out.end(), [](const SegmentName& a, const SegmentName& b) {
    return a.sequence != b.sequence ? a.sequence < b.sequence : a.first_index < b.first_index;
  });
  return out;
}

}  // namespace tidemark::wal
