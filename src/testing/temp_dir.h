#pragma once
// RAII temporary directory for tests: created under $TMPDIR (or /tmp) as
// "tidemark-test-XXXXXX" and removed recursively on destruction.
// Construction failure aborts the test binary (TM_CHECK): a test without its
// directory cannot do anything useful. Not thread-safe; not copyable.

#include <string>
#include <string_view>

namespace tidemark::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;

  // Absolute path, without a trailing slash.
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace tidemark::test
