#pragma once
// lease::Lessor: etcd's lease table (ID -> granted TTL, expiry deadline,
// attached keys), its persistence, and expiry detection.
//
// State changes are decided by the apply thread and reach the Lessor in two
// steps, so that nothing changes unless the storage batch holding the change
// commits (etcd applies nothing of a failed request):
//   1. the applier collects the changes of one entry in a Delta and calls
//      WriteTo(delta, batch): the persistent form goes into the SAME storage
//      batch as the MVCC changes and the applied index;
//   2. after the batch committed, Publish(delta) updates the in-memory table.
// Bytes: docs/formats/lease.md (meta CF, keys prefixed "lease/").
//
// Keep-alive renewals are in memory only (as in etcd): after a restart every
// lease gets its full granted TTL again (Open()).
//
// Expiry: Start() runs a thread ("lease-expiry") that, about every
// Options::check_interval, pops the leases whose deadline passed and hands
// their IDs to the ExpireFn (the server proposes lease_expire for each). A
// lease is handed out at most once until ExpireFinished(id, false) puts it
// back (a failed proposal) or the lease is revoked. An expired lease cannot
// be renewed.
//
// Thread safety: every public method is thread-safe (one mutex). WriteTo and
// Publish are meant for the single apply thread. The ExpireFn is called
// without the mutex held, on the expiry thread; it must not block for long.
//
// Ownership: `engine` and `clock` must outlive the Lessor.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "storage/engine.h"
#include "storage/write_batch.h"

namespace tidemark::lease {

// etcd 3.4 defaults: minimum TTL = ceil(1.5 x election timeout of 1 s).
inline constexpr int64_t kMinTTLSeconds = 2;
inline constexpr int64_t kMaxTTLSeconds = 9'000'000'000;

// The changes one applied entry makes to the lease table, in order.
class Delta {
 public:
  enum class Kind { kGrant, kRevoke, kAttach, kDetach };
  struct Op {
    Kind kind;
    int64_t id;
    int64_t ttl = 0;  // kGrant
    std::string key;  // kAttach / kDetach
    uint64_t grant_index = 0;  // kGrant: WAL index of the grant entry
  };

  void Grant(int64_t id, int64_t ttl, uint64_t grant_index = 0) {
    ops_.push_back({Kind::kGrant, id, ttl, {}, grant_index});
  }
  void Revoke(int64_t id) { ops_.push_back({Kind::kRevoke, id, 0, {}}); }
  void Attach(int64_t id, std::string key) {
    ops_.push_back({Kind::kAttach, id, 0, std::move(key)});
  }
  void Detach(int64_t id, std::string key) {
    ops_.push_back({Kind::kDetach, id, 0, std::move(key)});
  }

  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  void Clear() { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

struct LeaseInfo {
  int64_t id = 0;
  int64_t granted_ttl = 0;    // seconds
  int64_t remaining_ttl = 0;  // whole seconds left, truncated, >= 0
  std::vector<std::string> keys;  // sorted; filled only when asked for
};

class Lessor {
 public:
  struct Options {
    Clock* clock = Clock::System();
    int64_t min_ttl_seconds = kMinTTLSeconds;
    int64_t check_interval_ms = 500;
    // At most this many leases are handed to the ExpireFn per check (etcd
    // rate-limits revocation the same way).
    size_t max_expire_per_check = 1000;
  };

  // A lease whose deadline passed: its ID and the WAL index of its grant
  // (which tells this lease apart from a later one granted under the same ID).
  struct Expired {
    int64_t id;
    uint64_t grant_index;
    bool operator==(const Expired& o) const = default;
  };
  // Receives the leases whose deadline passed (expiry thread).
  using ExpireFn = std::function<void(const std::vector<Expired>& leases)>;

  // Loads the lease table and attachments from `engine`'s meta CF; every
  // lease's deadline becomes now + granted TTL. Errors: kCorruption for a
  // record that does not decode, storage errors.
  static Result<std::unique_ptr<Lessor>> Open(storage::Engine* engine, Options options);

  Lessor(const Lessor&) = delete;
  Lessor& operator=(const Lessor&) = delete;
  ~Lessor();  // stops the expiry thread

  // Starts / stops the expiry thread. Stop() is idempotent and returns after
  // the thread (and any ExpireFn call in progress) finished.
  void Start(ExpireFn fn);
  void Stop();

  // The TTL a grant of `ttl` seconds gets (raised to the minimum).
  int64_t EffectiveTTL(int64_t ttl) const;

  bool Exists(int64_t id) const;
  // WAL index of the grant of lease `id` (0 if granted before grant indexes
  // were recorded); nullopt if unknown.
  std::optional<uint64_t> GrantIndex(int64_t id) const;
  // Keys attached to `id`, sorted (empty if unknown).
  std::vector<std::string> Keys(int64_t id) const;
  // Keep-alive: resets the deadline to now + granted TTL and returns the
  // granted TTL. kNotFound if the lease is unknown or its deadline passed.
  Result<int64_t> Renew(int64_t id);
  // nullopt if unknown.
  std::optional<LeaseInfo> TimeToLive(int64_t id, bool with_keys) const;
  // All lease IDs, ascending.
  std::vector<int64_t> Leases() const;
  size_t size() const;

  // Apply thread, step 1: adds the persistent form of `delta` to `batch`.
  void WriteTo(const Delta& delta, storage::WriteBatch* batch) const;
  // Apply thread, step 2 (after the batch committed): updates memory.
  void Publish(const Delta& delta);

  // The server's expire proposal for `id` finished; `ok` false puts the
  // lease back so a later check hands it out again.
  void ExpireFinished(int64_t id, bool ok);

  // Runs one expiry check now (also what the thread does). Returns the
  // leases handed out (tests call this with a ManualClock instead of Start()).
  std::vector<Expired> CheckExpiredLeases();
  // The same, IDs only.
  std::vector<int64_t> CheckExpired();

 private:
  struct Lease {
    int64_t ttl = 0;
    uint64_t grant_index = 0;
    int64_t deadline_ns = 0;  // clock MonotonicNanos
    bool expiring = false;    // handed to the ExpireFn, not finished yet
    std::set<std::string> keys;
  };
  struct HeapItem {
    int64_t deadline_ns;
    int64_t id;
    bool operator>(const HeapItem& o) const { return deadline_ns > o.deadline_ns; }
  };

  Lessor(storage::Engine* engine, Options options);
  Status Load();
  void PushLocked(int64_t id, const Lease& l);
  std::vector<Expired> PopExpiredLocked();
  void Run();

  storage::Engine* const engine_;
  const Options options_;
  Clock* const clock_;

  mutable std::mutex mu_;
  std::map<int64_t, Lease> leases_;  // guarded by mu_
  // Deadlines, possibly stale (an item whose deadline no longer matches the
  // lease's is skipped). guarded by mu_.
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<HeapItem>> heap_;

  ExpireFn expire_fn_;
  std::thread thread_;
  std::condition_variable cv_;  // wakes the thread on Stop()
  bool stopping_ = false;       // guarded by mu_
};

// Persistent key layout (docs/formats/lease.md).
std::string LeaseRecordKey(int64_t id);
std::string AttachmentKey(int64_t id, const std::string& user_key);

}  // namespace tidemark::lease
