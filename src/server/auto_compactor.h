#pragma once
// Automatic compaction as etcd 3.4 does it (--auto-compaction-mode,
// --auto-compaction-retention):
//
//  * periodic: keep `retention` of history. Every `retention / 10` (at least
//    1 s, at most 1 h) the current revision is sampled; the compactor
//    compacts to the newest sample that is at least `retention` old.
//    Retention is a Go-style duration ("1h", "30m", "90s") or a plain number
//    of hours ("1").
//  * revision: keep the last `retention` revisions; every 5 minutes compact
//    to current - retention if that is ahead of the last compaction.
//
// A compaction is a proposal through the pipeline (the `compact` callback),
// so it is logged, replicated and applied like a client's Compact.
//
// Thread-safety: Tick() is called from one thread (the server's maintenance
// thread); the object holds no locks.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "base/clock.h"
#include "base/status.h"

namespace tidemark::server {

class AutoCompactor {
 public:
  using CompactFn = std::function<void(int64_t revision)>;
  using RevisionFn = std::function<int64_t()>;

  // Parses mode + retention. A retention of "0" (or "0s") disables it
  // (returns a disabled compactor). kInvalidArgument with a message naming
  // the flag for anything else that does not parse.
  static Result<AutoCompactor> Create(const std::string& mode, const std::string& retention,
                                      const Clock* clock, RevisionFn current, RevisionFn compacted,
                                      CompactFn compact);

  bool enabled() const { return enabled_; }
  // Call periodically (e.g. every 100 ms); acts when an interval has passed.
  void Tick();
  // Interval between checks/samples in nanoseconds.
  int64_t interval_ns() const { return interval_ns_; }

 private:
  AutoCompactor() = default;

  bool enabled_ = false;
  bool periodic_ = true;
  int64_t retention_ns_ = 0;    // periodic
  int64_t retention_revs_ = 0;  // revision
  int64_t interval_ns_ = 0;
  int64_t next_tick_ns_ = 0;
  const Clock* clock_ = nullptr;
  RevisionFn current_, compacted_;
  CompactFn compact_;
  std::deque<std::pair<int64_t, int64_t>> samples_;  // (monotonic ns, revision)
};

// Parses "1h", "30m", "1h30m", "90s", "500ms" or a bare number of hours.
Result<int64_t> ParseRetentionDuration(const std::string& text);

}  // namespace tidemark::server
