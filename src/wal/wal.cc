#include "wal/wal.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "fs/path.h"
#include "wal/format.h"
#include "wal/segment_reader.h"

namespace tidemark::wal {
namespace {

constexpr char kLockFileName[] = "LOCK";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Wal::Wal(fs::FileSystem* fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(std::move(options)) {}

Wal::~Wal() = default;

Result<std::unique_ptr<Wal>> Wal::Open(fs::FileSystem* fs, std::string dir, WalOptions options) {
  if (fs == nullptr) {
    return InvalidArgumentError("wal: null file system");
  }
  if (dir.empty()) {
    return InvalidArgumentError("wal: empty directory name");
  }
  if (options.initial_index == 0) {
    return InvalidArgumentError("wal: initial_index must be >= 1");
  }
  if (options.segment_size <= kSegmentHeaderSize) {
    return InvalidArgumentError("wal: segment_size " + std::to_string(options.segment_size) +
                                " is not larger than the segment header");
  }
  std::unique_ptr<Wal> wal(new Wal(fs, std::move(dir), std::move(options)));
  TM_RETURN_IF_ERROR(wal->Recover());
  return wal;
}

void Wal::Log(const std::string& message) const {
  if (options_.log) {
    options_.log(message);
  }
}

Status Wal::Recover() {
  TM_RETURN_IF_ERROR(fs_->CreateDirs(dir_));
  if (options_.lock_dir) {
    TM_ASSIGN_OR_RETURN(lock_, fs_->LockFile(fs::JoinPath(dir_, kLockFileName)));
  }

  // A *.wal.tmp is a segment whose creation did not finish; it never held
  // entries (records are written only after the rename).
  TM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir_));
  for (const std::string& name : names) {
    if (!EndsWith(name, kTempSuffix)) {
      continue;
    }
    TM_RETURN_IF_ERROR(fs_->Remove(fs::JoinPath(dir_, name)));
    recovery_.removed_temp_files.push_back(name);
    Log("wal: removed unfinished segment " + name + " in " + dir_);
  }
  if (!recovery_.removed_temp_files.empty()) {
    TM_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  }

  TM_ASSIGN_OR_RETURN(std::vector<SegmentName> files, ListSegmentFiles(fs_, dir_));
  if (files.empty()) {
    const uint64_t first = options_.initial_index;
    TM_ASSIGN_OR_RETURN(active_, SegmentWriter::Create(fs_, dir_, 1, first, options_.segment_size));
    segments_.push_back(Segment{active_->path(), 1, first, first - 1, kSegmentHeaderSize, false});
    first_index_.store(first);
    last_index_.store(first - 1);
    synced_index_.store(first - 1);
    active_durable_end_ = kSegmentHeaderSize;
    recovery_.segment_count = 1;
    recovery_.first_index = first;
    recovery_.last_index = first - 1;
    return Status::Ok();
  }

  uint64_t expected = 0;  // next index we expect to read
  for (size_t i = 0; i < files.size(); ++i) {
    const SegmentName& file = files[i];
    const bool is_last = i + 1 == files.size();
    if (i > 0 && file.sequence == files[i - 1].sequence) {
      return CorruptionError("wal: two segments with sequence " + std::to_string(file.sequence) +
                             ": " + files[i - 1].name + " and " + file.name);
    }
    const std::string path = fs::JoinPath(dir_, file.name);
    TM_ASSIGN_OR_RETURN(std::unique_ptr<SegmentReader> reader, SegmentReader::Open(fs_, path));
    const SegmentHeader header = reader->header();
    if (header.sequence != file.sequence || header.first_index != file.first_index) {
      return CorruptionError("wal: header of " + file.name + " says sequence " +
                             std::to_string(header.sequence) + ", first index " +
                             std::to_string(header.first_index) +
                             ", which does not match its name");
    }
    if (i > 0 && header.first_index != expected) {
      return CorruptionError("wal: index gap between " + files[i - 1].name + " and " + file.name +
                             ": the first ends at index " + std::to_string(expected - 1) +
                             ", the second starts at " + std::to_string(header.first_index));
    }
    expected = header.first_index;
    for (;;) {
      TM_ASSIGN_OR_RETURN(std::optional<Entry> entry, reader->Next());
      if (!entry) {
        break;
      }
      if (entry->index != expected) {
        return CorruptionError("wal: index discontinuity in " + file.name + " at offset " +
                               std::to_string(reader->last_record_offset()) + ": expected index " +
                               std::to_string(expected) + ", found " +
                               std::to_string(entry->index));
      }
      ++expected;
    }
    const uint64_t valid_end = reader->valid_end();
    TM_ASSIGN_OR_RETURN(uint64_t data_end, reader->EndOfNonZeroData(valid_end));

    if (!is_last) {
      // Sealed segments were synced in full before their successor existed:
      // nothing in them may be torn.
      TM_RETURN_IF_ERROR(reader->TailError());
      if (data_end > valid_end) {
        return CorruptionError("wal: unexpected data after the last record of sealed segment " +
                               file.name + " at offset " + std::to_string(valid_end));
      }
      segments_.push_back(
          Segment{path, file.sequence, file.first_index, expected - 1, valid_end, true});
      continue;
    }

    if (reader->end_kind() == SegmentReader::EndKind::kTorn || data_end > valid_end) {
      recovery_.tail_truncated = true;
      recovery_.tail_file = file.name;
      recovery_.tail_offset = valid_end;
      recovery_.tail_reason = reader->end_kind() == SegmentReader::EndKind::kTorn
                                  ? reader->end_reason()
                                  : "zero-filled record header followed by non-zero data";
      recovery_.discarded_bytes = data_end > valid_end ? data_end - valid_end : 0;
      Log("wal: truncated torn tail of " + file.name + " at offset " + std::to_string(valid_end) +
          " (" + recovery_.tail_reason + "); " + std::to_string(recovery_.discarded_bytes) +
          " bytes discarded; last index is " + std::to_string(expected - 1));
    }
    reader.reset();
    // Always cut at valid_end (also when the tail looked clean) and re-zero
    // the rest, so new records are never followed by stale bytes.
    TM_ASSIGN_OR_RETURN(active_,
                        SegmentWriter::Reopen(fs_, path, header, valid_end, options_.segment_size));
    segments_.push_back(
        Segment{path, file.sequence, file.first_index, expected - 1, valid_end, false});
    active_durable_end_ = valid_end;
  }

