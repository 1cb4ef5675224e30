#include "apply/applier.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "apply/errors.h"
#include "mvcc/errors.h"
#include "mvcc/write_txn.h"
#include "storage/engine.h"
#include "storage/write_batch.h"

namespace tidemark::apply {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

// A delete interval for the duplicate-key check. end "" = the single key,
// end "\0" = every key >= begin.
struct Interval {
  std::string begin, end;
  bool Contains(const std::string& k) const {
    if (end.empty()) return k == begin;
    if (end.size() == 1 && end[0] == '\0') return k >= begin;
    return begin <= k && k < end;
  }
};

struct Intervals {
  std::vector<Interval> items;
  bool Contains(const std::string& k) const {
    for (const auto& i : items) {
      if (i.Contains(k)) return true;
    }
    return false;
  }
};

// etcd's checkIntervals: within one op list, no two puts of one key and no
// put inside a delete of the same list, an enclosing list or a nested txn.
// The then/else branches of one nested txn may write the same key.
Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                      std::set<std::string>* puts_out, Intervals* dels_out) {
  Intervals dels;
  for (const auto& op : ops) {
    if (op.request_case() != RequestOp::kRequestDeleteRange) continue;
    const auto& d = op.request_delete_range();
    dels.items.push_back({d.key(), d.range_end()});
  }
  std::set<std::string> puts;
  for (const auto& op : ops) {
    if (op.request_case() != RequestOp::kRequestTxn) continue;
    std::set<std::string> puts_then, puts_else;
    Intervals dels_then, dels_else;
    TM_RETURN_IF_ERROR(CheckIntervals(op.request_txn().success(), &puts_then, &dels_then));
    TM_RETURN_IF_ERROR(CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else));
    for (const auto& k : puts_then) {
      if (puts.count(k) || dels.Contains(k)) return DuplicateKey();
      puts.insert(k);
    }
    for (const auto& k : puts_else) {
      if (puts.count(k) && !puts_then.count(k)) return DuplicateKey();
      if (dels.Contains(k)) return DuplicateKey();
      puts.insert(k);
    }
    for (auto& i : dels_then.items) dels.items.push_back(std::move(i));
    for (auto& i : dels_else.items) dels.items.push_back(std::move(i));
  }
  for (const auto& op : ops) {
    if (op.request_case() != RequestOp::kRequestPut) continue;
    const std::string& k = op.request_put().key();
    if (puts.count(k) || dels.Contains(k)) return DuplicateKey();
    puts.insert(k);
  }
  *puts_out = std::move(puts);
  *dels_out = std::move(dels);
  return Status::Ok();
}

