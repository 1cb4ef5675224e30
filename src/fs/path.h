#pragma once
// Small path helpers for '/'-separated POSIX paths. Pure string functions;
// they never touch the file system. Thread-safe.

#include <string>
#include <string_view>

namespace tidemark::fs {

// "a" + "b" -> "a/b"; "a/" + "b" -> "a/b"; "" + "b" -> "b".
inline std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') {
    out.push_back('/');
  }
  out.append(name);
  return out;
}

// The last component: "/x/y.wal" -> "y.wal"; "y.wal" -> "y.wal".
inline std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Everything before the last '/': "/x/y" -> "/x"; "/y" -> "/"; "y" -> ".".
inline std::string Dirname(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) {
    return ".";
  }
  if (slash == 0) {
    return "/";
  }
  return std::string(path.substr(0, slash));
}

}  // namespace tidemark::fs
