#include "testing/temp_dir.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

#include "base/check.h"
#include "fs/path.h"

namespace tidemark::test {

TempDir::TempDir() {
  const char* env = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): tests only
  std::string root = (env != nullptr && env[0] != '\0') ? env : "/tmp";
  while (root.size() > 1 && root.back() == '/') {
    root.pop_back();
  }
  std::string templ = root + "/tidemark-test-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const char* made = ::mkdtemp(buf.data());
  if (made == nullptr) {
    std::perror(templ.c_str());
  }
  TM_CHECK(made != nullptr);
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // best effort; leaking a temp dir is harmless
}

std::string TempDir::Join(std::string_view name) const {
  return fs::JoinPath(path_, name);
}

}  // namespace tidemark::test
