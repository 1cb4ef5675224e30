#pragma once
// Compactor: the background thread ("mvcc-compact") that physically removes
// what a compaction at revision C made unreachable:
//   * per key, every version older than the newest version <= C;
//   * that newest version too if it is a tombstone;
//   * history entries with revision < C.
// Versions with revision > C are never touched, so the compactor and the
// writer never write the same kv CF key. Work is done in batches of at most
// `batch_limit` deletions, each a separate engine write taking well under a
// millisecond, so writers are never stalled behind it.
//
// Restart safety: the scheduled revision is recorded in meta by
// Store::Compact; after a pass the compactor records meta
// "mvcc/compact_finished" = C. A Store that opens with finished < scheduled
// runs the pass again; passes are idempotent.
//
// Thread safety: all public methods are thread-safe.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <thread>

#include "base/status.h"
#include "storage/engine.h"

namespace tidemark::mvcc {

class Compactor {
 public:
  // `finished`: the compact revision already physically done (from meta; -1
  // if none). `halt_after_batches` < 0: never halt (testing hook).
  Compactor(storage::Engine* engine, size_t batch_limit, int64_t finished, int halt_after_batches);
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;
  Compactor(Compactor&&) = delete;
  Compactor& operator=(Compactor&&) = delete;
  ~Compactor();  // Stop()

  // Starts the thread (idempotent).
  void Start();
  // Asks for removal up to compact revision `rev` (later revisions supersede
  // earlier ones).
  void Schedule(int64_t rev);
  // Blocks until finished() >= rev. kUnavailable if stopped/halted/not
  // running first; the pass's error if it failed.
  Status Wait(int64_t rev);
  // Stops at the next batch boundary and joins. An unfinished pass resumes
  // when the next Store opens.
  void Stop();
  int64_t finished() const;

 private:
  void Run(const std::stop_token& stop);
  // One pass for `target`. kAborted if stopped or halted in between.
  Status Pass(int64_t target, const std::stop_token& stop);

  storage::Engine* const engine_;
  const size_t batch_limit_;
  const int halt_after_batches_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  int64_t target_;        // guarded by mu_
  int64_t finished_;      // guarded by mu_
  Status error_;          // guarded by mu_: last pass failure
  bool running_ = false;  // guarded by mu_
  bool halted_ = false;   // guarded by mu_
  std::jthread thread_;
};

}  // namespace tidemark::mvcc
