#pragma once
// Per-engine Open functions behind bench::OpenEngine (kv_engine.cc). Each is
// compiled only when its library was found (TM_BENCH_HAVE_* in CMake).
#include <memory>
#include <string>

#include "bench/engines/kv_engine.h"

namespace tidemark::bench {

Result<std::unique_ptr<KvEngine>> OpenTidemark(const std::string& dir, bool sync);
Result<std::unique_ptr<KvEngine>> OpenRocksDb(const std::string& dir, bool sync);
Result<std::unique_ptr<KvEngine>> OpenLevelDb(const std::string& dir, bool sync);
Result<std::unique_ptr<KvEngine>> OpenLmdb(const std::string& dir, bool sync);
Result<std::unique_ptr<KvEngine>> OpenSqlite(const std::string& dir, bool sync);

}  // namespace tidemark::bench
