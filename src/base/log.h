#pragma once
// Structured JSON logging: one JSON object per line on stderr, e.g.
//   {"level":"info","ts":"2026-11-21T10:00:00.123Z","msg":"serving","address":"127.0.0.1:2379"}
// Field names follow etcd's zap output (level, ts, msg) so log tooling that
// reads etcd's logs reads ours.
//
// Thread-safety: all functions are thread-safe (one mutex around the write).

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tidemark::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError, kFatal };

// A field value: string, signed/unsigned integer, double or bool.
using Value = std::variant<std::string, int64_t, uint64_t, double, bool>;
using Field = std::pair<std::string_view, Value>;

void SetLevel(Level level);
Level GetLevel();
// Parses "debug" | "info" | "warn" | "error" (etcd's --log-level values).
bool ParseLevel(std::string_view text, Level* out);

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void Debug(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kDebug, m, f); }
inline void Info(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kInfo, m, f); }
inline void Warn(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kWarn, m, f); }
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kError, m, f); }
// Logs and aborts the process (fail-stop, e.g. after a failed fdatasync).
[[noreturn]] void Fatal(std::string_view m, std::initializer_list<Field> f = {});

}  // namespace tidemark::log