template <typename T>
int Cmp(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

bool CompareKV(const Compare& c, const mvcc::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE: {
      const std::string& v =
          c.target_union_case() == Compare::kValue ? c.value() : std::string();
      int r = kv.value.compare(v);
      result = r < 0 ? -1 : (r > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result = Cmp<int64_t>(kv.create_revision,
                            c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = Cmp<int64_t>(kv.mod_revision,
                            c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result = Cmp<int64_t>(kv.version, c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = Cmp<int64_t>(kv.lease, c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      return false;
  }
  switch (c.result()) {
    case Compare::EQUAL: return result == 0;
    case Compare::NOT_EQUAL: return result != 0;
    case Compare::GREATER: return result > 0;
    case Compare::LESS: return result < 0;
    default: return false;
  }
}

// Marks storage failures so the pipeline can fail-stop on them.
bool IsStorageError(const Status& s) {
  return s.code() == Code::kIoError || s.code() == Code::kCorruption ||
         s.code() == Code::kInternal;
}

// Executes txns against one mvcc::WriteTxn, or -- read-only txns -- against
// the store's state at one revision (every compare and range reads that
// revision, so the txn sees one consistent state without holding the writer).
class TxnRunner {
 public:
  TxnRunner(mvcc::WriteTxn* w, const lease::Lessor* lessor, lease::Delta* delta,
            int64_t base_rev, int64_t compact_rev)
      : w_(w), lessor_(lessor), delta_(delta), base_rev_(base_rev), compact_rev_(compact_rev) {}
  TxnRunner(const mvcc::Store* store, int64_t read_rev, int64_t compact_rev)
      : store_(store), base_rev_(read_rev), compact_rev_(compact_rev) {}

  // Evaluates every compare of `t` and its nested txns against the state
  // before any op runs (etcd 3.4 compareToPath), appending one bool per txn
  // in pre-order of the path that will execute.
  Status ComputePath(const TxnRequest& t, std::vector<bool>* path) {
    bool ok = true;
    for (const auto& c : t.compare()) {
      TM_ASSIGN_OR_RETURN(bool r, EvalCompare(c));
      if (!r) {
        ok = false;
        break;
      }
    }
    path->push_back(ok);
    const auto& ops = ok ? t.success() : t.failure();
    for (const auto& op : ops) {
      if (op.request_case() == RequestOp::kRequestTxn) {
        TM_RETURN_IF_ERROR(ComputePath(op.request_txn(), path));
      }
    }
    return Status::Ok();
  }

  // etcd's checkRequests: errors that depend on state, for the branch that runs.
  Status CheckOps(const TxnRequest& t, const std::vector<bool>& path, size_t* pos) {
    bool ok = path[(*pos)++];
    const auto& ops = ok ? t.success() : t.failure();
    for (const auto& op : ops) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange: {
          int64_t rev = op.request_range().revision();
          if (rev > base_rev_) return FutureRev();
          if (rev > 0 && rev < compact_rev_) return Compacted();
          break;
        }
        case RequestOp::kRequestPut: {
          const auto& p = op.request_put();
          if (p.lease() != 0 && !LeaseExists(p.lease())) return LeaseNotFound();
          if (p.ignore_value() || p.ignore_lease()) {
            TM_ASSIGN_OR_RETURN(auto prev, w_->Get(p.key()));
            if (!prev) return KeyNotFound();
          }
          break;
        }
        case RequestOp::kRequestTxn:
          TM_RETURN_IF_ERROR(CheckOps(op.request_txn(), path, pos));
          break;
        default:
          break;
      }
    }
    return Status::Ok();
  }

  Status Execute(const TxnRequest& t, const std::vector<bool>& path, size_t* pos,
                 etcdserverpb::TxnResponse* resp) {
    bool ok = path[(*pos)++];
    resp->set_succeeded(ok);
    const auto& ops = ok ? t.success() : t.failure();
    for (const auto& op : ops) {
      auto* r = resp->add_responses();
      switch (op.request_case()) {
        case RequestOp::kRequestRange: {
          TM_RETURN_IF_ERROR(DoRange(op.request_range(), r->mutable_response_range()));
          break;
        }
        case RequestOp::kRequestPut:
          TM_RETURN_IF_ERROR(DoPut(op.request_put(), r->mutable_response_put()));
          break;
        case RequestOp::kRequestDeleteRange:
          TM_RETURN_IF_ERROR(
              DoDelete(op.request_delete_range(), r->mutable_response_delete_range()));
          break;
        case RequestOp::kRequestTxn:
          // etcd 3.4 sends nested txn responses with a present but empty header.
          r->mutable_response_txn()->mutable_header();
          TM_RETURN_IF_ERROR(Execute(op.request_txn(), path, pos, r->mutable_response_txn()));
          break;
        default:
          break;
      }
    }
    return Status::Ok();
  }

  Status DoPut(const etcdserverpb::PutRequest& p, etcdserverpb::PutResponse* out) {
    std::string value = p.value();
    int64_t lease = p.lease();
    if (p.ignore_value() || p.ignore_lease() || p.prev_kv()) {
      TM_ASSIGN_OR_RETURN(auto prev, w_->Get(p.key()));
      if ((p.ignore_value() || p.ignore_lease()) && !prev) return KeyNotFound();
      if (prev) {
        if (p.ignore_value()) value = prev->value;
        if (p.ignore_lease()) lease = prev->lease;
        if (p.prev_kv()) ToProto(*prev, out->mutable_prev_kv());
      }
    }
    if (lease != 0 && !LeaseExists(lease)) return LeaseNotFound();
    TM_ASSIGN_OR_RETURN(auto old, w_->Put(p.key(), value, lease));
    if (old && old->lease != 0 && old->lease != lease) delta_->Detach(old->lease, p.key());
    if (lease != 0 && !(old && old->lease == lease)) delta_->Attach(lease, p.key());
    written_ = true;
    out->mutable_header()->set_revision(base_rev_ + 1);
    return Status::Ok();
  }

  Status DoDelete(const etcdserverpb::DeleteRangeRequest& d,
                  etcdserverpb::DeleteRangeResponse* out) {
    TM_ASSIGN_OR_RETURN(auto deleted, w_->DeleteRange(d.key(), d.range_end()));
    for (const auto& kv : deleted) {
      if (kv.lease != 0) delta_->Detach(kv.lease, kv.key);
    }
    out->set_deleted(static_cast<int64_t>(deleted.size()));
    if (d.prev_kv()) {
      for (const auto& kv : deleted) ToProto(kv, out->add_prev_kvs());
    }
    if (!deleted.empty()) written_ = true;
    out->mutable_header()->set_revision(written_ ? base_rev_ + 1 : base_rev_);
    return Status::Ok();
  }

  Status DoRange(const etcdserverpb::RangeRequest& r, etcdserverpb::RangeResponse* out) {
    TM_ASSIGN_OR_RETURN(auto res, Read(ToMvcc(r)));
    for (const auto& kv : res.kvs) ToProto(kv, out->add_kvs(), r.keys_only());
    out->set_more(res.more);
    out->set_count(res.count);
    out->mutable_header()->set_revision(written_ ? base_rev_ + 1 : base_rev_);
    return Status::Ok();
  }

  bool written() const { return written_; }

 private:
  bool LeaseExists(int64_t id) const { return lessor_ != nullptr && lessor_->Exists(id); }

  Result<mvcc::RangeResult> Read(mvcc::RangeRequest rr) {
    if (w_ != nullptr) return w_->Range(rr);
    if (rr.revision == 0) rr.revision = base_rev_;
    return store_->Range(rr);
  }

  Result<bool> EvalCompare(const Compare& c) {
    mvcc::RangeRequest rr;
    rr.key = c.key();
    rr.range_end = c.range_end();
    TM_ASSIGN_OR_RETURN(auto res, Read(rr));
    if (res.kvs.empty()) {
      if (c.target() == Compare::VALUE) return false;
      return CompareKV(c, mvcc::KeyValue{});
    }
    for (const auto& kv : res.kvs) {
      if (!CompareKV(c, kv)) return false;
    }
    return true;
  }

  mvcc::WriteTxn* w_ = nullptr;
  const mvcc::Store* store_ = nullptr;  // read-only txns
  const lease::Lessor* lessor_ = nullptr;
  lease::Delta* delta_ = nullptr;
  int64_t base_rev_;
  int64_t compact_rev_;
  bool written_ = false;
};

Status CheckRangeKey(const std::string& key) {
  if (key.empty()) return EmptyKey();
  return Status::Ok();
}

}  // namespace

mvcc::RangeRequest ToMvcc(const etcdserverpb::RangeRequest& r) {
  mvcc::RangeRequest m;
  m.key = r.key();
  m.range_end = r.range_end();
  m.limit = r.limit();
  m.revision = r.revision();
  switch (r.sort_order()) {
    case etcdserverpb::RangeRequest::ASCEND: m.sort_order = mvcc::SortOrder::kAscend; break;
    case etcdserverpb::RangeRequest::DESCEND: m.sort_order = mvcc::SortOrder::kDescend; break;
    default: m.sort_order = mvcc::SortOrder::kNone; break;
  }
  switch (r.sort_target()) {
    case etcdserverpb::RangeRequest::VERSION: m.sort_target = mvcc::SortTarget::kVersion; break;
    case etcdserverpb::RangeRequest::CREATE: m.sort_target = mvcc::SortTarget::kCreate; break;
    case etcdserverpb::RangeRequest::MOD: m.sort_target = mvcc::SortTarget::kMod; break;
    case etcdserverpb::RangeRequest::VALUE: m.sort_target = mvcc::SortTarget::kValue; break;
    default: m.sort_target = mvcc::SortTarget::kKey; break;
  }
  m.keys_only = r.keys_only();
  m.count_only = r.count_only();
  m.min_mod_revision = r.min_mod_revision();
  m.max_mod_revision = r.max_mod_revision();
  m.min_create_revision = r.min_create_revision();
  m.max_create_revision = r.max_create_revision();
  return m;
}

void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out, bool keys_only) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  if (!keys_only) out->set_value(kv.value);
  out->set_lease(kv.lease);
}

Applier::Applier(mvcc::Store* store, ApplyOptions options)
    : store_(store), options_(options) {}

Status Applier::ValidatePut(const etcdserverpb::PutRequest& r) const {
  if (r.key().empty()) return EmptyKey();
  if (r.ignore_value() && !r.value().empty()) return ValueProvided();
  if (r.ignore_lease() && r.lease() != 0) return LeaseProvided();
  return Status::Ok();
}

Status Applier::ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) const {
  return CheckRangeKey(r.key());
}

