#include "testing/fault_injection_fs.h"

#include <algorithm>

#include "fs/path.h"

namespace tidemark::test {
namespace {

// Directory keys must match whether they come from Dirname(file) or from a
// SyncDir argument written with a trailing slash.
std::string NormalizeDir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  return dir;
}

std::string DirOf(const std::string& path) {
  return NormalizeDir(fs::Dirname(path));
}

}  // namespace

const char* FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::kNewWritableFile:
      return "new-writable-file";
    case FaultOp::kReopenWritableFile:
      return "reopen-writable-file";
    case FaultOp::kNewRandomAccessFile:
      return "new-random-access-file";
    case FaultOp::kRead:
      return "read";
    case FaultOp::kAppend:
      return "append";
    case FaultOp::kFlush:
      return "flush";
    case FaultOp::kSync:
      return "sync";
    case FaultOp::kTruncate:
      return "truncate";
    case FaultOp::kPreallocate:
      return "preallocate";
    case FaultOp::kClose:
      return "close";
    case FaultOp::kFileSize:
      return "file-size";
    case FaultOp::kExists:
      return "exists";
    case FaultOp::kRename:
      return "rename";
    case FaultOp::kRemove:
      return "remove";
    case FaultOp::kRemoveDir:
      return "remove-dir";
    case FaultOp::kListDir:
      return "list-dir";
    case FaultOp::kCreateDir:
      return "create-dir";
    case FaultOp::kSyncDir:
      return "sync-dir";
    case FaultOp::kLockFile:
      return "lock-file";
    case FaultOp::kAny:
      return "any";
  }
  return "unknown";
}

// ---- Handles -------------------------------------------------------------------

class FaultInjectionFileSystem::FaultWritableFile final : public fs::WritableFile {
 public:
  FaultWritableFile(FaultInjectionFileSystem* owner, std::unique_ptr<fs::WritableFile> base,
                    uint64_t generation)
      : owner_(owner), base_(std::move(base)), generation_(generation), path_(base_->path()) {
    owner_->live_files_.insert(this);  // constructed with owner_->mu_ held
  }
  ~FaultWritableFile() override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    owner_->live_files_.erase(this);
  }
  FaultWritableFile(const FaultWritableFile&) = delete;
  FaultWritableFile& operator=(const FaultWritableFile&) = delete;
  FaultWritableFile(FaultWritableFile&&) = delete;
  FaultWritableFile& operator=(FaultWritableFile&&) = delete;

  Status Append(std::string_view data) override {
    return owner_->FileAppend(path_, generation_, base_.get(), data);
  }
  Status Flush() override {
    TM_RETURN_IF_ERROR(owner_->FileSimple(FaultOp::kFlush, path_, generation_));
    return base_->Flush();
  }
  Status Sync() override { return owner_->FileSync(path_, generation_, base_.get()); }
  Status Truncate(uint64_t size) override {
    return owner_->FileTruncate(path_, generation_, base_.get(), size);
  }
  Status Preallocate(uint64_t size) override {
    return owner_->FilePreallocate(path_, generation_, base_.get(), size);
  }
  Status Close() override {
    TM_RETURN_IF_ERROR(owner_->FileSimple(FaultOp::kClose, path_, generation_));
    return base_->Close();
  }
  uint64_t offset() const override { return base_->offset(); }
  // Tracks renames done through the owner, so later writes are attributed to
  // the file's current name. Guarded by the owner's mutex when it changes.
  const std::string& path() const override { return path_; }

 private:
  friend class FaultInjectionFileSystem;
  FaultInjectionFileSystem* const owner_;
  const std::unique_ptr<fs::WritableFile> base_;
  const uint64_t generation_;
  std::string path_;
};

class FaultInjectionFileSystem::FaultRandomAccessFile final : public fs::RandomAccessFile {
 public:
  FaultRandomAccessFile(FaultInjectionFileSystem* owner, std::unique_ptr<fs::RandomAccessFile> base,
                        uint64_t generation)
      : owner_(owner), base_(std::move(base)), generation_(generation) {}

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    TM_RETURN_IF_ERROR(owner_->FileSimple(FaultOp::kRead, base_->path(), generation_));
    return base_->Read(offset, n, scratch);
  }
  Result<uint64_t> Size() const override {
    TM_RETURN_IF_ERROR(owner_->FileSimple(FaultOp::kFileSize, base_->path(), generation_));
    return base_->Size();
  }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectionFileSystem* const owner_;
  const std::unique_ptr<fs::RandomAccessFile> base_;
  const uint64_t generation_;
};

