#include "bench/grpc_target.h"

#include <arpa/inet.h>

#include <chrono>

#include <grpcpp/grpcpp.h>

#include "bench/grpc_target_rep.h"

namespace tidemark::bench {

namespace {

template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
  std::function<void(const Status&)> done;
};

Status FromGrpc(const grpc::Status& s) {
  if (s.ok())
    return Status::Ok();
  return UnavailableError("grpc code " + std::to_string(static_cast<int>(s.error_code())) + ": " +
                          s.error_message());
}

template <typename Req, typename Resp, typename Fill, typename Invoke>
void Launch(int64_t timeout_ms, std::function<void(const Status&)> done, Fill fill, Invoke invoke) {
  auto* call = new Call<Req, Resp>();
  call->done = std::move(done);
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  fill(&call->req);
  invoke(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
    call->done(FromGrpc(s));
    delete call;
  });
}

}  // namespace

GrpcTarget::GrpcTarget(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
GrpcTarget::~GrpcTarget() = default;

Result<std::unique_ptr<GrpcTarget>> GrpcTarget::Connect(const GrpcTargetOptions& options) {
  if (options.endpoint.empty())
    return InvalidArgumentError("empty endpoint");
  if (options.connections < 1)
    return InvalidArgumentError("connections must be at least 1");
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    // A distinct argument per channel plus a local subchannel pool makes
    // gRPC open one TCP connection per channel instead of sharing one.
    args.SetInt("tidemark.bench.connection", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    auto ch = grpc::CreateCustomChannel(options.endpoint, grpc::InsecureChannelCredentials(), args);
    auto deadline =
        std::chrono::system_clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);
    if (!ch->WaitForConnected(deadline)) {
      return UnavailableError("cannot connect to " + options.endpoint + " within " +
                              std::to_string(options.connect_timeout_ms) +
                              " ms (is the server running and listening there?)");
    }
    rep->kv.push_back(etcdserverpb::KV::NewStub(ch));
    rep->channels.push_back(std::move(ch));
  }
  return std::unique_ptr<GrpcTarget>(new GrpcTarget(std::move(rep)));
}

Result<std::string> GrpcTarget::ServerVersion() {
  auto stub = etcdserverpb::Maintenance::NewStub(rep_->channels[0]);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  etcdserverpb::StatusRequest req;
  etcdserverpb::StatusResponse resp;
  grpc::Status s = stub->Status(&ctx, req, &resp);
  if (!s.ok())
    return FromGrpc(s);
  return resp.version();
}

void GrpcTarget::Start(int client, const Op& op, std::function<void(const Status&)> done) {
  auto* kv = rep_->kv[static_cast<size_t>(client) % rep_->kv.size()]->async();
  const int64_t timeout = rep_->options.rpc_timeout_ms;
  switch (op.type) {
    case OpType::kRange:
      Launch<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>(
          timeout, std::move(done),
          [&](etcdserverpb::RangeRequest* r) {
            r->set_key(op.key);
            r->set_serializable(op.serializable);
          },
          [kv](auto* c, auto* q, auto* p, auto cb) { kv->Range(c, q, p, std::move(cb)); });
      break;
    case OpType::kPut:
      Launch<etcdserverpb::PutRequest, etcdserverpb::PutResponse>(
          timeout, std::move(done),
          [&](etcdserverpb::PutRequest* r) {
            r->set_key(op.key);
            r->set_value(op.value);
          },
          [kv](auto* c, auto* q, auto* p, auto cb) { kv->Put(c, q, p, std::move(cb)); });
      break;
    case OpType::kDelete:
      Launch<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>(
          timeout, std::move(done),
          [&](etcdserverpb::DeleteRangeRequest* r) { r->set_key(op.key); },
          [kv](auto* c, auto* q, auto* p, auto cb) { kv->DeleteRange(c, q, p, std::move(cb)); });
      break;
    case OpType::kTxn:
      Launch<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>(
          timeout, std::move(done),
          [&](etcdserverpb::TxnRequest* r) {
            // Compare that always holds (version > -1), then put: exercises
            // the compare path without making the outcome depend on state.
            auto* cmp = r->add_compare();
            cmp->set_key(op.key);
            cmp->set_target(etcdserverpb::Compare::VERSION);
            cmp->set_result(etcdserverpb::Compare::GREATER);
            cmp->set_version(-1);
            auto* put = r->add_success()->mutable_request_put();
            put->set_key(op.key);
            put->set_value(op.value);
          },
          [kv](auto* c, auto* q, auto* p, auto cb) { kv->Txn(c, q, p, std::move(cb)); });
      break;
  }
}

bool IsLoopbackEndpoint(const std::string& endpoint) {
  std::string host = endpoint;
  for (const char* scheme : {"http://", "https://", "dns:///", "ipv4:", "ipv6:"}) {
    if (host.rfind(scheme, 0) == 0)
      host = host.substr(std::string(scheme).size());
  }
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else {
    size_t colon = host.rfind(':');
    if (colon != std::string::npos)
      host = host.substr(0, colon);
  }
  if (host == "localhost")
    return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

}  // namespace tidemark::bench