Status Applier::ValidateRange(const etcdserverpb::RangeRequest& r) const {
  return CheckRangeKey(r.key());
}

Status Applier::CheckTxnOps(const TxnRequest& r) const {
  int max = options_.max_txn_ops;
  if (r.compare_size() > max || r.success_size() > max || r.failure_size() > max) {
    return TooManyOps();
  }
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return EmptyKey();
  }
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const auto& op : *ops) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          TM_RETURN_IF_ERROR(ValidateRange(op.request_range()));
          break;
        case RequestOp::kRequestPut:
          TM_RETURN_IF_ERROR(ValidatePut(op.request_put()));
          break;
        case RequestOp::kRequestDeleteRange:
          TM_RETURN_IF_ERROR(ValidateDeleteRange(op.request_delete_range()));
          break;
        case RequestOp::kRequestTxn:
          TM_RETURN_IF_ERROR(CheckTxnOps(op.request_txn()));
          break;
        default:
          return KeyNotFound();  // etcd's answer to an empty RequestOp
      }
    }
  }
  return Status::Ok();
}

Status Applier::ValidateTxn(const TxnRequest& r) const {
  TM_RETURN_IF_ERROR(CheckTxnOps(r));
  std::set<std::string> puts;
  Intervals dels;
  TM_RETURN_IF_ERROR(CheckIntervals(r.success(), &puts, &dels));
  TM_RETURN_IF_ERROR(CheckIntervals(r.failure(), &puts, &dels));
  return Status::Ok();
}

