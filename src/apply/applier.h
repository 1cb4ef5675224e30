#pragma once
// The state machine: turns committed InternalRequests into MVCC changes with
// etcd 3.4's exact semantics (Put, DeleteRange, Txn, Compact), and serves
// Range reads.
//
// Threads: Apply() is called by the single apply thread, in WAL index order.
// Range()/Validate() are called from any thread (gRPC callbacks).
//
// Errors: request errors (a missing lease, a compacted revision inside a
// txn, ...) are returned as Status with etcd's exact text (apply/errors.h);
// the entry is consumed all the same (the applied index advances and nothing
// else changes), as etcd does. Storage errors are returned with their
// storage message; the caller must fail-stop on those (IsFatal()).

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "base/status.h"
#include "mvcc/store.h"
#include "mvcc/types.h"

#include "etcdserverpb/rpc.pb.h"
#include "tidemark/internal.pb.h"

namespace tidemark::apply {

struct ApplyOptions {
  int max_txn_ops = 128;
};

// Answers whether a lease exists (wired to the lessor by the server; until
// leases exist every non-zero lease is missing).
using LeaseExistsFn = std::function<bool(int64_t lease_id)>;

class Applier {
 public:
  Applier(mvcc::Store* store, ApplyOptions options);

  void set_lease_exists(LeaseExistsFn fn) { lease_exists_ = std::move(fn); }

  // Stateless checks done before a request is proposed (etcd's v3rpc
  // checks): empty keys, ignore_value/ignore_lease conflicts, too many txn
  // ops, duplicate keys in a txn.
  Status ValidatePut(const etcdserverpb::PutRequest& r) const;
  Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) const;
  Status ValidateRange(const etcdserverpb::RangeRequest& r) const;
  Status ValidateTxn(const etcdserverpb::TxnRequest& r) const;
  // True if the txn (in either branch, recursively) contains no write.
  static bool IsReadOnly(const etcdserverpb::TxnRequest& r);

  // Applies the entry at `index`. On success fills `resp` and appends the
  // changes to `events`. On a request error returns it (entry consumed).
  // `fatal` is set when the error came from storage (fail-stop).
  Status Apply(uint64_t index, const internal::InternalRequest& req,
               internal::InternalResponse* resp, std::vector<mvcc::Event>* events, bool* fatal);

  // Serves a Range at the latest applied state (or req.revision).
  Status Range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp) const;

  mvcc::Store* store() const { return store_; }

  // Active alarms as (member id, etcdserverpb::AlarmType), persisted in the
  // meta CF under "apply/alarms" in the same batch as the applied index.
  // LoadAlarms() once at start-up; alarms()/HasAlarm() from any thread.
  Status LoadAlarms();
  std::vector<std::pair<uint64_t, int>> alarms() const;
  bool HasAlarm(int type) const;

 private:
  Status ApplyAlarm(uint64_t index, const etcdserverpb::AlarmRequest& r,
                    etcdserverpb::AlarmResponse* resp, bool* fatal);
  Status CheckTxnOps(const etcdserverpb::TxnRequest& r) const;

  mvcc::Store* store_;
  ApplyOptions options_;
  LeaseExistsFn lease_exists_;
  mutable std::mutex alarms_mu_;
  std::set<std::pair<uint64_t, int>> alarms_;  // guarded by alarms_mu_
};

// Conversions between mvcc and etcd wire types.
mvcc::RangeRequest ToMvcc(const etcdserverpb::RangeRequest& r);
void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out, bool keys_only = false);

}  // namespace tidemark::apply
