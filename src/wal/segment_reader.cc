#include "wal/segment_reader.h"

#include <algorithm>

#include "base/coding.h"
#include "base/crc32c.h"
#include "fs/path.h"

namespace tidemark::wal {
namespace {

constexpr size_t kReadAhead = size_t{256} * 1024;

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == '\0'; });
}

}  // namespace

SegmentReader::SegmentReader(std::unique_ptr<fs::RandomAccessFile> file, std::string file_name,
                             uint64_t size)
    : file_(std::move(file)), file_name_(std::move(file_name)), size_(size) {}

Result<std::unique_ptr<SegmentReader>> SegmentReader::Open(fs::FileSystem* fs,
                                                           const std::string& path,
                                                           uint64_t limit) {
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::RandomAccessFile> file, fs->NewRandomAccessFile(path));
  return Open(std::move(file), limit);
}

Result<std::unique_ptr<SegmentReader>> SegmentReader::Open(
    std::unique_ptr<fs::RandomAccessFile> file, uint64_t limit) {
  TM_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  std::string name(fs::Basename(file->path()));
  const uint64_t size = std::min(file_size, limit);
  std::unique_ptr<SegmentReader> reader(new SegmentReader(std::move(file), std::move(name), size));
  TM_ASSIGN_OR_RETURN(std::string_view head, reader->Peek(0, kSegmentHeaderSize));
  TM_ASSIGN_OR_RETURN(reader->header_, DecodeSegmentHeader(head, reader->file_name_));
  return reader;
}

Result<std::string_view> SegmentReader::Peek(uint64_t offset, size_t n) {
  if (offset >= size_) {
    return std::string_view();
  }
  n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
  if (offset >= buffer_offset_ && offset + n <= buffer_offset_ + buffer_.size()) {
    const std::string_view window = buffer_;
    return window.substr(static_cast<size_t>(offset - buffer_offset_), n);
  }
  const auto want =
      static_cast<size_t>(std::min<uint64_t>(std::max(n, kReadAhead), size_ - offset));
  buffer_.resize(want);
  buffer_offset_ = offset;
  TM_ASSIGN_OR_RETURN(size_t got, file_->Read(offset, want, buffer_.data()));
  buffer_.resize(got);
  if (got < n) {
    // The file shrank under us (or a read came up short): treat the missing
    // part as absent; the record parser will classify what is left.
    n = got;
  }
  const std::string_view window = buffer_;
  return window.substr(0, n);
}

void SegmentReader::EndWith(EndKind kind, std::string reason) {
  end_kind_ = kind;
  end_reason_ = std::move(reason);
  end_offset_ = valid_end_;
}

Status SegmentReader::Corrupt(const std::string& what, uint64_t offset) {
  error_ = CorruptionError("wal: " + what + " in " + file_name_ + " at offset " +
                           std::to_string(offset));
  return error_;
}

Status SegmentReader::TailError() const {
  if (end_kind_ != EndKind::kTorn) {
    return Status::Ok();
  }
  return CorruptionError("wal: torn record (" + end_reason_ + ") in " + file_name_ + " at offset " +
                         std::to_string(end_offset_));
}

Result<std::optional<Entry>> SegmentReader::Next() {
  for (;;) {
    if (!error_.ok()) {
      return error_;
    }
    if (end_kind_ != EndKind::kNotYet) {
      return std::optional<Entry>();
    }
    Result<std::optional<Entry>> r = NextRecord();
    if (!r.ok()) {
      if (error_.ok()) {
        error_ = r.status();  // sticky I/O errors too
      }
      return r;
    }
    // nullopt with kNotYet means "skipped an optional record": keep going.
    if (r->has_value() || end_kind_ != EndKind::kNotYet) {
      return r;
    }
  }
}

