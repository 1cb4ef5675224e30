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
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "mvcc/types.h"

#include "etcdserverpb/rpc.pb.h"
#include "tidemark/internal.pb.h"

namespace tidemark::apply {

struct ApplyOptions {
  int max_txn_ops = 128;
};

class Applier {
 public:
  Applier(mvcc::Store* store, ApplyOptions options);

  // The lease table (not owned; must outlive the Applier). Without one every
  // non-zero lease is missing and lease requests fail with "requested lease
  // not found". Set before the first Apply().
  void set_lessor(lease::Lessor* lessor) { lessor_ = lessor; }
  lease::Lessor* lessor() const { return lessor_; }

  // Stateless checks done before a request is proposed (etcd's v3rpc
  // checks): empty keys, ignore_value/ignore_lease conflicts, too many txn
  // ops, duplicate keys in a txn.
  Status ValidatePut(const etcdserverpb::PutRequest& r) const;
  Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) const;
  Status ValidateRange(const etcdserverpb::RangeRequest& r) const;
  Status ValidateTxn(const etcdserverpb::TxnRequest& r) const;
  // True if the txn (in either branch, recursively) contains no write.
  static bool IsReadOnly(const etcdserverpb::TxnRequest& r);
  // True if every op of both branches is a Range (etcd 3.4's isTxnReadonly:
  // a nested txn, even a read-only one, does not count). Such txns are
  // served by ReadOnlyTxn, outside the commit log, as etcd does.
  static bool IsRangeOnly(const etcdserverpb::TxnRequest& r);

  // Applies the entry at `index`. On success fills `resp` and appends the
  // changes to `events`. On a request error returns it (entry consumed).
  // `fatal` is set when the error came from storage (fail-stop).
  // Leases: a Put with a lease attaches the key (detaching it from its
  // previous lease), a Put with lease 0 or a delete detaches; lease_revoke and
  // lease_expire delete every attached key in ONE revision and drop the
  // lease. Lease table changes go into the same storage batch as the data
  // and reach the Lessor's memory only after that batch committed.
  Status Apply(uint64_t index, const internal::InternalRequest& req,
               internal::InternalResponse* resp, std::vector<mvcc::Event>* events, bool* fatal);

  // Serves a Range at the latest applied state (or req.revision).
  Status Range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp) const;
  // Serves a txn without writes (IsRangeOnly) at the latest applied state,
  // without the commit pipeline (etcd serves read-only txns outside raft
  // too): linearizable, because every acknowledged write is applied before
  // its acknowledgement. Same results and errors as Apply would give at that
  // revision. May fail with mvcc's compacted error if a compaction lands
  // while it reads; the caller then proposes the txn instead.
  Status ReadOnlyTxn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp) const;

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
  // lease_grant / lease_revoke / lease_expire (apply/lease_apply.cc).
  Status ApplyLease(uint64_t index, const internal::InternalRequest& req,
                    internal::InternalResponse* resp, std::vector<mvcc::Event>* events,
                    bool* fatal);

  mvcc::Store* store_;
  ApplyOptions options_;
  lease::Lessor* lessor_ = nullptr;
  mutable std::mutex alarms_mu_;
  std::set<std::pair<uint64_t, int>> alarms_;  // guarded by alarms_mu_
};

// Conversions between mvcc and etcd wire types.
mvcc::RangeRequest ToMvcc(const etcdserverpb::RangeRequest& r);
void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out, bool keys_only = false);

}  // namespace tidemark::apply
