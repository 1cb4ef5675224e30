#pragma once
// bench::KvEngine: the minimal key-value interface `tidemark bench engines`
// drives, with one adapter per embedded engine (RocksDB, LevelDB, LMDB,
// SQLite, and Tidemark's own WAL + MVCC store).
//
// `sync` = true: every write is durable (fdatasync or the engine's
// equivalent) before Put/Delete return; false: the engine's fastest
// non-durable mode (data survives a process crash at best).
//
// Thread safety: every method may be called from several threads at once;
// adapters whose engine allows only one writer serialize writes themselves
// (LMDB and SQLite internally, Tidemark with a mutex).
//
// Layering note: this directory is the one place outside src/storage that
// includes <rocksdb/...>; it is a measuring tool, never linked into the
// server's data path.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tidemark::bench {

class KvEngine {
 public:
  virtual ~KvEngine() = default;
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  // true and *value set if found.
  virtual Result<bool> Get(std::string_view key, std::string* value) = 0;
  virtual Status Delete(std::string_view key) = 0;
  // Flushes and closes; the engine is unusable after.
  virtual Status Close() = 0;
};

// Names compiled into this binary, in report order.
std::vector<std::string> AvailableEngines();

// Opens engine `name` in the empty directory `dir`. kInvalidArgument for an
// unknown or not-compiled-in name; the engine's error otherwise.
Result<std::unique_ptr<KvEngine>> OpenEngine(const std::string& name, const std::string& dir,
                                             bool sync);

}  // namespace tidemark::bench