// ---- Bookkeeping -----------------------------------------------------------------

FaultInjectionFileSystem::FaultInjectionFileSystem(fs::FileSystem* base,
                                                   FaultInjectionOptions options)
    : base_(base), options_(options) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

Status FaultInjectionFileSystem::CheckLocked(FaultOp op, const std::string& path) {
  ++calls_[static_cast<int>(op)];
  ++calls_[static_cast<int>(FaultOp::kAny)];
  if (!active_) {
    return IoError(std::string("fault injection: file system is inactive (power off): ") +
                   FaultOpName(op) + " " + path);
  }
  for (FaultOp target : {op, FaultOp::kAny}) {
    Failure& f = failures_[static_cast<int>(target)];
    if (f.remaining > 0) {
      --f.remaining;
      return Status(f.code, std::string("fault injection: injected ") + FaultOpName(op) +
                                " failure on " + path);
    }
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::CheckHandleLocked(FaultOp op, const std::string& path,
                                                   uint64_t generation) {
  if (generation != generation_) {
    ++calls_[static_cast<int>(op)];
    ++calls_[static_cast<int>(FaultOp::kAny)];
    return IoError(std::string("fault injection: stale handle (opened before a simulated power "
                               "loss): ") +
                   FaultOpName(op) + " " + path);
  }
  return CheckLocked(op, path);
}

void FaultInjectionFileSystem::SetActive(bool active) {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = active;
}

bool FaultInjectionFileSystem::IsActive() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

void FaultInjectionFileSystem::FailNext(FaultOp op, int count, Code code) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_[static_cast<int>(op)] = Failure{count, code == Code::kOk ? Code::kIoError : code};
}

void FaultInjectionFileSystem::ClearFailures() {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.fill(Failure{});
}

int64_t FaultInjectionFileSystem::CallCount(FaultOp op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_[static_cast<int>(op)];
}

std::optional<std::pair<uint64_t, uint64_t>> FaultInjectionFileSystem::LastUnsyncedWrite() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!last_write_) {
    return std::nullopt;
  }
  return std::make_pair(last_write_->offset, last_write_->length);
}

// ---- File operations ---------------------------------------------------------------

Status FaultInjectionFileSystem::FileSimple(FaultOp op, const std::string& path,
                                            uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckHandleLocked(op, path, generation);
}

Status FaultInjectionFileSystem::FileAppend(const std::string& path, uint64_t generation,
                                            fs::WritableFile* base, std::string_view data) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckHandleLocked(FaultOp::kAppend, path, generation));
  const uint64_t begin = base->offset();
  Status s = base->Append(data);
  const uint64_t end = base->offset();
  FileState& st = files_[path];
  st.pos = end;
  if (end > begin) {
    st.dirty_begin = std::min(st.dirty_begin, begin);
    st.size = std::max(st.size, end);
    last_write_ = LastWrite{path, begin, end - begin};
  }
  return s;
}

