// Applier::ApplyLease: lease_grant, lease_revoke and lease_expire with etcd
// 3.4's semantics (lessor.Grant / lessor.Revoke).
#include <string>
#include <vector>

#include "apply/applier.h"
#include "apply/errors.h"
#include "mvcc/write_txn.h"

namespace tidemark::apply {

Status Applier::ApplyLease(uint64_t index, const internal::InternalRequest& req,
                           internal::InternalResponse* resp, std::vector<mvcc::Event>* events,
                           bool* fatal) {
  auto w = store_->BeginWrite();
  const int64_t base_rev = store_->current_revision();
  lease::Delta delta;
  Status result;
  switch (req.request_case()) {
    case internal::InternalRequest::kLeaseGrant: {
      const auto& g = req.lease_grant();
      auto* out = resp->mutable_lease_grant();
      if (g.id() == 0) {
        result = LeaseNotFound();  // the server always picks an ID first
      } else if (g.ttl() > lease::kMaxTTLSeconds) {
        result = LeaseTTLTooLarge();
      } else if (lessor_ == nullptr) {
        result = LeaseNotFound();
      } else if (lessor_->Exists(g.id())) {
        result = LeaseExists();
      } else {
        const int64_t ttl = lessor_->EffectiveTTL(g.ttl());
        delta.Grant(g.id(), ttl, index);
        out->set_id(g.id());
        out->set_ttl(ttl);
        out->mutable_header()->set_revision(base_rev);
      }
      break;
    }
    case internal::InternalRequest::kLeaseRevoke:
    case internal::InternalRequest::kLeaseExpire: {
      const bool expire = req.request_case() == internal::InternalRequest::kLeaseExpire;
      const int64_t id = expire ? req.lease_expire().id() : req.lease_revoke().id();
      if (lessor_ == nullptr || !lessor_->Exists(id)) {
        // An expiry that lost the race against a client revoke is a no-op.
        if (!expire) result = LeaseNotFound();
        break;
      }
      if (expire && req.lease_expire().grant_index() != 0 &&
          lessor_->GrantIndex(id) != req.lease_expire().grant_index()) {
        // The lease that expired was revoked and the ID granted again before
        // this expiry was applied: the new lease is not the expired one.
        break;
      }
      // etcd deletes the attached keys in sorted order, all in one revision.
      for (const std::string& key : lessor_->Keys(id)) {
        auto deleted = w->DeleteRange(key, "");
        if (!deleted.ok()) {
          result = deleted.status();
          break;
        }
      }
      if (!result.ok()) break;
      delta.Revoke(id);
      resp->mutable_lease_revoke()->mutable_header()->set_revision(w->changed() ? base_rev + 1
                                                                                : base_rev);
      break;
    }
    default:
      result = InternalError("apply: not a lease request");
      break;
  }
  if (!result.ok()) {
    if (result.code() == Code::kIoError || result.code() == Code::kCorruption ||
        result.code() == Code::kInternal) {
      *fatal = true;
      return result;
    }
    w.reset();
    w = store_->BeginWrite();
    events->clear();
    delta.Clear();
  }
  if (!delta.empty()) lessor_->WriteTo(delta, &w->batch());
  Status c = w->Commit(index, events);
  if (!c.ok()) {
    *fatal = true;
    return c;
  }
  if (!delta.empty()) lessor_->Publish(delta);
  return result;
}

}  // namespace tidemark::apply
