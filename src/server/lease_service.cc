// etcdserverpb.Lease on the callback API. Grant and Revoke go through the
// commit pipeline; KeepAlive, TimeToLive and Leases are answered from the
// Lessor's memory (renewals are not replicated in etcd either).
#include <chrono>
#include <deque>
#include <mutex>
#include <random>

#include "apply/errors.h"
#include "server/core.h"
#include "server/grpc_errors.h"
#include "server/propose.h"
#include "server/services.h"

#include "etcdserverpb/rpc.grpc.pb.h"

namespace tidemark::server {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// One LeaseKeepAlive stream: a reply per request, in order, with at most one
// write outstanding (gRPC's rule); later replies wait in a queue.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveReactor(Core* core) : core_(core) { StartRead(&req_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      read_done_ = true;
      MaybeFinishLocked();
      return;
    }
    etcdserverpb::LeaseKeepAliveResponse r;
    // etcd takes the header before renewing.
    core_->FillHeader(r.mutable_header());
    r.set_id(req_.id());
    auto ttl = core_->lessor->Renew(req_.id());
    if (ttl.ok()) {
      r.set_ttl(*ttl);
      core_->metrics->lease_renewed->Increment();
    } else {
      r.set_ttl(0);  // unknown or expired: TTL 0, no error
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(r));
      if (!writing_ && !broken_) {
        writing_ = true;
        StartWrite(&queue_.front());
      }
    }
    StartRead(&req_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    if (!ok) broken_ = true;
    if (!broken_ && !queue_.empty()) {
      StartWrite(&queue_.front());
      return;
    }
    writing_ = false;
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  void MaybeFinishLocked() {
    if (read_done_ && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  Core* core_;
  etcdserverpb::LeaseKeepAliveRequest req_;  // reactor-serialized reads
  std::mutex mu_;
  std::deque<etcdserverpb::LeaseKeepAliveResponse> queue_;  // front = in flight
  bool writing_ = false;
  bool read_done_ = false;
  bool broken_ = false;
  bool finished_ = false;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(Core* core) : core_(core), rng_(std::random_device{}()) {}

  ServerUnaryReactor* LeaseGrant(CallbackServerContext* ctx,
                                 const etcdserverpb::LeaseGrantRequest* req,
                                 etcdserverpb::LeaseGrantResponse* resp) override {
    internal::InternalRequest ir;
    *ir.mutable_lease_grant() = *req;
    // The ID is chosen before proposing so that replaying the WAL grants the
    // same one (etcd does the same with its request ID generator).
    if (req->id() == 0) ir.mutable_lease_grant()->set_id(NewId());
    return ProposeUnary(
        core_, ctx, Status::Ok(), std::move(ir), /*needs_space=*/true, resp,
        [](internal::InternalResponse* r) { return r->mutable_lease_grant(); },
        [this](const etcdserverpb::LeaseGrantResponse& out) {
          core_->metrics->lease_granted->Increment();
          core_->metrics->lease_ttl->Observe(static_cast<double>(out.ttl()));
        });
  }

  ServerUnaryReactor* LeaseRevoke(CallbackServerContext* ctx,
                                  const etcdserverpb::LeaseRevokeRequest* req,
                                  etcdserverpb::LeaseRevokeResponse* resp) override {
    internal::InternalRequest ir;
    *ir.mutable_lease_revoke() = *req;
    // Revoking frees space: allowed while NOSPACE is raised.
    return ProposeUnary(
        core_, ctx, Status::Ok(), std::move(ir), /*needs_space=*/false, resp,
        [](internal::InternalResponse* r) { return r->mutable_lease_revoke(); },
        [this](const etcdserverpb::LeaseRevokeResponse&) {
          core_->metrics->lease_revoked->Increment();
        });
  }

  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(CallbackServerContext*) override {
    return new KeepAliveReactor(core_);
  }

  ServerUnaryReactor* LeaseTimeToLive(CallbackServerContext* ctx,
                                      const etcdserverpb::LeaseTimeToLiveRequest* req,
                                      etcdserverpb::LeaseTimeToLiveResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    core_->FillHeader(resp->mutable_header());
    resp->set_id(req->id());
    auto info = core_->lessor->TimeToLive(req->id(), req->keys());
    if (!info) {
      resp->set_ttl(-1);
      resp->set_grantedttl(0);
    } else {
      resp->set_ttl(info->remaining_ttl);
      resp->set_grantedttl(info->granted_ttl);
      for (auto& k : info->keys) resp->add_keys(std::move(k));
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  ServerUnaryReactor* LeaseLeases(CallbackServerContext* ctx,
                                  const etcdserverpb::LeaseLeasesRequest*,
                                  etcdserverpb::LeaseLeasesResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    core_->FillHeader(resp->mutable_header());
    for (int64_t id : core_->lessor->Leases()) resp->add_leases()->set_id(id);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  // A positive int63 not currently in use.
  int64_t NewId() {
    std::lock_guard<std::mutex> lock(rng_mu_);
    for (;;) {
      auto id = static_cast<int64_t>(rng_() >> 1);
      if (id != 0 && !core_->lessor->Exists(id)) return id;
    }
  }

  Core* core_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_
};

}  // namespace

std::unique_ptr<grpc::Service> NewLeaseService(Core* core) {
  return std::make_unique<LeaseService>(core);
}

// Wires the Lessor's expiry thread to lease_expire proposals.
void StartLeaseExpiry(Core* core) {
  core->lessor->Start([core](const std::vector<lease::Lessor::Expired>& expired) {
    for (const auto& [id, grant_index] : expired) {
      internal::InternalRequest ir;
      ir.mutable_lease_expire()->set_id(id);
      ir.mutable_lease_expire()->set_grant_index(grant_index);
      core->pipeline->Propose(std::move(ir), [core, id](const Status& st,
                                                        internal::InternalResponse*) {
        if (st.ok()) {
          core->metrics->lease_expired->Increment();
          core->metrics->lease_revoked->Increment();  // etcd counts expiries as revokes
        }
        core->lessor->ExpireFinished(id, st.ok());
      });
    }
  });
}

}  // namespace tidemark::server
