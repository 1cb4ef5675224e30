#include "archive/object_store.h"

#include "archive/s3_object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace tidemark::archive {
namespace {

std::atomic<uint64_t> g_tmp_seq{0};

Status Errno(const std::string& what, const std::string& path) {
  return IoError("archive: " + what + " " + path + ": " + std::strerror(errno));
}

Status MkdirAll(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) return Status::Ok();
  auto slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) TM_RETURN_IF_ERROR(MkdirAll(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir", dir);
  return Status::Ok();
}

// fsync(2) of an existing file or directory (`extra_flags` O_DIRECTORY);
// errors name `what` and the path.
Status FsyncPath(const std::string& path, int extra_flags, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | extra_flags);
  if (fd < 0) return Errno("open " + what, path);
  int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return Errno("fsync " + what, path);
  return Status::Ok();
}

Status SyncDir(const std::string& dir) { return FsyncPath(dir, O_DIRECTORY, "dir"); }

bool ValidName(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find("..") != std::string::npos) return false;
  return true;
}

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(fd, data + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path);
    }
    off += static_cast<size_t>(w);
  }
  return Status::Ok();
}

// Copies everything from src_fd (at its current offset) to dst_fd, 1 MiB at a time.
Status CopyFd(int src_fd, const std::string& src, int dst_fd, const std::string& dst) {
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(src_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read", src);
    }
    if (n == 0) return Status::Ok();
    TM_RETURN_IF_ERROR(WriteAll(dst_fd, buf.data(), static_cast<size_t>(n), dst));
  }
}

// Copies file `src` to a new file `dst` (created, truncated), not fsynced.
Status CopyFile(const std::string& src, const std::string& dst, int create_flags) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("open", src);
  int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | create_flags, 0644);
  if (out < 0) {
    Status s = Errno("create", dst);
    ::close(in);
    return s;
  }
  Status s = CopyFd(in, src, out, dst);
  ::close(in);
  if (::close(out) != 0 && s.ok()) s = Errno("close", dst);
  return s;
}