Status FaultInjectionFileSystem::FileSync(const std::string& path, uint64_t generation,
                                          fs::WritableFile* base) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckHandleLocked(FaultOp::kSync, path, generation));
  if (options_.forward_syncs) {
    TM_RETURN_IF_ERROR(base->Sync());
  } else {
    TM_RETURN_IF_ERROR(base->Flush());
  }
  FileState& st = files_[path];
  st.synced_size = st.size;
  st.dirty_begin = FileState::kClean;
  if (last_write_ && last_write_->path == path) {
    last_write_.reset();
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::FileTruncate(const std::string& path, uint64_t generation,
                                              fs::WritableFile* base, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckHandleLocked(FaultOp::kTruncate, path, generation));
  TM_RETURN_IF_ERROR(base->Truncate(size));
  FileState& st = files_[path];
  st.dirty_begin = std::min(st.dirty_begin, std::min(size, st.size));
  st.size = size;
  st.pos = size;
  if (last_write_ && last_write_->path == path &&
      last_write_->offset + last_write_->length > size) {
    last_write_.reset();
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::FilePreallocate(const std::string& path, uint64_t generation,
                                                 fs::WritableFile* base, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckHandleLocked(FaultOp::kPreallocate, path, generation));
  TM_RETURN_IF_ERROR(base->Preallocate(size));
  FileState& st = files_[path];
  st.size = std::max(st.size, size);
  return Status::Ok();
}

// ---- FileSystem operations -------------------------------------------------------------

Result<std::unique_ptr<fs::WritableFile>> FaultInjectionFileSystem::NewWritableFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kNewWritableFile, path));
  TM_ASSIGN_OR_RETURN(bool existed, base_->Exists(path));
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file, base_->NewWritableFile(path));
  // O_TRUNC of an existing file is modelled as durable; its old data is gone.
  files_[path] = FileState{};
  if (!existed) {
    dirs_[DirOf(path)].created.push_back(path);
  }
  if (last_write_ && last_write_->path == path) {
    last_write_.reset();
  }
  return std::unique_ptr<fs::WritableFile>(
      std::make_unique<FaultWritableFile>(this, std::move(file), generation_));
}

Result<std::unique_ptr<fs::WritableFile>> FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& path, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kReopenWritableFile, path));
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file,
                      base_->ReopenWritableFile(path, offset));
  auto it = files_.find(path);
  if (it == files_.end()) {
    TM_ASSIGN_OR_RETURN(uint64_t size, base_->FileSize(path));
    FileState st;
    st.size = size;
    st.synced_size = size;
    // Pre-existing bytes past `offset` are durable, but the model cannot
    // restore them once overwritten; they read back as zeros after a drop
    // only if something is written over them.
    it = files_.emplace(path, st).first;
  }
  it->second.pos = offset;
  return std::unique_ptr<fs::WritableFile>(
      std::make_unique<FaultWritableFile>(this, std::move(file), generation_));
}

Result<std::unique_ptr<fs::RandomAccessFile>> FaultInjectionFileSystem::NewRandomAccessFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kNewRandomAccessFile, path));
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::RandomAccessFile> file, base_->NewRandomAccessFile(path));
  return std::unique_ptr<fs::RandomAccessFile>(
      std::make_unique<FaultRandomAccessFile>(this, std::move(file), generation_));
}

Result<uint64_t> FaultInjectionFileSystem::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kFileSize, path));
  return base_->FileSize(path);
}

Result<bool> FaultInjectionFileSystem::Exists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kExists, path));
  return base_->Exists(path);
}

Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kRename, from + " -> " + to));
  TM_RETURN_IF_ERROR(base_->Rename(from, to));
  auto it = files_.find(from);
  if (it != files_.end()) {
    FileState st = it->second;
    files_.erase(it);
    files_[to] = st;
  } else {
    files_.erase(to);  // replaced by an untracked (durable) file
  }
  if (last_write_) {
    if (last_write_->path == from) {
      last_write_->path = to;
    } else if (last_write_->path == to) {
      last_write_.reset();
    }
  }
  for (FaultWritableFile* f : live_files_) {
    if (f->path_ == from) {
      f->path_ = to;
    }
  }
  dirs_[DirOf(to)].renames.emplace_back(from, to);
  return Status::Ok();
}

Status FaultInjectionFileSystem::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kRemove, path));
  TM_RETURN_IF_ERROR(base_->Remove(path));
  files_.erase(path);
  if (last_write_ && last_write_->path == path) {
    last_write_.reset();
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::RemoveDir(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kRemoveDir, path));
  return base_->RemoveDir(path);
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kListDir, dir));
  return base_->ListDir(dir);
}

Status FaultInjectionFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kCreateDir, dir));
  return base_->CreateDir(dir);
}

