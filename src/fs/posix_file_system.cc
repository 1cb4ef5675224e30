#include "fs/posix_file_system.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace tidemark::fs {
namespace {

// strerror_r has two signatures (GNU returns char*, XSI returns int); these
// overloads accept either without #ifdefs. strerror() itself is not
// thread-safe.
[[maybe_unused]] const char* StrErrorResult(int rc, const char* buf) {
  return rc == 0 ? buf : "unknown error";
}
[[maybe_unused]] const char* StrErrorResult(const char* msg, const char* /*buf*/) {
  return msg;
}

std::string ErrnoMessage(int err) {
  char buf[256] = {0};
  return StrErrorResult(strerror_r(err, buf, sizeof(buf)), buf);
}

Status ClosedError(std::string_view op, const std::string& path) {
  return FailedPreconditionError("fs: " + std::string(op) + " " + path + ": file is closed");
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t offset)
      : path_(std::move(path)), fd_(fd), offset_(offset) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) {
      ::close(fd_);  // no sync; errors deliberately ignored (see Close)
    }
  }
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;
  PosixWritableFile(PosixWritableFile&&) = delete;
  PosixWritableFile& operator=(PosixWritableFile&&) = delete;

  Status Append(std::string_view data) override {
    if (fd_ < 0) {
      return ClosedError("append", path_);
    }
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(offset_));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return PosixError("write", path_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
      offset_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Flush() override {
    if (fd_ < 0) {
      return ClosedError("flush", path_);
    }
    return Status::Ok();  // nothing is buffered in user space
  }

  Status Sync() override {
    if (fd_ < 0) {
      return ClosedError("sync", path_);
    }
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) {
        return PosixError("fdatasync", path_, errno);
      }
    }
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (fd_ < 0) {
      return ClosedError("truncate", path_);
    }
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) {
        return PosixError("truncate", path_, errno);
      }
    }
    offset_ = size;
    return Status::Ok();
  }

  Status Preallocate(uint64_t size) override {
    if (fd_ < 0) {
      return ClosedError("preallocate", path_);
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return PosixError("stat", path_, errno);
    }
    const auto current = static_cast<uint64_t>(st.st_size);
    if (size <= current) {
      return Status::Ok();
    }
    int rc;
    do {
      rc = ::fallocate(fd_, 0, static_cast<off_t>(current), static_cast<off_t>(size - current));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      return Status::Ok();
    }
    const int err = errno;
    if (err != EOPNOTSUPP && err != ENOSYS && err != EINVAL) {
      return PosixError("fallocate", path_, err);
    }
    // The file system cannot reserve blocks; a sparse extension still gives
    // the zero-filled, fixed-size file the callers rely on.
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) {
        return PosixError("truncate", path_, errno);
      }
    }
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) {
      return Status::Ok();
    }
    const int fd = fd_;
    fd_ = -1;
    // Never retry close(): on Linux the descriptor is released even on EINTR.
    if (::close(fd) != 0 && errno != EINTR) {
      return PosixError("close", path_, errno);
    }
    return Status::Ok();
  }

  uint64_t offset() const override { return offset_; }
  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  int fd_;
  uint64_t offset_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }
  PosixRandomAccessFile(const PosixRandomAccessFile&) = delete;
  PosixRandomAccessFile& operator=(const PosixRandomAccessFile&) = delete;
  PosixRandomAccessFile(PosixRandomAccessFile&&) = delete;
  PosixRandomAccessFile& operator=(PosixRandomAccessFile&&) = delete;

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) {
          continue;
        }
        return PosixError("read", path_, errno);
      }
      if (r == 0) {
        break;  // end of file
      }
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Result<uint64_t> Size() const override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return PosixError("stat", path_, errno);
    }
    return static_cast<uint64_t>(st.st_size);
  }

  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the last fd drops the flock
  PosixFileLock(const PosixFileLock&) = delete;
  PosixFileLock& operator=(const PosixFileLock&) = delete;
  PosixFileLock(PosixFileLock&&) = delete;
  PosixFileLock& operator=(PosixFileLock&&) = delete;
  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  const int fd_;
};