bool Applier::IsReadOnly(const TxnRequest& r) {
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const auto& op : *ops) {
      switch (op.request_case()) {
        case RequestOp::kRequestPut:
        case RequestOp::kRequestDeleteRange:
          return false;
        case RequestOp::kRequestTxn:
          if (!IsReadOnly(op.request_txn())) return false;
          break;
        default:
          break;
      }
    }
  }
  return true;
}

bool Applier::IsRangeOnly(const TxnRequest& r) {
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const auto& op : *ops) {
      if (op.request_case() != RequestOp::kRequestRange) return false;
    }
  }
  return true;
}

Status Applier::Range(const etcdserverpb::RangeRequest& req,
                      etcdserverpb::RangeResponse* resp) const {
  TM_ASSIGN_OR_RETURN(auto res, store_->Range(ToMvcc(req)));
  resp->mutable_kvs()->Reserve(static_cast<int>(res.kvs.size()));
  for (const auto& kv : res.kvs) ToProto(kv, resp->add_kvs(), req.keys_only());
  resp->set_more(res.more);
  resp->set_count(res.count);
  resp->mutable_header()->set_revision(res.revision);
  return Status::Ok();
}

Status Applier::ReadOnlyTxn(const TxnRequest& req, etcdserverpb::TxnResponse* resp) const {
  const int64_t rev = store_->current_revision();
  TxnRunner runner(store_, rev, store_->compact_revision());
  std::vector<bool> path;
  TM_RETURN_IF_ERROR(runner.ComputePath(req, &path));
  size_t pos = 0;
  TM_RETURN_IF_ERROR(runner.CheckOps(req, path, &pos));
  pos = 0;
  TM_RETURN_IF_ERROR(runner.Execute(req, path, &pos, resp));
  resp->mutable_header()->set_revision(rev);
  return Status::Ok();
}

