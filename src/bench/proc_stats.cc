#include "bench/proc_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace tidemark::bench {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return NotFoundError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

double LoadAvg1() {
  double v = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1)
      v = -1;
    std::fclose(f);
  }
  return v;
}

Result<double> ProcCpuSeconds(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  TM_ASSIGN_OR_RETURN(std::string stat, ReadFile(path));
  // The command name (field 2) may contain spaces; fields restart after ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos)
    return CorruptionError(path + ": no ')'");
  std::istringstream in(stat.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (in >> tok)
    f.push_back(tok);
  // After ')': f[0] is field 3 (state); utime is field 14, stime field 15.
  if (f.size() < 13)
    return CorruptionError(path + ": too few fields");
  double ticks = std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Result<uint64_t> ProcPeakRssBytes(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  TM_ASSIGN_OR_RETURN(std::string status, ReadFile(path));
  size_t pos = status.find("VmHWM:");
  if (pos == std::string::npos)
    return CorruptionError(path + ": no VmHWM");
  return static_cast<uint64_t>(std::strtoull(status.c_str() + pos + 6, nullptr, 10)) * 1024;
}

Result<int> FindListeningPid(int port) {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    auto text = ReadFile(table);
    if (!text.ok())
      continue;
    std::istringstream in(*text);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
      if (st != "0A")
        continue;  // LISTEN
      size_t colon = local.rfind(':');
      if (colon == std::string::npos)
        continue;
      if (std::strtol(local.c_str() + colon + 1, nullptr, 16) == port)
        inodes.insert(inode);
    }
  }
  if (inodes.empty())
    return NotFoundError("no listening socket on port " + std::to_string(port));
  DIR* proc = opendir("/proc");
  if (proc == nullptr)
    return NotFoundError("cannot open /proc");
  int found = -1;
  while (dirent* d = readdir(proc)) {
    int pid = std::atoi(d->d_name);
    if (pid <= 0)
      continue;
    std::string fd_dir = "/proc/" + std::string(d->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr)
      continue;
    while (dirent* fd = readdir(fds)) {
      char target[256];
      std::string link = fd_dir + "/" + fd->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0)
        continue;
      target[n] = '\0';
      std::string t(target);
      if (t.rfind("socket:[", 0) == 0 && inodes.count(t.substr(8, t.size() - 9)) > 0) {
        found = pid;
        break;
      }
    }
    closedir(fds);
    if (found > 0)
      break;
  }
  closedir(proc);
  if (found < 0)
    return NotFoundError("no visible process owns the socket on port " + std::to_string(port));
  return found;
}

}  // namespace tidemark::bench
