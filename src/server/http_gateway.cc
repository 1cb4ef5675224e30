#include "server/http_gateway.h"

#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <optional>
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

// Go's encoding/base64 (StdEncoding) is strict: padded, standard alphabet.
// protobuf's JSON parser also takes URL-safe and unpadded input, so check
// first and answer with Go's message, as etcd's gateway does.
std::optional<size_t> BadBase64At(const std::string& s) {
  auto valid = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t quantum_start = i;
    int j = 0;
    for (; j < 4 && i < s.size(); ++j, ++i) {
      char c = s[i];
      if (c == '=') {
        // Padding may only finish the last quantum: "xx==" or "xxx=".
        if (j < 2) return i;
        size_t want = 4 - static_cast<size_t>(j);
        for (size_t k = 0; k < want; ++k) {
          if (i + k >= s.size() || s[i + k] != '=') return i + k < s.size() ? i + k : quantum_start;
        }
        if (i + want != s.size()) return i + want;
        return std::nullopt;
      }
      if (!valid(c)) return i;
    }
    if (j < 4) return s.size() - static_cast<size_t>(j);  // unpadded tail
  }
  return std::nullopt;
}

// Walks `j` along message type `d`; on the first malformed bytes field
// returns Go's error text.
std::optional<std::string> CheckBytesFields(const nlohmann::json& j,
                                            const google::protobuf::Descriptor* d) {
  if (!j.is_object()) return std::nullopt;
  for (const auto& [name, value] : j.items()) {
    const auto* f = d->FindFieldByName(name);
    if (f == nullptr) f = d->FindFieldByCamelcaseName(name);
    if (f == nullptr) continue;  // the parser reports unknown fields
    auto check_one = [&](const nlohmann::json& v) -> std::optional<std::string> {
      if (f->type() == google::protobuf::FieldDescriptor::TYPE_BYTES && v.is_string()) {
        if (auto at = BadBase64At(v.get<std::string>())) {
          return "illegal base64 data at input byte " + std::to_string(*at);
        }
      } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        return CheckBytesFields(v, f->message_type());
      }
      return std::nullopt;
    };
    if (value.is_array()) {
      for (const auto& v : value) {
        if (auto e = check_one(v)) return e;
      }
    } else if (auto e = check_one(value)) {
      return e;
    }
  }
  return std::nullopt;
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
    auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      if (auto e = CheckBytesFields(parsed, Req::descriptor())) {
        SendError(res, grpc::StatusCode::INVALID_ARGUMENT, *e);
        return;
      }
    }
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

// The JSON objects of a request body holding one or more of them
// (concatenated or newline-separated). Unbalanced input yields the rest as
// one last piece so the JSON parser reports the error.
std::vector<std::string> SplitJsonObjects(const std::string& body) {
  std::vector<std::string> out;
  size_t start = std::string::npos;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (depth++ == 0) start = i;
    } else if (c == '}' || c == ']') {
      if (--depth == 0 && start != std::string::npos) {
        out.push_back(body.substr(start, i + 1 - start));
        start = std::string::npos;
      }
    } else if (depth == 0 && !std::isspace(static_cast<unsigned char>(c))) {
      out.push_back(body.substr(i));  // garbage: let the parser complain
      return out;
    }
  }
  if (depth != 0 && start != std::string::npos) out.push_back(body.substr(start));
  return out;
}

// POST /v3/watch: the body's WatchRequests go to an in-process Watch stream;
// every WatchResponse is streamed back as one chunked line {"result":{...}}
// until the client goes away or the server stops.
httplib::Server::Handler WatchStreamHandler(std::shared_ptr<etcdserverpb::Watch::Stub> stub) {
  return [stub](const httplib::Request& hreq, httplib::Response& res) {
    std::vector<etcdserverpb::WatchRequest> reqs;
    for (const std::string& text : SplitJsonObjects(hreq.body.empty() ? "{}" : hreq.body)) {
      auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded()) {
        if (auto e = CheckBytesFields(parsed, etcdserverpb::WatchRequest::descriptor())) {
          SendError(res, grpc::StatusCode::INVALID_ARGUMENT, *e);
          return;
        }
      }
      etcdserverpb::WatchRequest req;
      auto st = google::protobuf::util::JsonStringToMessage(text, &req, JsonParseOptions{});
      if (!st.ok()) {
        SendError(res, grpc::StatusCode::INVALID_ARGUMENT, std::string(st.message()));
        return;
      }
      reqs.push_back(std::move(req));
    }
    // Shared between the reader thread and the content provider.
    struct State {
      grpc::ClientContext ctx;
      std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest,
                                               etcdserverpb::WatchResponse>> call;
      std::mutex mu;
      std::condition_variable cv;
      std::deque<std::string> lines;  // guarded by mu
      bool ended = false;             // guarded by mu
      std::thread reader;
    };
    auto state = std::make_shared<State>();
    state->call = stub->Watch(&state->ctx);
    for (const auto& r : reqs) state->call->Write(r);
    state->reader = std::thread([state] {
      etcdserverpb::WatchResponse resp;
      while (state->call->Read(&resp)) {
        std::string line = "{\"result\":" + ToJson(resp) + "}\n";
        std::lock_guard<std::mutex> l(state->mu);
        state->lines.push_back(std::move(line));
        state->cv.notify_one();
      }
      std::lock_guard<std::mutex> l(state->mu);
      state->ended = true;
      state->cv.notify_one();
    });
    res.set_chunked_content_provider(
        "application/json",
        [state](size_t, httplib::DataSink& sink) {
          std::deque<std::string> lines;
          bool ended = false;
          {
            std::unique_lock<std::mutex> l(state->mu);
            state->cv.wait_for(l, std::chrono::milliseconds(500),
                               [&] { return !state->lines.empty() || state->ended; });
            lines.swap(state->lines);
            ended = state->ended;
          }
          for (const auto& line : lines) {
            if (!sink.write(line.data(), line.size())) return false;
          }
          if (ended) sink.done();
          return true;
        },
        [state](bool) {
          state->ctx.TryCancel();
          if (state->reader.joinable()) state->reader.join();
        });
  };
}

}  // namespace