Result<std::optional<Entry>> SegmentReader::NextRecord() {
  const uint64_t off = valid_end_;
  const uint64_t remaining = size_ - std::min(size_, off);
  if (remaining == 0) {
    EndWith(EndKind::kEndOfFile, "");
    return std::optional<Entry>();
  }

  TM_ASSIGN_OR_RETURN(std::string_view head, Peek(off, kRecordHeaderSize));
  if (head.size() < kRecordHeaderSize) {
    if (AllZero(head)) {
      EndWith(EndKind::kZeroFill, "");
    } else {
      EndWith(EndKind::kTorn, "file ends inside a record header");
    }
    return std::optional<Entry>();
  }
  if (AllZero(head)) {
    EndWith(EndKind::kZeroFill, "");
    return std::optional<Entry>();
  }

  const uint32_t length = DecodeFixed32(head.data() + 4);
  const auto type = static_cast<uint8_t>(head[8]);
  const auto reserved = static_cast<uint8_t>(head[9]);
  const uint16_t check = DecodeFixed16(head.data() + 10);
  const auto expected_check =
      static_cast<uint16_t>(crc32c::Mask(crc32c::Value(head.data() + 4, 6)) & 0xffffu);
  if (check != expected_check) {
    // The length cannot be trusted, so neither can "beyond EOF"; only a
    // zeroed sector inside the header itself marks it as torn.
    if (HasZeroSector(off, head)) {
      EndWith(EndKind::kTorn, "record header checksum mismatch and a zeroed 512-byte sector");
      return std::optional<Entry>();
    }
    return Corrupt("record header checksum mismatch", off);
  }
  if (reserved != 0) {
    return Corrupt("nonzero reserved byte in record header", off);
  }
  if (type == 0) {
    return Corrupt("record type 0", off);
  }
  if (length > kMaxRecordPayload) {
    return Corrupt("record length " + std::to_string(length) + " exceeds the maximum " +
                       std::to_string(kMaxRecordPayload),
                   off);
  }
  const uint64_t record_size = kRecordHeaderSize + uint64_t{length};
  if (record_size > remaining) {
    EndWith(EndKind::kTorn, "record of " + std::to_string(record_size) +
                                " bytes extends past the end of the file (" +
                                std::to_string(remaining) + " bytes left)");
    return std::optional<Entry>();
  }

  TM_ASSIGN_OR_RETURN(std::string_view record, Peek(off, static_cast<size_t>(record_size)));
  if (record.size() < record_size) {
    EndWith(EndKind::kTorn, "file shrank while reading a record");
    return std::optional<Entry>();
  }
  const uint32_t stored_crc = crc32c::Unmask(DecodeFixed32(record.data()));
  const uint32_t actual_crc = crc32c::Value(record.data() + 4, record.size() - 4);
  if (stored_crc != actual_crc) {
    if (HasZeroSector(off, record)) {
      EndWith(EndKind::kTorn, "checksum mismatch and a zeroed 512-byte sector");
      return std::optional<Entry>();
    }
    return Corrupt("checksum mismatch", off);
  }

  const std::string_view payload = record.substr(kRecordHeaderSize);
  if (type == kRecordTypeEntry) {
    std::optional<Entry> entry = DecodeEntryPayload(payload);
    if (!entry) {
      return Corrupt("entry record of " + std::to_string(length) + " bytes is shorter than " +
                         std::to_string(kEntryFixedSize),
                     off);
    }
    last_record_offset_ = off;
    valid_end_ = off + record_size;
    return entry;
  }
  if ((type & kOptionalRecordBit) != 0) {
    valid_end_ = off + record_size;  // unknown optional record: skip it
    return std::optional<Entry>();
  }
  return Corrupt("unknown record type " + std::to_string(type), off);
}

Result<uint64_t> SegmentReader::EndOfNonZeroData(uint64_t from) {
  uint64_t end = from;
  constexpr size_t kChunk = 1 << 20;
  for (uint64_t off = from; off < size_;) {
    TM_ASSIGN_OR_RETURN(std::string_view bytes, Peek(off, kChunk));
    if (bytes.empty()) {
      break;
    }
    const size_t last = bytes.find_last_not_of('\0');
    if (last != std::string_view::npos) {
      end = off + last + 1;
    }
    off += bytes.size();
  }
  return end;
}

}  // namespace tidemark::wal
