#include "server/http_gateway.h"

#include <functional>
#include <string>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/core.h"
#include "server/grpc_errors.h"

#include "etcdserverpb/rpc.grpc.pb.h"

namespace tidemark::server {
namespace {

using google::protobuf::Message;
using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

void SendError(httplib::Response& res, grpc::StatusCode code, const std::string& msg) {
  nlohmann::json j = {{"error", msg}, {"message", msg}, {"code", static_cast<int>(code)}};
  res.status = HttpStatusForGrpcCode(code);
  res.set_content(j.dump(), "application/json");
}

std::string ToJson(const Message& m) {
  JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = false;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, opts).ok()) return "{}";
  return out;
}

// One unary gateway route: parse JSON into Req, call the stub, print Resp.
template <typename Req, typename Resp>
using StubCall = std::function<grpc::Status(grpc::ClientContext*, const Req&, Resp*)>;

template <typename Req, typename Resp>
httplib::Server::Handler Unary(StubCall<Req, Resp> call) {
  return [call](const httplib::Request& hreq, httplib::Response& res) {
    Req req;
    std::string body = hreq.body.empty() ? "{}" : hreq.body;
    JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto st = google::protobuf::util::JsonStringToMessage(body, &req, opts);
    if (!st.ok()) {
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT, std::string(st.message()));
      return;
    }
    grpc::ClientContext ctx;
    Resp resp;
    grpc::Status s = call(&ctx, req, &resp);
    if (!s.ok()) {
      SendError(res, s.error_code(), s.error_message());
      return;
    }
    res.set_content(ToJson(resp), "application/json");
  };
}

}  // namespace

void RegisterHttpRoutes(Core* core, httplib::Server* http) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::Channel> channel = core->grpc_server->InProcessChannel(args);
  auto kv = std::shared_ptr<etcdserverpb::KV::Stub>(etcdserverpb::KV::NewStub(channel));
  auto mt = std::shared_ptr<etcdserverpb::Maintenance::Stub>(
      etcdserverpb::Maintenance::NewStub(channel));
  auto cl = std::shared_ptr<etcdserverpb::Cluster::Stub>(etcdserverpb::Cluster::NewStub(channel));

  http->Get("/health", [core, kv](const httplib::Request&, httplib::Response& res) {
    // etcd 3.4: healthy when a linearizable read succeeds and no alarm is raised.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    grpc::Status s = kv->Range(&ctx, req, &resp);
    bool ok = s.ok() && core->applier->alarms().empty();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? R"({"health":"true"})" : R"({"health":"false"})", "application/json");
  });
  http->Get("/version", [](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j = {{"etcdserver", kEtcdVersion}, {"etcdcluster", kEtcdClusterVersion}};
    res.set_content(j.dump(), "application/json");
  });
  http->Get("/metrics", [core](const httplib::Request&, httplib::Response& res) {
    res.set_content(core->metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });

  using namespace etcdserverpb;  // NOLINT(google-build-using-namespace): route table
  auto route = [http](const std::string& path, httplib::Server::Handler h) {
    http->Post("/v3" + path, h);
    http->Post("/v3beta" + path, h);
  };
  route("/kv/range", Unary<RangeRequest, RangeResponse>(
                         [kv](auto* c, auto& r, auto* o) { return kv->Range(c, r, o); }));
  route("/kv/put", Unary<PutRequest, PutResponse>(
                       [kv](auto* c, auto& r, auto* o) { return kv->Put(c, r, o); }));
  route("/kv/deleterange", Unary<DeleteRangeRequest, DeleteRangeResponse>(
                               [kv](auto* c, auto& r, auto* o) { return kv->DeleteRange(c, r, o); }));
  route("/kv/txn", Unary<TxnRequest, TxnResponse>(
                       [kv](auto* c, auto& r, auto* o) { return kv->Txn(c, r, o); }));
  route("/kv/compaction", Unary<CompactionRequest, CompactionResponse>(
                              [kv](auto* c, auto& r, auto* o) { return kv->Compact(c, r, o); }));
  route("/maintenance/status", Unary<StatusRequest, StatusResponse>(
                                   [mt](auto* c, auto& r, auto* o) { return mt->Status(c, r, o); }));
  route("/maintenance/alarm", Unary<AlarmRequest, AlarmResponse>(
                                  [mt](auto* c, auto& r, auto* o) { return mt->Alarm(c, r, o); }));
  route("/maintenance/defragment",
        Unary<DefragmentRequest, DefragmentResponse>(
            [mt](auto* c, auto& r, auto* o) { return mt->Defragment(c, r, o); }));
  // etcd 3.4 declares HashKV on this path too, where Hash shadows it.
  route("/maintenance/hash", Unary<HashRequest, HashResponse>(
                                 [mt](auto* c, auto& r, auto* o) { return mt->Hash(c, r, o); }));
  route("/maintenance/transfer-leadership",
        Unary<MoveLeaderRequest, MoveLeaderResponse>(
            [mt](auto* c, auto& r, auto* o) { return mt->MoveLeader(c, r, o); }));
  route("/cluster/member/list",
        Unary<MemberListRequest, MemberListResponse>(
            [cl](auto* c, auto& r, auto* o) { return cl->MemberList(c, r, o); }));
  route("/cluster/member/add", Unary<MemberAddRequest, MemberAddResponse>(
                                   [cl](auto* c, auto& r, auto* o) { return cl->MemberAdd(c, r, o); }));
  route("/cluster/member/remove",
        Unary<MemberRemoveRequest, MemberRemoveResponse>(
            [cl](auto* c, auto& r, auto* o) { return cl->MemberRemove(c, r, o); }));
  route("/cluster/member/update",
        Unary<MemberUpdateRequest, MemberUpdateResponse>(
            [cl](auto* c, auto& r, auto* o) { return cl->MemberUpdate(c, r, o); }));
  route("/cluster/member/promote",
        Unary<MemberPromoteRequest, MemberPromoteResponse>(
            [cl](auto* c, auto& r, auto* o) { return cl->MemberPromote(c, r, o); }));
}

}  // namespace tidemark::server