void RegisterHttpRoutes(Core* core, httplib::Server* http) {
  // Each /v3/watch stream holds one worker thread for its lifetime; the
  // default pool (8) would let a few HTTP watchers starve every other route.
  http->new_task_queue = [] { return new httplib::ThreadPool(64); };
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::Channel> channel = core->grpc_server->InProcessChannel(args);
  auto kv = std::shared_ptr<etcdserverpb::KV::Stub>(etcdserverpb::KV::NewStub(channel));
  auto mt = std::shared_ptr<etcdserverpb::Maintenance::Stub>(
      etcdserverpb::Maintenance::NewStub(channel));
  auto cl = std::shared_ptr<etcdserverpb::Cluster::Stub>(etcdserverpb::Cluster::NewStub(channel));
  auto wt = std::shared_ptr<etcdserverpb::Watch::Stub>(etcdserverpb::Watch::NewStub(channel));
  auto ls = std::shared_ptr<etcdserverpb::Lease::Stub>(etcdserverpb::Lease::NewStub(channel));

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
    core->RefreshGauges();
    res.set_content(core->metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });

  using namespace etcdserverpb;  // NOLINT(google-build-using-namespace): route table
  auto route = [http](const std::string& path, httplib::Server::Handler h) {
    http->Post("/v3" + path, h);
    http->Post("/v3beta" + path, h);
    // grpc-gateway answers other methods on a known path with 405.
    auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
      SendError(res, grpc::StatusCode::UNIMPLEMENTED, "Method Not Allowed");
      res.status = 405;
    };
    http->Get("/v3" + path, not_allowed);
    http->Get("/v3beta" + path, not_allowed);
  };
  route("/kv/range", Unary<RangeRequest, RangeResponse>(
                         [kv](auto* c, auto& r, auto* o) { return kv->Range(c, r, o); }));
  route("/kv/put", Unary<PutRequest, PutResponse>(
                       [kv](auto* c, auto& r, auto* o) { return kv->Put(c, r, o); }));
  route("/kv/deleterange", Unary<DeleteRangeRequest, DeleteRangeResponse>(
                               [kv](auto* c, auto& r, auto* o) { return kv->DeleteRange(c, r, o); }));
  route("/kv/txn", Unary<TxnRequest, TxnResponse>(
                       [kv](auto* c, auto& r, auto* o) { return kv->Txn(c, r, o); }));
  route("/watch", WatchStreamHandler(wt));
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
  // Lease (unary only; etcd 3.4 also serves the /v3/kv/lease/* aliases).
  route("/lease/grant", Unary<LeaseGrantRequest, LeaseGrantResponse>(
                            [ls](auto* c, auto& r, auto* o) { return ls->LeaseGrant(c, r, o); }));
  for (const char* prefix : {"/lease", "/kv/lease"}) {
    const std::string p(prefix);
    route(p + "/revoke", Unary<LeaseRevokeRequest, LeaseRevokeResponse>(
                             [ls](auto* c, auto& r, auto* o) { return ls->LeaseRevoke(c, r, o); }));
    route(p + "/timetolive",
          Unary<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>(
              [ls](auto* c, auto& r, auto* o) { return ls->LeaseTimeToLive(c, r, o); }));
    route(p + "/leases", Unary<LeaseLeasesRequest, LeaseLeasesResponse>(
                             [ls](auto* c, auto& r, auto* o) { return ls->LeaseLeases(c, r, o); }));
  }
}

}  // namespace tidemark::server
