#include "wal/segment_writer.h"

#include <algorithm>

#include "fs/path.h"

namespace tidemark::wal {

SegmentWriter::SegmentWriter(std::unique_ptr<fs::WritableFile> file, std::string path,
                             SegmentHeader header, uint64_t offset)
    : file_(std::move(file)), path_(std::move(path)), header_(header), flushed_(offset) {}

Result<std::unique_ptr<SegmentWriter>> SegmentWriter::Create(fs::FileSystem* fs,
                                                             const std::string& dir,
                                                             uint64_t sequence,
                                                             uint64_t first_index,
                                                             uint64_t preallocate_bytes) {
  SegmentHeader header;
  header.sequence = sequence;
  header.first_index = first_index;
  const std::string name = SegmentFileName(sequence, first_index);
  const std::string path = fs::JoinPath(dir, name);
  const std::string tmp =
      path.substr(0, path.size() - kSegmentSuffix.size()) + std::string(kTempSuffix);
  {
    TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file, fs->NewWritableFile(tmp));
    TM_RETURN_IF_ERROR(file->Append(EncodeSegmentHeader(header)));
    TM_RETURN_IF_ERROR(
        file->Preallocate(std::max<uint64_t>(preallocate_bytes, kSegmentHeaderSize)));
    // The header must be durable before the name appears: a segment under its
    // final name is never torn at the header.
    TM_RETURN_IF_ERROR(file->Sync());
    TM_RETURN_IF_ERROR(file->Close());
  }
  TM_RETURN_IF_ERROR(fs->Rename(tmp, path));
  TM_RETURN_IF_ERROR(fs->SyncDir(dir));
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file,
                      fs->ReopenWritableFile(path, kSegmentHeaderSize));
  return std::unique_ptr<SegmentWriter>(
      new SegmentWriter(std::move(file), path, header, kSegmentHeaderSize));
}

Result<std::unique_ptr<SegmentWriter>> SegmentWriter::Reopen(fs::FileSystem* fs,
                                                             const std::string& path,
                                                             const SegmentHeader& header,
                                                             uint64_t valid_end,
                                                             uint64_t preallocate_bytes) {
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file,
                      fs->ReopenWritableFile(path, valid_end));
  // Truncate + re-extend zero-fills whatever followed the last valid record
  // (torn records, or later sectors of a torn write that did reach the disk).
  TM_RETURN_IF_ERROR(file->Truncate(valid_end));
  TM_RETURN_IF_ERROR(file->Preallocate(std::max(preallocate_bytes, valid_end)));
  TM_RETURN_IF_ERROR(file->Sync());
  return std::unique_ptr<SegmentWriter>(
      new SegmentWriter(std::move(file), path, header, valid_end));
}

void SegmentWriter::AddEntry(const Entry& entry) {
  AppendEntryRecord(&buffer_, entry);
  ++entry_count_;
}

Status SegmentWriter::Flush() {
  if (buffer_.empty()) {
    return Status::Ok();
  }
  Status s = file_->Append(buffer_);
  flushed_ = file_->offset();
  if (!s.ok()) {
    return s;
  }
  buffer_.clear();
  if (buffer_.capacity() > (16u << 20)) {
    buffer_.shrink_to_fit();  // after a huge batch
  }
  return Status::Ok();
}

Status SegmentWriter::Sync() {
  TM_RETURN_IF_ERROR(Flush());
  return file_->Sync();
}

Status SegmentWriter::Close() {
  return file_->Close();
}

}  // namespace tidemark::wal
