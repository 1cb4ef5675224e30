#pragma once
// mvcc::WriteTxn: the one open write transaction of a Store (apply thread).
//
// All writes of a WriteTxn share ONE new revision, revision() =
// base_revision() + 1, which is taken only if something changed (a put, or a
// delete that removed at least one key). Reads (Range, Get) see the txn's own
// earlier writes, as etcd's Txn does. Events are numbered in execution order
// (etcd's sub-revision).
//
// Versions (etcd): a put on a missing key starts a new life (create_revision
// = revision(), version 1); a put on a live key keeps create_revision and
// increments version; a delete ends the life (a later put starts a new one).
// If one txn writes the same key twice (etcd's Txn validation forbids this
// for client requests), the kv CF keeps only the last version at revision();
// the earlier put's history entry then carries its version inline, so
// Store::Events() still returns every event.
//
// Event prev_kv follows etcd's watch rule: none for a creation (create ==
// mod revision), else the key's version at revision() - 1, i.e. before this
// txn. (Put()'s return value is instead the previous version as this txn
// sees it, like etcd's PutResponse.prev_kv.)
//
// Nothing is visible to other readers, and nothing reaches the engine, until
// Commit() returns OK. Destroying an uncommitted WriteTxn discards it.
//
// Thread safety: not thread-safe; the writer thread only. The Store must
// outlive the txn.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "mvcc/kv_view.h"
#include "mvcc/types.h"
#include "storage/write_batch.h"

namespace tidemark::mvcc {

class Store;

class WriteTxn {
 public:
  ~WriteTxn();
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  WriteTxn(WriteTxn&&) = delete;
  WriteTxn& operator=(WriteTxn&&) = delete;

  int64_t base_revision() const { return base_rev_; }
  // The revision this txn's writes get (meaningful if changed()).
  int64_t revision() const { return base_rev_ + 1; }
  bool changed() const { return !events_.empty(); }

  // etcd Range inside a txn: the txn's current revision is revision() if it
  // changed something, else base_revision(); reading at it includes this
  // txn's writes. Errors as Store::Range.
  Result<RangeResult> Range(const RangeRequest& req);
  // The live version of `key` including this txn's writes; nullopt if none.
  Result<std::optional<KeyValue>> Get(std::string_view key);

  // Puts key = value with `lease` (0 = none) at revision(). Returns the
  // previous live version, if any. kInvalidArgument for an empty key.
  Result<std::optional<KeyValue>> Put(std::string_view key, std::string_view value, int64_t lease);
  // Deletes every live key in the etcd range (key, range_end) at revision()
  // and returns them (ascending key order). Deleting nothing changes nothing.
  Result<std::vector<KeyValue>> DeleteRange(std::string_view key, std::string_view range_end);

  // The batch Commit() writes. Other modules (leases, indexes) may add their
  // own operations to it, in their own column families or meta keys.
  storage::WriteBatch& batch() { return batch_; }

  // Writes kv + history + meta (applied index; current revision and key count
  // if changed) plus anything added to batch() in ONE engine batch, then
  // publishes the new revision to readers. Also when nothing changed: the
  // applied index always advances. On success moves this txn's events (in
  // execution order) into *events (may be null). `applied_index` must not go
  // backwards (aborts otherwise). On a storage error the Store is poisoned:
  // this and every later write returns the error (restart and replay).
  // Call at most once; the store accepts the next BeginWrite() as soon as
  // Commit returns (even if this object is still alive).
  Status Commit(uint64_t applied_index, std::vector<Event>* events);

 private:
  friend class Store;
  explicit WriteTxn(Store* store);

  // Live versions in the range at revision() merged with this txn's writes.
  Status ScanOverlay(std::string_view key, std::string_view range_end, KvView::Mode mode,
                     const KvView::Visitor& visit) const;
  void AddEvent(Event event);
  // Commit() minus the end-of-txn bookkeeping.
  Status WriteAndPublish(uint64_t applied_index, std::vector<Event>* events);
  // The key's version at base_revision(), ignoring this txn's writes.
  Result<std::optional<KeyValue>> Committed(std::string_view key) const;
  // `key` is written again: an earlier put of it in this txn loses its kv
  // entry, so its history entry must carry the version inline.
  void SupersedeEarlierPut(std::string_view key);

  Store* store_;
  int64_t base_rev_;
  uint64_t key_count_;
  storage::WriteBatch batch_;
  // This txn's writes: user key -> new live version, or nullopt if deleted.
  std::map<std::string, std::optional<KeyValue>, std::less<>> pending_;
  std::vector<Event> events_;
  // key -> index in events_ of this txn's latest put of it.
  std::map<std::string, size_t, std::less<>> put_event_;
  bool done_ = false;
};

}  // namespace tidemark::mvcc