  first_index_.store(segments_.front().first_index);
  last_index_.store(expected - 1);
  synced_index_.store(expected - 1);
  recovery_.segment_count = segments_.size();
  recovery_.first_index = segments_.front().first_index;
  recovery_.last_index = expected - 1;
  return Status::Ok();
}

Status Wal::CheckWritable() const {
  if (!poisoned_.ok()) {
    return poisoned_;
  }
  if (closed_ || active_ == nullptr) {
    return FailedPreconditionError("wal: " + dir_ + " is closed");
  }
  return Status::Ok();
}

Status Wal::Poison(const Status& cause) {
  Status poisoned(cause.code(), "wal: " + dir_ +
                                    " is poisoned by a failed write or sync (restart to recover "
                                    "from the durable log): " +
                                    cause.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    poisoned_ = poisoned;
  }
  Log(poisoned.message());
  return poisoned;
}

Status Wal::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return poisoned_;
}

Status Wal::Append(const Entry& entry) {
  return AppendBatch(std::span<const Entry>(&entry, 1));
}

Status Wal::AppendBatch(std::span<const Entry> entries) {
  TM_RETURN_IF_ERROR(CheckWritable());
  const uint64_t last = last_index();
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.index != last + 1 + i) {
      return InvalidArgumentError("wal: append of index " + std::to_string(e.index) +
                                  ", expected " + std::to_string(last + 1 + i) +
                                  " (indexes must be contiguous)");
    }
    if (e.payload.size() > kMaxEntryPayload) {
      return InvalidArgumentError("wal: entry " + std::to_string(e.index) + " has a payload of " +
                                  std::to_string(e.payload.size()) + " bytes; the maximum is " +
                                  std::to_string(kMaxEntryPayload));
    }
  }
  for (const Entry& e : entries) {
    TM_RETURN_IF_ERROR(AppendOne(e));
  }
  return Status::Ok();
}

Status Wal::AppendOne(const Entry& entry) {
  if (active_->size() >= options_.segment_size && active_->size() > kSegmentHeaderSize) {
    TM_RETURN_IF_ERROR(Rotate());
  }
  active_->AddEntry(entry);
  last_index_.store(entry.index, std::memory_order_release);
  if (active_->buffered_bytes() >= options_.flush_threshold) {
    Status s = active_->Flush();
    if (!s.ok()) {
      return Poison(s);
    }
  }
  return Status::Ok();
}

Status Wal::Rotate() {
  // The full segment must be durable before its successor exists: recovery
  // tolerates a torn tail only in the last segment.
  Status s = active_->Sync();
  if (!s.ok()) {
    return Poison(s);
  }
  const uint64_t last = last_index();
  const uint64_t end = active_->size();
  const uint64_t next_sequence = active_->header().sequence + 1;
  s = active_->Close();
  if (!s.ok()) {
    return Poison(s);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Segment& current = segments_.back();
    current.sealed = true;
    current.last_index = last;
    current.durable_end = end;
    synced_index_.store(last, std::memory_order_release);
  }
  Result<std::unique_ptr<SegmentWriter>> created =
      SegmentWriter::Create(fs_, dir_, next_sequence, last + 1, options_.segment_size);
  if (!created.ok()) {
    return Poison(created.status());
  }
  active_ = std::move(*created);
  active_durable_end_ = kSegmentHeaderSize;
  std::lock_guard<std::mutex> lock(mu_);
  segments_.push_back(
      Segment{active_->path(), next_sequence, last + 1, last, kSegmentHeaderSize, false});
  return Status::Ok();
}

Status Wal::Flush() {
  TM_RETURN_IF_ERROR(CheckWritable());
  Status s = active_->Flush();
  if (!s.ok()) {
    return Poison(s);
  }
  return Status::Ok();
}

