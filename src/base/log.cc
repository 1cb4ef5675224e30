#include "base/log.h"

#include <sys/time.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace tidemark::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kFatal: return "fatal";
  }
  return "info";
}

void AppendEscaped(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendValue(std::string* out, const Value& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    AppendEscaped(out, *s);
  } else if (auto* i = std::get_if<int64_t>(&v)) {
    out->append(std::to_string(*i));
  } else if (auto* u = std::get_if<uint64_t>(&v)) {
    out->append(std::to_string(*u));
  } else if (auto* d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", *d);
    out->append(buf);
  } else if (auto* b = std::get_if<bool>(&v)) {
    out->append(*b ? "true" : "false");
  }
}

std::string Timestamp() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
Level GetLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool ParseLevel(std::string_view text, Level* out) {
  if (text == "debug") *out = Level::kDebug;
  else if (text == "info") *out = Level::kInfo;
  else if (text == "warn") *out = Level::kWarn;
  else if (text == "error") *out = Level::kError;
  else return false;
  return true;
}

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  line.reserve(128);
  line.append("{\"level\":\"").append(LevelName(level)).append("\",\"ts\":\"");
  line.append(Timestamp()).append("\",\"msg\":");
  AppendEscaped(&line, msg);
  for (const auto& [k, v] : fields) {
    line.push_back(',');
    AppendEscaped(&line, k);
    line.push_back(':');
    AppendValue(&line, v);
  }
  line.append("}\n");
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void Fatal(std::string_view m, std::initializer_list<Field> f) {
  Write(Level::kFatal, m, f);
  std::abort();
}

}  // namespace tidemark::log
