#pragma once
// ObjectStore: the archive target, a flat namespace of immutable-ish objects
// addressed by '/'-separated names relative to the archive root.
//
// Implementations: DirObjectStore (file:///dir; a local or NFS directory)
// and the S3 store (s3://bucket/prefix over libcurl SigV4,
// archive/s3_object_store.h).
//
// Durability: Put/PutIfAbsent return OK only once the object is durable in
// the target (dir: data fsynced, renamed/linked, directory fsynced).
// Atomicity: readers never see a partial object.
// Thread-safety: all methods are safe to call concurrently.
// Errors: kNotFound (Get/Head of a missing object), kAlreadyExists-like
// kFailedPrecondition from PutIfAbsent when the name exists, kIoError /
// kUnavailable for target failures (retryable).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tidemark::archive {

struct ObjectInfo {
  std::string name;
  uint64_t size = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Creates or replaces `name`.
  virtual Status Put(const std::string& name, std::string_view data) = 0;
  // Creates `name` only if it does not exist; kFailedPrecondition otherwise
  // (the fence against a second writer on the same timeline).
  virtual Status PutIfAbsent(const std::string& name, std::string_view data) = 0;
  virtual Result<std::string> Get(const std::string& name) = 0;
  virtual Status Delete(const std::string& name) = 0;

  // Large objects (base snapshots), with memory bounded by a constant:
  //
  // Creates or replaces `name` with the content of the local file `path`,
  // never holding the whole file in memory (the directory store hard-links
  // or copies it, S3 uploads it part by part). Same durability and
  // atomicity as Put. `path` must not change while this runs, nor
  // afterwards (the directory store may hard-link it; unlinking it is
  // fine). Errors as Put, plus kIoError naming `path` if it cannot be read.
  // The default reads the file into memory and calls Put (test stores).
  virtual Status PutFile(const std::string& name, const std::string& path);
  // Writes object `name` into the local file `path` (created or truncated,
  // not fsynced), streaming. kNotFound as Get; on any error `path` may hold
  // a partial copy that the caller removes. The default goes through Get.
  virtual Status GetToFile(const std::string& name, const std::string& path);
  // Where object `name` can be read in place on the local file system
  // (directory store), or "" when it must be fetched (GetToFile). The path
  // may name a missing file (object not found).
  virtual std::string LocalPath(const std::string& name) const { return ""; }

  // Every object whose name starts with `prefix`, sorted by name.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
  // Human-readable target ("file:///x", "s3://b/p").
  virtual std::string url() const = 0;
};

struct ObjectStoreOptions {
  // S3 only.
  std::string s3_endpoint;
  std::string s3_region = "us-east-1";
  bool s3_path_style = true;
  // Credentials; all empty = from the environment (s3_object_store.h).
  std::string access_key;
  std::string secret_key;
  std::string session_token;
};

// Where local scratch files go when no directory is given: $TMPDIR, or /tmp.
std::string DefaultScratchDir();
// Bytes available to unprivileged writers on the file system holding `dir`
// (statvfs f_bavail), or nullopt when it cannot be told.
std::optional<uint64_t> FreeBytes(const std::string& dir);

// file:///abs/dir (or a plain absolute path) -> DirObjectStore, creating the
// directory; s3://bucket/prefix -> S3 store. Errors: kInvalidArgument for
// unknown schemes or missing S3 credentials.
Result<std::unique_ptr<ObjectStore>> OpenObjectStore(const std::string& url,
                                                     const ObjectStoreOptions& options = {});

class DirObjectStore final : public ObjectStore {
 public:
  explicit DirObjectStore(std::string root);
  Status Put(const std::string& name, std::string_view data) override;
  Status PutIfAbsent(const std::string& name, std::string_view data) override;
  Result<std::string> Get(const std::string& name) override;
  Status Delete(const std::string& name) override;
  // link(2) of `path` to a temporary name in the target directory (a copy
  // when that fails, e.g. across file systems), fsync, rename, fsync dir.
  Status PutFile(const std::string& name, const std::string& path) override;
  Status GetToFile(const std::string& name, const std::string& path) override;
  std::string LocalPath(const std::string& name) const override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  std::string url() const override { return "file://" + root_; }

 private:
  Status TempPath(const std::string& name, std::string* tmp_path, std::string* final_path);
  Status WriteTemp(const std::string& name, std::string_view data, std::string* tmp_path,
                   std::string* final_path);
  const std::string root_;
};

}  // namespace tidemark::archive