int OpenRetry(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

Status PosixError(std::string_view op, const std::string& path, int err) {
  std::string msg = "fs: " + std::string(op) + " " + path + ": " + ErrnoMessage(err);
  switch (err) {
    case ENOENT:
      return NotFoundError(std::move(msg));
    case ENOSPC:
    case EDQUOT:
      return Status(Code::kResourceExhausted, std::move(msg));
    default:
      return IoError(std::move(msg));
  }
}

PosixFileSystem* PosixFileSystem::Default() {
  // Never destroyed, so it stays usable from other static destructors.
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
  static PosixFileSystem* fs = new PosixFileSystem();
  return fs;
}

Result<std::unique_ptr<WritableFile>> PosixFileSystem::NewWritableFile(const std::string& path) {
  const int fd = OpenRetry(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    return PosixError("open", path, errno);
  }
  return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(path, fd, 0));
}

Result<std::unique_ptr<WritableFile>> PosixFileSystem::ReopenWritableFile(const std::string& path,
                                                                          uint64_t offset) {
  const int fd = OpenRetry(path, O_WRONLY);
  if (fd < 0) {
    return PosixError("open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return PosixError("stat", path, err);
  }
  if (offset > static_cast<uint64_t>(st.st_size)) {
    ::close(fd);
    return InvalidArgumentError("fs: reopen " + path + ": offset " + std::to_string(offset) +
                                " is beyond the file size " + std::to_string(st.st_size));
  }
  return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(path, fd, offset));
}

Result<std::unique_ptr<RandomAccessFile>> PosixFileSystem::NewRandomAccessFile(
    const std::string& path) {
  const int fd = OpenRetry(path, O_RDONLY);
  if (fd < 0) {
    return PosixError("open", path, errno);
  }
  return std::unique_ptr<RandomAccessFile>(std::make_unique<PosixRandomAccessFile>(path, fd));
}

Result<uint64_t> PosixFileSystem::FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return PosixError("stat", path, errno);
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<bool> PosixFileSystem::Exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    return true;
  }
  if (errno == ENOENT || errno == ENOTDIR) {
    return false;
  }
  return PosixError("stat", path, errno);
}

Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return PosixError("rename", from + " to " + to, errno);
  }
  return Status::Ok();
}

Status PosixFileSystem::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    return PosixError("remove", path, errno);
  }
  return Status::Ok();
}

Status PosixFileSystem::RemoveDir(const std::string& path) {
  if (::rmdir(path.c_str()) != 0) {
    return PosixError("rmdir", path, errno);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> PosixFileSystem::ListDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    return PosixError("list", dir, ec.value());
  }
  std::vector<std::string> names;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) {
      return PosixError("list", dir, ec.value());
    }
    names.push_back(it->path().filename().string());
  }
  if (ec) {
    return PosixError("list", dir, ec.value());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixFileSystem::CreateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) {
    return Status::Ok();
  }
  const int err = errno;
  if (err == EEXIST) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::Ok();
    }
    return IoError("fs: mkdir " + dir + ": exists and is not a directory");
  }
  return PosixError("mkdir", dir, err);
}

Status PosixFileSystem::CreateDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return PosixError("mkdir -p", dir, ec.value());
  }
  return Status::Ok();
}

Status PosixFileSystem::SyncDir(const std::string& dir) {
  const int fd = OpenRetry(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    return PosixError("open dir", dir, errno);
  }
  Status s;
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      s = PosixError("fsync dir", dir, errno);
      break;
    }
  }
  ::close(fd);
  return s;
}

Result<std::unique_ptr<FileLock>> PosixFileSystem::LockFile(const std::string& path) {
  const int fd = OpenRetry(path, O_RDWR | O_CREAT, 0644);
  if (fd < 0) {
    return PosixError("open lock file", path, errno);
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return UnavailableError("fs: lock " + path +
                              ": already held by another process or handle (is another "
                              "tidemark server using this directory?)");
    }
    return PosixError("lock", path, err);
  }
  return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(path, fd));
}

}  // namespace tidemark::fs
