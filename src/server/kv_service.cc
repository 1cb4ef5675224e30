// etcdserverpb.KV on the callback API.
#include "apply/errors.h"
#include "mvcc/errors.h"
#include "server/core.h"
#include "server/grpc_errors.h"
#include "server/propose.h"
#include "server/services.h"

#include "etcdserverpb/rpc.grpc.pb.h"

namespace tidemark::server {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  explicit KvService(Core* core) : core_(core) {}

  ServerUnaryReactor* Range(CallbackServerContext* ctx, const etcdserverpb::RangeRequest* req,
                            etcdserverpb::RangeResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    core_->metrics->range_total->Increment();
    Status s = core_->applier->ValidateRange(*req);
    if (s.ok()) s = core_->applier->Range(*req, resp);
    if (s.ok()) core_->FillHeader(resp->mutable_header(), resp->header().revision());
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }

  ServerUnaryReactor* Put(CallbackServerContext* ctx, const etcdserverpb::PutRequest* req,
                          etcdserverpb::PutResponse* resp) override {
    internal::InternalRequest ir;
    *ir.mutable_put() = *req;
    return ProposeUnary(
        core_, ctx, core_->applier->ValidatePut(*req), std::move(ir), /*needs_space=*/true, resp,
        [](internal::InternalResponse* r) { return r->mutable_put(); },
        [this](const etcdserverpb::PutResponse&) { core_->metrics->put_total->Increment(); });
  }

  ServerUnaryReactor* DeleteRange(CallbackServerContext* ctx,
                                  const etcdserverpb::DeleteRangeRequest* req,
                                  etcdserverpb::DeleteRangeResponse* resp) override {
    internal::InternalRequest ir;
    *ir.mutable_delete_range() = *req;
    // Deletes are allowed while NOSPACE is raised (they free space).
    return ProposeUnary(
        core_, ctx, core_->applier->ValidateDeleteRange(*req), std::move(ir),
        /*needs_space=*/false, resp,
        [](internal::InternalResponse* r) { return r->mutable_delete_range(); },
        [this](const etcdserverpb::DeleteRangeResponse&) {
          core_->metrics->delete_total->Increment();
        });
  }

  ServerUnaryReactor* Txn(CallbackServerContext* ctx, const etcdserverpb::TxnRequest* req,
                          etcdserverpb::TxnResponse* resp) override {
    if (apply::Applier::IsRangeOnly(*req)) {
      // Ranges only: served at the current state without the WAL (as etcd).
      Status s = core_->applier->ValidateTxn(*req);
      if (s.ok()) s = core_->applier->ReadOnlyTxn(*req, resp);
      if (s.ok() || !mvcc::IsCompacted(s)) {
        if (s.ok()) {
          core_->FillHeader(resp->mutable_header(), resp->header().revision());
          core_->metrics->txn_total->Increment();
        }
        auto* reactor = ctx->DefaultReactor();
        reactor->Finish(ToGrpcStatus(s));
        return reactor;
      }
      resp->Clear();  // a compaction raced the reads: let the apply path decide
    }
    internal::InternalRequest ir;
    *ir.mutable_txn() = *req;
    return ProposeUnary(
        core_, ctx, core_->applier->ValidateTxn(*req), std::move(ir),
        /*needs_space=*/!apply::Applier::IsReadOnly(*req), resp,
        [](internal::InternalResponse* r) { return r->mutable_txn(); },
        [this](const etcdserverpb::TxnResponse&) { core_->metrics->txn_total->Increment(); });
  }

  ServerUnaryReactor* Compact(CallbackServerContext* ctx,
                              const etcdserverpb::CompactionRequest* req,
                              etcdserverpb::CompactionResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    internal::InternalRequest ir;
    *ir.mutable_compaction() = *req;
    Status s = core_->AdmitWrite(ir.ByteSizeLong(), /*needs_space=*/false);
    if (!s.ok()) {
      reactor->Finish(ToGrpcStatus(s));
      return reactor;
    }
    const bool physical = req->physical();
    const int64_t rev = req->revision();
    core_->pipeline->Propose(std::move(ir), [this, reactor, resp, physical, rev](
                                                const Status& st, internal::InternalResponse* r) {
      if (!st.ok()) {
        reactor->Finish(ToGrpcStatus(st));
        return;
      }
      resp->Swap(r->mutable_compaction());
      core_->FillHeader(resp->mutable_header(), resp->header().revision());
      if (!physical) {
        reactor->Finish(grpc::Status::OK);
        return;
      }
      // physical=true: answer once old versions are gone, off the apply thread.
      std::thread([this, reactor, rev] {
        Status w = core_->store->WaitForCompaction(rev);
        reactor->Finish(ToGrpcStatus(w));
      }).detach();
    });
    return reactor;
  }

 private:
  Core* core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewKvService(Core* core) {
  return std::make_unique<KvService>(core);
}

}  // namespace tidemark::server