Status Applier::Apply(uint64_t index, const internal::InternalRequest& req,
                      internal::InternalResponse* resp, std::vector<mvcc::Event>* events,
                      bool* fatal) {
  *fatal = false;
  // Compaction has its own store entry point (recorded with the applied index).
  if (req.request_case() == internal::InternalRequest::kCompaction) {
    Status s = store_->Compact(req.compaction().revision(), index);
    if (!s.ok()) {
      if (IsStorageError(s)) {
        *fatal = true;
        return s;
      }
      // The request failed but the entry is consumed: record the index.
      auto noop = store_->BeginWrite();
      Status c = noop->Commit(index, events);
      if (!c.ok()) {
        *fatal = true;
        return c;
      }
      return s;
    }
    resp->mutable_compaction()->mutable_header()->set_revision(store_->current_revision());
    return Status::Ok();
  }

  if (req.request_case() == internal::InternalRequest::kNoop) {
    Status c = store_->BeginWrite()->Commit(index, events);
    *fatal = !c.ok();
    return c;
  }
  if (req.request_case() == internal::InternalRequest::kAlarm) {
    return ApplyAlarm(index, req.alarm(), resp->mutable_alarm(), fatal);
  }
  if (req.request_case() == internal::InternalRequest::kLeaseGrant ||
      req.request_case() == internal::InternalRequest::kLeaseRevoke ||
      req.request_case() == internal::InternalRequest::kLeaseExpire) {
    return ApplyLease(index, req, resp, events, fatal);
  }

  auto w = store_->BeginWrite();
  const int64_t base_rev = store_->current_revision();
  lease::Delta delta;
  TxnRunner runner(w.get(), lessor_, &delta, base_rev, store_->compact_revision());
  Status result;
  switch (req.request_case()) {
    case internal::InternalRequest::kPut:
      result = runner.DoPut(req.put(), resp->mutable_put());
      break;
    case internal::InternalRequest::kDeleteRange:
      result = runner.DoDelete(req.delete_range(), resp->mutable_delete_range());
      break;
    case internal::InternalRequest::kTxn: {
      std::vector<bool> path;
      result = runner.ComputePath(req.txn(), &path);
      size_t pos = 0;
      if (result.ok()) result = runner.CheckOps(req.txn(), path, &pos);
      pos = 0;
      if (result.ok()) result = runner.Execute(req.txn(), path, &pos, resp->mutable_txn());
      if (result.ok()) {
        resp->mutable_txn()->mutable_header()->set_revision(runner.written() ? base_rev + 1
                                                                             : base_rev);
      }
      break;
    }
    default:
      result = InternalError("apply: unsupported request type " +
                             std::to_string(static_cast<int>(req.request_case())));
      break;
  }
  if (!result.ok() && IsStorageError(result)) {
    *fatal = true;
    return result;
  }
  if (!result.ok()) {
    // etcd applies nothing of a failed request; start a clean txn that only
    // records the applied index.
    w.reset();
    w = store_->BeginWrite();
    events->clear();
    delta.Clear();
  }
  if (lessor_ != nullptr && !delta.empty()) lessor_->WriteTo(delta, &w->batch());
  Status c = w->Commit(index, events);
  if (!c.ok()) {
    *fatal = true;
    return c;
  }
  if (lessor_ != nullptr && !delta.empty()) lessor_->Publish(delta);
  return result;
}

namespace {
constexpr char kAlarmsKey[] = "apply/alarms";
}

Status Applier::LoadAlarms() {
  TM_ASSIGN_OR_RETURN(auto v, store_->engine()->Get(storage::kMetaCf, kAlarmsKey));
  if (!v) return Status::Ok();
  etcdserverpb::AlarmResponse stored;
  if (!stored.ParseFromString(*v)) {
    return CorruptionError("apply: meta key apply/alarms does not decode");
  }
  std::lock_guard<std::mutex> lock(alarms_mu_);
  for (const auto& a : stored.alarms()) alarms_.insert({a.memberid(), a.alarm()});
  return Status::Ok();
}

std::vector<std::pair<uint64_t, int>> Applier::alarms() const {
  std::lock_guard<std::mutex> lock(alarms_mu_);
  return {alarms_.begin(), alarms_.end()};
}

bool Applier::HasAlarm(int type) const {
  std::lock_guard<std::mutex> lock(alarms_mu_);
  for (const auto& a : alarms_) {
    if (a.second == type) return true;
  }
  return false;
}

Status Applier::ApplyAlarm(uint64_t index, const etcdserverpb::AlarmRequest& r,
                           etcdserverpb::AlarmResponse* resp, bool* fatal) {
  std::set<std::pair<uint64_t, int>> next;
  {
    std::lock_guard<std::mutex> lock(alarms_mu_);
    next = alarms_;
  }
  std::pair<uint64_t, int> a{r.memberid(), r.alarm()};
  if (r.action() == etcdserverpb::AlarmRequest::ACTIVATE && r.alarm() != etcdserverpb::NONE) {
    if (next.insert(a).second) {
      auto* m = resp->add_alarms();
      m->set_memberid(a.first);
      m->set_alarm(r.alarm());
    }
  } else if (r.action() == etcdserverpb::AlarmRequest::DEACTIVATE) {
    if (next.erase(a) > 0) {
      auto* m = resp->add_alarms();
      m->set_memberid(a.first);
      m->set_alarm(r.alarm());
    }
  }
  etcdserverpb::AlarmResponse stored;
  for (const auto& [member, type] : next) {
    auto* m = stored.add_alarms();
    m->set_memberid(member);
    m->set_alarm(static_cast<etcdserverpb::AlarmType>(type));
  }
  auto w = store_->BeginWrite();
  w->batch().Put(storage::kMetaCf, kAlarmsKey, stored.SerializeAsString());
  Status c = w->Commit(index, nullptr);
  if (!c.ok()) {
    *fatal = true;
    return c;
  }
  std::lock_guard<std::mutex> lock(alarms_mu_);
  alarms_ = std::move(next);
  return Status::Ok();
}

}  // namespace tidemark::apply
