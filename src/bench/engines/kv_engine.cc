#include "bench/engines/kv_engine.h"

#include "bench/engines/engine_factories.h"

namespace tidemark::bench {
namespace {

struct Factory {
  const char* name;
  Result<std::unique_ptr<KvEngine>> (*open)(const std::string&, bool);
};

const std::vector<Factory>& Factories() {
  static const std::vector<Factory> kFactories = {
      {"tidemark", OpenTidemark}, {"rocksdb", OpenRocksDb},
#ifdef TM_BENCH_HAVE_LEVELDB
      {"leveldb", OpenLevelDb},
#endif
#ifdef TM_BENCH_HAVE_LMDB
      {"lmdb", OpenLmdb},
#endif
#ifdef TM_BENCH_HAVE_SQLITE
      {"sqlite", OpenSqlite},
#endif
  };
  return kFactories;
}

}  // namespace

std::vector<std::string> AvailableEngines() {
  std::vector<std::string> out;
  for (const auto& f : Factories())
    out.emplace_back(f.name);
  return out;
}

Result<std::unique_ptr<KvEngine>> OpenEngine(const std::string& name, const std::string& dir,
                                             bool sync) {
  for (const auto& f : Factories()) {
    if (name == f.name)
      return f.open(dir, sync);
  }
  std::string known;
  for (const auto& n : AvailableEngines())
    known += (known.empty() ? "" : ", ") + n;
  return InvalidArgumentError("unknown engine '" + name + "' (this build has: " + known + ")");
}

}  // namespace tidemark::bench