Status FaultInjectionFileSystem::CreateDirs(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kCreateDir, dir));
  return base_->CreateDirs(dir);
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kSyncDir, dir));
  if (options_.forward_syncs) {
    TM_RETURN_IF_ERROR(base_->SyncDir(dir));
  }
  dirs_.erase(NormalizeDir(dir));
  return Status::Ok();
}

Result<std::unique_ptr<fs::FileLock>> FaultInjectionFileSystem::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  TM_RETURN_IF_ERROR(CheckLocked(FaultOp::kLockFile, path));
  return base_->LockFile(path);
}

// ---- Power loss -------------------------------------------------------------------------

Status FaultInjectionFileSystem::ZeroRangeLocked(const std::string& path, uint64_t begin,
                                                 uint64_t end) {
  if (end <= begin) {
    return Status::Ok();
  }
  TM_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> f, base_->ReopenWritableFile(path, begin));
  TM_RETURN_IF_ERROR(f->Append(std::string(static_cast<size_t>(end - begin), '\0')));
  return f->Close();
}

Status FaultInjectionFileSystem::TearLastWrite(uint64_t bytes, TearMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!last_write_ || last_write_->length == 0) {
    return FailedPreconditionError("fault injection: no unsynced append to tear");
  }
  const LastWrite lw = *last_write_;
  auto it = files_.find(lw.path);
  if (it == files_.end()) {
    return FailedPreconditionError("fault injection: file of the last append is gone: " + lw.path);
  }
  FileState& st = it->second;
  const uint64_t write_end = lw.offset + lw.length;
  if (mode == TearMode::kKeepPrefix) {
    const uint64_t keep_end = lw.offset + std::min(bytes, lw.length);
    st.synced_size = std::max(st.synced_size, keep_end);
    st.dirty_begin = keep_end < write_end ? keep_end : FileState::kClean;
  } else {
    const uint64_t hit = lw.offset + std::min(bytes, lw.length - 1);
    const uint64_t sector = hit / kSectorSize * kSectorSize;
    const uint64_t zero_begin = std::max(sector, lw.offset);
    const uint64_t zero_end = std::min(sector + kSectorSize, write_end);
    TM_RETURN_IF_ERROR(ZeroRangeLocked(lw.path, zero_begin, zero_end));
    st.synced_size = std::max(st.synced_size, write_end);
    st.dirty_begin = FileState::kClean;
  }
  last_write_.reset();
  return Status::Ok();
}

Status FaultInjectionFileSystem::DropUnsyncedData() {
  std::lock_guard<std::mutex> lock(mu_);
  Status first_error;
  auto note = [&first_error](const Status& s) {
    if (!s.ok() && first_error.ok()) {
      first_error = s;
    }
  };

  for (const auto& [path, st] : files_) {
    if (st.dirty_begin == FileState::kClean && st.size == st.synced_size) {
      continue;
    }
    Result<bool> exists = base_->Exists(path);
    if (!exists.ok()) {
      note(exists.status());
      continue;
    }
    if (!*exists) {
      continue;
    }
    const uint64_t cut = std::min(st.dirty_begin, st.synced_size);
    Result<std::unique_ptr<fs::WritableFile>> f = base_->ReopenWritableFile(path, 0);
    if (!f.ok()) {
      note(f.status());
      continue;
    }
    // Truncate then re-extend: the lost range reads back as zeros.
    note((*f)->Truncate(cut));
    note((*f)->Preallocate(st.synced_size));
    if (options_.forward_syncs) {
      note((*f)->Sync());
    }
    note((*f)->Close());
  }

  for (auto& [dir, ds] : dirs_) {
    for (auto r = ds.renames.rbegin(); r != ds.renames.rend(); ++r) {
      Result<bool> exists = base_->Exists(r->second);
      if (exists.ok() && *exists) {
        note(base_->Rename(r->second, r->first));
      }
    }
    for (const std::string& path : ds.created) {
      Result<bool> exists = base_->Exists(path);
      if (exists.ok() && *exists) {
        note(base_->Remove(path));
      }
    }
    if (options_.forward_syncs) {
      note(base_->SyncDir(dir));
    }
  }

  files_.clear();
  dirs_.clear();
  last_write_.reset();
  ++generation_;
  return first_error;
}

}  // namespace tidemark::test
