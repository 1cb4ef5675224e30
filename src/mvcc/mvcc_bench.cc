// mvcc_bench: rough throughput/latency numbers for the MVCC store on a real
// directory. Not a test; run by hand:
//   build/src/mvcc/mvcc_bench [keys=100000] [versions=3] [value_bytes=256]

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "base/check.h"
#include "mvcc/store.h"
#include "mvcc/write_txn.h"
#include "storage/engine.h"

using namespace tidemark;  // NOLINT: a small tool

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string Key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "/bench/key%08d", i);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const int keys = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int versions = argc > 2 ? std::atoi(argv[2]) : 3;
  const int value_bytes = argc > 3 ? std::atoi(argv[3]) : 256;
  std::string tmpl = (std::filesystem::temp_directory_path() / "tm-mvcc-bench-XXXXXX").string();
  TM_CHECK(mkdtemp(tmpl.data()) != nullptr);
  const std::string dir = tmpl + "/db";

  auto engine = storage::Engine::Open(dir, {});
  TM_CHECK(engine.ok());
  auto store_r = mvcc::Store::Open(engine->get());
  TM_CHECK(store_r.ok());
  mvcc::Store& store = **store_r;
  const std::string value(value_bytes, 'v');
  uint64_t index = 0;

  // 1. Puts, one per WriteTxn (the apply path without our WAL).
  auto t0 = Clock::now();
  for (int v = 0; v < versions; ++v) {
    for (int i = 0; i < keys; ++i) {
      auto txn = store.BeginWrite();
      TM_CHECK(txn->Put(Key(i), value, 0).ok());
      TM_CHECK(txn->Commit(++index, nullptr).ok());
    }
  }
  auto put_time = Clock::now() - t0;
  const double puts = static_cast<double>(keys) * versions;
  std::printf("puts: %.0f in %.0f ms = %.0f puts/s (%.2f us/put)\n", puts, Ms(put_time),
              puts / (Ms(put_time) / 1000), Ms(put_time) * 1000 / puts);

  // 2. Point reads at latest and at an old revision.
  const int reads = std::min(keys, 50000);
  for (int64_t rev : {int64_t{0}, int64_t{keys + 1}}) {
    t0 = Clock::now();
    for (int i = 0; i < reads; ++i) {
      mvcc::RangeRequest r;
      r.key = Key((i * 7919) % keys);
      r.revision = rev;
      auto res = store.Range(r);
      TM_CHECK(res.ok() && res->kvs.size() == 1);
    }
    auto d = Clock::now() - t0;
    std::printf("point range (rev %s): %.2f us/op\n", rev == 0 ? "latest" : "old",
                Ms(d) * 1000 / reads);
  }

  // 3. Full-range count and a limit-10 range (count still scans everything).
  mvcc::RangeRequest all;
  all.key = "/bench/";
  all.range_end = "/bench0";
  all.count_only = true;
  t0 = Clock::now();
  auto counted = store.Range(all);
  TM_CHECK(counted.ok() && counted->count == keys);
  std::printf("count_only over %d keys: %.1f ms\n", keys, Ms(Clock::now() - t0));
  all.count_only = false;
  all.limit = 10;
  t0 = Clock::now();
  TM_CHECK(store.Range(all).ok());
  std::printf("limit 10 (+count) over %d keys: %.1f ms\n", keys, Ms(Clock::now() - t0));

  // 4. HashKV and size.
  t0 = Clock::now();
  auto hash = store.HashKV(0);
  TM_CHECK(hash.ok());
  std::printf("HashKV over %.0f versions: %.1f ms\n", puts, Ms(Clock::now() - t0));
  auto size = (*engine)->ApproximateSizeBytes();
  TM_CHECK(size.ok());
  std::printf("approximate size before flush: %.1f MiB\n", *size / 1048576.0);
  t0 = Clock::now();
  TM_CHECK((*engine)->Flush().ok());
  std::printf("flush: %.1f ms\n", Ms(Clock::now() - t0));

  // 5. Compaction while writing: worst commit latency.
  t0 = Clock::now();
  TM_CHECK(store.Compact(store.current_revision(), ++index).ok());
  std::vector<double> lat;
  int i = 0;
  while (store.physically_compacted_revision() < store.compact_revision()) {
    auto s = Clock::now();
    auto txn = store.BeginWrite();
    TM_CHECK(txn->Put(Key(i++ % keys), value, 0).ok());
    TM_CHECK(txn->Commit(++index, nullptr).ok());
    lat.push_back(Ms(Clock::now() - s));
  }
  TM_CHECK(store.WaitForCompaction().ok());
  auto compact_time = Clock::now() - t0;
  std::sort(lat.begin(), lat.end());
  std::printf(
      "compaction of %.0f versions: %.0f ms; %zu concurrent commits, p50 %.3f ms, p99 %.3f ms, max "
      "%.3f ms\n",
      puts, Ms(compact_time), lat.size(), lat.empty() ? 0 : lat[lat.size() / 2],
      lat.empty() ? 0 : lat[lat.size() * 99 / 100], lat.empty() ? 0 : lat.back());
  t0 = Clock::now();
  TM_CHECK((*engine)->CompactRange().ok());
  auto after = (*engine)->ApproximateSizeBytes();
  std::printf("CompactRange: %.0f ms, size after: %.1f MiB\n", Ms(Clock::now() - t0),
              *after / 1048576.0);

  store_r->reset();
  TM_CHECK((*engine)->Close().ok());
  std::filesystem::remove_all(tmpl);
  return 0;
}