Status Wal::Sync() {
  TM_RETURN_IF_ERROR(CheckWritable());
  const uint64_t last = last_index();
  const uint64_t end = active_->size();
  if (end == active_durable_end_) {
    return Status::Ok();  // nothing new since the last sync
  }
  Status s = active_->Sync();
  if (!s.ok()) {
    return Poison(s);
  }
  active_durable_end_ = end;
  std::lock_guard<std::mutex> lock(mu_);
  // durable_end before synced_index: a reader that sees the new index must
  // also see the bytes that hold it (both are read under mu_).
  segments_.back().durable_end = end;
  synced_index_.store(last, std::memory_order_release);
  return Status::Ok();
}

Status Wal::Close() {
  if (!poisoned_.ok()) {
    return poisoned_;
  }
  if (closed_) {
    return Status::Ok();
  }
  TM_RETURN_IF_ERROR(Sync());
  closed_ = true;
  return active_->Close();
}

std::vector<SegmentInfo> Wal::Segments() const {
  const uint64_t last = last_index();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SegmentInfo> out;
  out.reserve(segments_.size());
  for (const Segment& s : segments_) {
    out.push_back(SegmentInfo{s.path, s.sequence, s.first_index,
                              s.sealed ? s.last_index : std::max(last, s.first_index - 1),
                              s.sealed});
  }
  return out;
}

Status Wal::ReleaseBefore(uint64_t index) {
  // Releases are serialized and go oldest first, one segment at a time: the
  // files on disk must always be a contiguous run of segments. A removal that
  // fails puts its segment back, so a later call cannot remove a newer
  // segment while an older one is still on disk (that would be an index gap
  // at the next Open).
  std::lock_guard<std::mutex> release_lock(release_mu_);
  for (;;) {
    Segment doomed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // segments_[1].first_index <= index  <=>  every entry of segments_[0] < index.
      if (segments_.size() < 2 || segments_[1].first_index > index) {
        break;
      }
      doomed = segments_.front();
      segments_.pop_front();
      first_index_.store(segments_.front().first_index, std::memory_order_release);
    }
    Status s = fs_->Remove(doomed.path);
    if (!s.ok() && s.code() != Code::kNotFound) {
      std::lock_guard<std::mutex> lock(mu_);
      segments_.push_front(doomed);
      first_index_.store(doomed.first_index, std::memory_order_release);
      return s;
    }
    // Make each removal durable before the next, so a crash leaves a suffix.
    TM_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  }
  return Status::Ok();
}

Status Wal::ReadFrom(uint64_t first_index, const std::function<Status(const Entry&)>& fn) const {
  struct Planned {
    std::unique_ptr<fs::RandomAccessFile> file;
    std::string name;
    uint64_t first_index;
    uint64_t last_index;
    uint64_t limit;
  };
  std::vector<Planned> plan;
  uint64_t upper;
  {
    std::lock_guard<std::mutex> lock(mu_);
    upper = synced_index_.load(std::memory_order_acquire);
    const uint64_t oldest = segments_.front().first_index;
    if (first_index < oldest) {
      return OutOfRangeError("wal: entry " + std::to_string(first_index) +
                             " has been released; the oldest retained entry is " +
                             std::to_string(oldest));
    }
    if (first_index > upper) {
      return Status::Ok();
    }
    // Files are opened under the lock so a concurrent ReleaseBefore cannot
    // unlink them between planning and reading (an open file stays readable).
    for (const Segment& s : segments_) {
      const uint64_t last = s.sealed ? s.last_index : upper;
      if (last < first_index || s.first_index > upper || last < s.first_index) {
        continue;
      }
      TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::RandomAccessFile> file,
                          fs_->NewRandomAccessFile(s.path));
      plan.push_back(Planned{std::move(file), std::string(fs::Basename(s.path)), s.first_index,
                             last, s.durable_end});
    }
  }

  for (Planned& p : plan) {
    TM_ASSIGN_OR_RETURN(std::unique_ptr<SegmentReader> reader,
                        SegmentReader::Open(std::move(p.file), p.limit));
    uint64_t expected = p.first_index;
    while (expected <= p.last_index) {
      TM_ASSIGN_OR_RETURN(std::optional<Entry> entry, reader->Next());
      if (!entry) {
        break;
      }
      if (entry->index != expected) {
        return CorruptionError("wal: index discontinuity in " + p.name + " at offset " +
                               std::to_string(reader->last_record_offset()) + ": expected index " +
                               std::to_string(expected) + ", found " +
                               std::to_string(entry->index));
      }
      ++expected;
      if (entry->index >= first_index) {
        TM_RETURN_IF_ERROR(fn(*entry));
      }
    }
    if (expected <= p.last_index) {
      TM_RETURN_IF_ERROR(reader->TailError());
      return CorruptionError("wal: " + p.name + " ends at index " + std::to_string(expected - 1) +
                             " at offset " + std::to_string(reader->valid_end()) +
                             "; expected entries up to " + std::to_string(p.last_index));
    }
  }
  return Status::Ok();
}

}  // namespace tidemark::wal