// Reads the open file `fd` (named `path` in errors) to its end and closes
// it. One allocation of the file's size (chunks are up to ~8 MiB, read by
// several prefetch threads at once): no doubling growth.
Result<std::string> ReadFdAndClose(int fd, const std::string& path) {
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Errno("read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status FsyncFile(const std::string& path) { return FsyncPath(path, 0, "file"); }

}  // namespace

std::string DefaultScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

std::optional<uint64_t> FreeBytes(const std::string& dir) {
  struct statvfs fs;
  if (::statvfs(dir.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

Status ObjectStore::PutFile(const std::string& name, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  TM_ASSIGN_OR_RETURN(std::string data, ReadFdAndClose(fd, path));
  return Put(name, data);
}

Status ObjectStore::GetToFile(const std::string& name, const std::string& path) {
  TM_ASSIGN_OR_RETURN(std::string data, Get(name));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create", path);
  Status s = WriteAll(fd, data.data(), data.size(), path);
  if (::close(fd) != 0 && s.ok()) s = Errno("close", path);
  return s;
}

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const std::string& url,
                                                     const ObjectStoreOptions& options) {
  std::string path;
  if (url.rfind("file://", 0) == 0) {
    path = url.substr(7);
  } else if (!url.empty() && url.front() == '/') {
    path = url;
  } else if (url.rfind("s3://", 0) == 0) {
    S3Config c;
    TM_RETURN_IF_ERROR(ParseS3Url(url, &c.bucket, &c.prefix));
    c.endpoint = options.s3_endpoint;
    c.region = options.s3_region.empty() ? "us-east-1" : options.s3_region;
    c.path_style = options.s3_path_style;
    c.access_key = options.access_key;
    c.secret_key = options.secret_key;
    c.session_token = options.session_token;
    return NewS3ObjectStore(std::move(c));
  } else {
    return InvalidArgumentError("archive-url " + url +
                                ": expected file:///absolute/dir or s3://bucket/prefix");
  }
  if (path.empty() || path.front() != '/') {
    return InvalidArgumentError("archive-url " + url + ": the directory must be absolute");
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  TM_RETURN_IF_ERROR(MkdirAll(path));
  return std::unique_ptr<ObjectStore>(new DirObjectStore(path));
}

DirObjectStore::DirObjectStore(std::string root) : root_(std::move(root)) {}

Status DirObjectStore::TempPath(const std::string& name, std::string* tmp_path,
                                std::string* final_path) {
  if (!ValidName(name)) return InvalidArgumentError("archive: bad object name " + name);
  *final_path = root_ + "/" + name;
  std::string dir = final_path->substr(0, final_path->rfind('/'));
  TM_RETURN_IF_ERROR(MkdirAll(dir));
  *tmp_path = dir + "/.tmp-" + std::to_string(::getpid()) + "-" +
              std::to_string(g_tmp_seq.fetch_add(1));
  return Status::Ok();
}

Status DirObjectStore::WriteTemp(const std::string& name, std::string_view data,
                                 std::string* tmp_path, std::string* final_path) {
  TM_RETURN_IF_ERROR(TempPath(name, tmp_path, final_path));
  int fd = ::open(tmp_path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create", *tmp_path);
  Status s = WriteAll(fd, data.data(), data.size(), *tmp_path);
  if (s.ok() && ::fsync(fd) != 0) s = Errno("fsync", *tmp_path);
  ::close(fd);
  if (!s.ok()) ::unlink(tmp_path->c_str());
  return s;
}

Status DirObjectStore::Put(const std::string& name, std::string_view data) {
  std::string tmp, final_path;
  TM_RETURN_IF_ERROR(WriteTemp(name, data, &tmp, &final_path));
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    Status s = Errno("rename", final_path);
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(final_path.substr(0, final_path.rfind('/')));
}

Status DirObjectStore::PutIfAbsent(const std::string& name, std::string_view data) {
  std::string tmp, final_path;
  TM_RETURN_IF_ERROR(WriteTemp(name, data, &tmp, &final_path));
  // link(2) fails with EEXIST instead of replacing: an atomic create-only.
  int r = ::link(tmp.c_str(), final_path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (r != 0) {
    if (err == EEXIST) {
      return FailedPreconditionError("archive: object " + name + " already exists in " + url());
    }
    errno = err;
    return Errno("link", final_path);
  }
  return SyncDir(final_path.substr(0, final_path.rfind('/')));
}

Status DirObjectStore::PutFile(const std::string& name, const std::string& path) {
  std::string tmp, final_path;
  TM_RETURN_IF_ERROR(TempPath(name, &tmp, &final_path));
  // Same file system: a second name for the finished file, no copy. Else
  // (EXDEV, a file system without hard links, ...) a copy.
  if (::link(path.c_str(), tmp.c_str()) != 0) {
    if (errno == ENOENT && ::access(path.c_str(), F_OK) != 0) return Errno("open", path);
    Status s = CopyFile(path, tmp, O_EXCL);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  Status s = FsyncFile(tmp);
  if (s.ok() && ::rename(tmp.c_str(), final_path.c_str()) != 0) s = Errno("rename", final_path);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(final_path.substr(0, final_path.rfind('/')));
}

std::string DirObjectStore::LocalPath(const std::string& name) const {
  if (!ValidName(name)) return "";
  return root_ + "/" + name;
}

Status DirObjectStore::GetToFile(const std::string& name, const std::string& path) {
  if (!ValidName(name)) return InvalidArgumentError("archive: bad object name " + name);
  const std::string src = root_ + "/" + name;
  if (::access(src.c_str(), F_OK) != 0 && errno == ENOENT) {
    return NotFoundError("archive: object " + name + " not found in " + url());
  }
  return CopyFile(src, path, O_TRUNC);
}

Result<std::string> DirObjectStore::Get(const std::string& name) {
  if (!ValidName(name)) return InvalidArgumentError("archive: bad object name " + name);
  std::string path = root_ + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("archive: object " + name + " not found in " + url());
    return Errno("open", path);
  }
  return ReadFdAndClose(fd, path);
}

Status DirObjectStore::Delete(const std::string& name) {
  if (!ValidName(name)) return InvalidArgumentError("archive: bad object name " + name);
  std::string path = root_ + "/" + name;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("unlink", path);
  return Status::Ok();
}

Result<std::vector<ObjectInfo>> DirObjectStore::List(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  // Walk the tree below the deepest directory named by the prefix.
  std::string dir_part = prefix.substr(0, prefix.rfind('/') == std::string::npos
                                              ? 0
                                              : prefix.rfind('/') + 1);
  std::function<Status(const std::string&)> walk = [&](const std::string& rel) -> Status {
    std::string path = root_ + "/" + rel;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
      if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
      return Errno("opendir", path);
    }
    std::vector<std::pair<std::string, bool>> kids;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == ".." || n.rfind(".tmp-", 0) == 0) continue;
      kids.emplace_back(n, e->d_type == DT_DIR);
    }
    ::closedir(d);
    for (auto& [n, is_dir] : kids) {
      std::string child = rel + n;
      if (is_dir) {
        TM_RETURN_IF_ERROR(walk(child + "/"));
      } else if (child.rfind(prefix, 0) == 0) {
        struct stat st;
        if (::stat((root_ + "/" + child).c_str(), &st) != 0) continue;
        out.push_back({child, static_cast<uint64_t>(st.st_size)});
      }
    }
    return Status::Ok();
  };
  TM_RETURN_IF_ERROR(walk(dir_part));
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace tidemark::archive
