// etcdserverpb.Maintenance on the callback API.
#include <unistd.h>

#include <fstream>
#include <thread>

#include "apply/errors.h"
#include "base/log.h"
#include "server/core.h"
#include "server/grpc_errors.h"
#include "server/services.h"
#include "server/snapshot_writer.h"

#include "etcdserverpb/rpc.grpc.pb.h"

namespace tidemark::server {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

constexpr size_t kSnapshotChunk = 32 * 1024;

// Streams a snapshot file, then one final message holding its SHA-256.
class SnapshotReactor final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  SnapshotReactor(Core* core) : core_(core) {
    path_ = core_->data_path("snapshot-" + std::to_string(::getpid()) + "-" +
                             std::to_string(reinterpret_cast<uintptr_t>(this)) + ".tmp");
    // Building the file reads the whole store: do it off the gRPC thread.
    std::thread([this] {
      auto info = WriteSnapshotFile(core_->engine.get(), path_);
      if (!info.ok()) {
        log::Error("snapshot failed", {{"error", info.status().ToString()}});
        Cleanup();
        Finish(ToGrpcStatus(info.status()));
        return;
      }
      info_ = *info;
      in_.open(path_, std::ios::binary);
      remaining_ = info_.bytes;
      log::Info("sending database snapshot", {{"bytes", info_.bytes}, {"records", info_.records}});
      SendNext();
    }).detach();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Cleanup();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot: client went away"));
      return;
    }
    if (sent_hash_) {
      Cleanup();
      Finish(grpc::Status::OK);
      return;
    }
    SendNext();
  }

  void OnDone() override { delete this; }

 private:
  void SendNext() {
    msg_.Clear();
    core_->FillHeader(msg_.mutable_header());
    if (remaining_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kSnapshotChunk, remaining_));
      std::string buf(n, '\0');
      in_.read(buf.data(), static_cast<std::streamsize>(n));
      if (static_cast<size_t>(in_.gcount()) != n) {
        Cleanup();
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, "snapshot: short read of " + path_));
        return;
      }
      remaining_ -= n;
      msg_.set_blob(std::move(buf));
      msg_.set_remaining_bytes(remaining_ + info_.sha256.size());
    } else {
      msg_.set_blob(info_.sha256);
      msg_.set_remaining_bytes(0);
      sent_hash_ = true;
    }
    StartWrite(&msg_);
  }

  void Cleanup() {
    if (in_.is_open()) in_.close();
    ::unlink(path_.c_str());
  }

  Core* core_;
  std::string path_;
  SnapshotInfo info_;
  std::ifstream in_;
  uint64_t remaining_ = 0;
  bool sent_hash_ = false;
  etcdserverpb::SnapshotResponse msg_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(Core* core) : core_(core) {}

  ServerUnaryReactor* Alarm(CallbackServerContext* ctx, const etcdserverpb::AlarmRequest* req,
                            etcdserverpb::AlarmResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (req->action() == etcdserverpb::AlarmRequest::GET) {
      core_->FillHeader(resp->mutable_header());
      for (const auto& [member, type] : core_->applier->alarms()) {
        if ((req->memberid() != 0 && req->memberid() != member) ||
            (req->alarm() != etcdserverpb::NONE && req->alarm() != type)) {
          continue;
        }
        auto* a = resp->add_alarms();
        a->set_memberid(member);
        a->set_alarm(static_cast<etcdserverpb::AlarmType>(type));
      }
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    internal::InternalRequest ir;
    *ir.mutable_alarm() = *req;
    core_->pipeline->Propose(std::move(ir), [this, reactor, resp](const tidemark::Status& st,
                                                                  internal::InternalResponse* r) {
      if (st.ok()) {
        resp->Swap(r->mutable_alarm());
        core_->FillHeader(resp->mutable_header());
      }
      reactor->Finish(ToGrpcStatus(st));
    });
    return reactor;
  }

  ServerUnaryReactor* Status(CallbackServerContext* ctx, const etcdserverpb::StatusRequest*,
                             etcdserverpb::StatusResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    core_->FillHeader(resp->mutable_header());
    resp->set_version(kEtcdVersion);
    int64_t size = core_->db_size_bytes.load();
    resp->set_dbsize(size);
    resp->set_dbsizeinuse(size);
    resp->set_leader(core_->member_id);
    resp->set_raftindex(core_->pipeline->committed_index());
    resp->set_raftappliedindex(core_->pipeline->applied_index());
    resp->set_raftterm(core_->raft_term);
    for (const auto& [member, type] : core_->applier->alarms()) {
      resp->add_errors("memberID:" + std::to_string(member) + " alarm:" +
                       etcdserverpb::AlarmType_Name(static_cast<etcdserverpb::AlarmType>(type)) +
                       " ");
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  ServerUnaryReactor* Defragment(CallbackServerContext* ctx, const etcdserverpb::DefragmentRequest*,
                                 etcdserverpb::DefragmentResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    // Storage compaction runs beside writes (it never takes the apply
    // thread); only this RPC waits for it.
    std::thread([this, reactor, resp] {
      auto t0 = std::chrono::steady_clock::now();
      tidemark::Status s = core_->engine->CompactRange();
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      log::Info("defragmented storage", {{"took-ms", ms}, {"ok", s.ok()}});
      if (s.ok()) {
        auto size = core_->engine->ApproximateSizeBytes();
        if (size.ok()) core_->db_size_bytes.store(static_cast<int64_t>(*size));
      }
      core_->FillHeader(resp->mutable_header());
      reactor->Finish(ToGrpcStatus(s));
    }).detach();
    return reactor;
  }

  ServerUnaryReactor* Hash(CallbackServerContext* ctx, const etcdserverpb::HashRequest*,
                           etcdserverpb::HashResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    auto r = core_->store->HashKV(0);
    if (r.ok()) {
      core_->FillHeader(resp->mutable_header());
      resp->set_hash(r->hash);
    }
    reactor->Finish(ToGrpcStatus(r.status()));
    return reactor;
  }

  ServerUnaryReactor* HashKV(CallbackServerContext* ctx, const etcdserverpb::HashKVRequest* req,
                             etcdserverpb::HashKVResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    auto r = core_->store->HashKV(req->revision());
    if (r.ok()) {
      core_->FillHeader(resp->mutable_header());
      resp->set_hash(r->hash);
      resp->set_compact_revision(r->compact_revision);
    }
    reactor->Finish(ToGrpcStatus(r.status()));
    return reactor;
  }

  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      CallbackServerContext*, const etcdserverpb::SnapshotRequest*) override {
    return new SnapshotReactor(core_);
  }

  ServerUnaryReactor* MoveLeader(CallbackServerContext* ctx,
                                 const etcdserverpb::MoveLeaderRequest* req,
                                 etcdserverpb::MoveLeaderResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (req->targetid() == core_->member_id) {
      core_->FillHeader(resp->mutable_header());
      reactor->Finish(grpc::Status::OK);  // already the leader
    } else {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                   apply::kErrBadLeaderTransferee));
    }
    return reactor;
  }

 private:
  Core* core_;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(Core* core) : core_(core) {}

  ServerUnaryReactor* MemberList(CallbackServerContext* ctx, const etcdserverpb::MemberListRequest*,
                                 etcdserverpb::MemberListResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    core_->FillHeader(resp->mutable_header());
    FillSelf(resp->add_members());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  ServerUnaryReactor* MemberAdd(CallbackServerContext* ctx, const etcdserverpb::MemberAddRequest*,
                                etcdserverpb::MemberAddResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(NotClustered("add"));
    return reactor;
  }

  ServerUnaryReactor* MemberRemove(CallbackServerContext* ctx,
                                   const etcdserverpb::MemberRemoveRequest* req,
                                   etcdserverpb::MemberRemoveResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(req->id() == core_->member_id ? NotClustered("remove") : MemberNotFound());
    return reactor;
  }

  ServerUnaryReactor* MemberUpdate(CallbackServerContext* ctx,
                                   const etcdserverpb::MemberUpdateRequest* req,
                                   etcdserverpb::MemberUpdateResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(req->id() == core_->member_id ? NotClustered("update") : MemberNotFound());
    return reactor;
  }

  ServerUnaryReactor* MemberPromote(CallbackServerContext* ctx,
                                    const etcdserverpb::MemberPromoteRequest* req,
                                    etcdserverpb::MemberPromoteResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    if (req->id() == core_->member_id) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                   "etcdserver: can only promote a learner member"));
    } else {
      reactor->Finish(MemberNotFound());
    }
    return reactor;
  }

 private:
  static grpc::Status MemberNotFound() {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, apply::kErrMemberNotFound);
  }
  static grpc::Status NotClustered(const char* what) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        std::string("tidemark: member ") + what +
                            " is not supported: this server runs as a single node "
                            "(clustering is not built yet)");
  }
  void FillSelf(etcdserverpb::Member* m) const {
    m->set_id(core_->member_id);
    m->set_name(core_->options.name);
    for (const auto& u : core_->options.initial_advertise_peer_urls) m->add_peerurls(u);
    const auto& client = core_->options.advertise_client_urls.empty()
                             ? core_->options.listen_client_urls
                             : core_->options.advertise_client_urls;
    for (const auto& u : client) m->add_clienturls(u);
  }

  Core* core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewMaintenanceService(Core* core) {
  return std::make_unique<MaintenanceService>(core);
}
std::unique_ptr<grpc::Service> NewClusterService(Core* core) {
  return std::make_unique<ClusterService>(core);
}

}  // namespace tidemark::server
