#include "server/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <grpcpp/support/server_interceptor.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "apply/errors.h"
#include "base/log.h"
#include "fs/posix_file_system.h"
#include "server/archive_glue.h"
#include "server/core.h"
#include "server/grpc_errors.h"
#include "server/http_gateway.h"
#include "server/services.h"

namespace tidemark::server {

// ---- grpc_server_handled_total through a server interceptor ----
namespace {

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* m, grpc::experimental::ServerRpcInfo* info) : m_(m) {
    std::string full = info->method();  // "/etcdserverpb.KV/Range"
    auto slash = full.rfind('/');
    service_ = full.substr(1, slash - 1);
    method_ = full.substr(slash + 1);
    switch (info->type()) {
      case grpc::experimental::ServerRpcInfo::Type::UNARY: type_ = "unary"; break;
      case grpc::experimental::ServerRpcInfo::Type::CLIENT_STREAMING: type_ = "client_stream"; break;
      case grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING: type_ = "server_stream"; break;
      default: type_ = "bidi_stream"; break;
    }
    m_->RpcStarted(type_, service_, method_);
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      m_->RpcHandled(type_, service_, method_, GrpcCodeName(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  Metrics* m_;
  std::string type_, service_, method_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics* m) : m_(m) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(m_, info);
  }

 private:
  Metrics* m_;
};

// ---- member identity ----
struct Identity {
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
};

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<Identity> LoadOrCreateIdentity(fs::FileSystem* fs, const std::string& dir,
                                      const std::string& name) {
  const std::string path = dir + "/member.json";
  TM_ASSIGN_OR_RETURN(bool exists, fs->Exists(path));
  Identity id;
  if (exists) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("member_id") || !j.contains("cluster_id")) {
      return CorruptionError("data dir: " + path + " is not valid member identity JSON");
    }
    id.member_id = std::stoull(j["member_id"].get<std::string>(), nullptr, 16);
    id.cluster_id = std::stoull(j["cluster_id"].get<std::string>(), nullptr, 16);
    return id;
  }
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
  // etcd prints ids as %016x and some tools parse them as int64: keep them positive.
  id.member_id = (rng() >> 1) | 1;
  id.cluster_id = (rng() >> 1) | 1;
  nlohmann::json j = {{"format", 1}, {"name", name}, {"member_id", Hex(id.member_id)},
                      {"cluster_id", Hex(id.cluster_id)}};
  const std::string tmp = path + ".tmp";
  TM_ASSIGN_OR_RETURN(auto f, fs->NewWritableFile(tmp));
  TM_RETURN_IF_ERROR(f->Append(j.dump(2) + "\n"));
  TM_RETURN_IF_ERROR(f->Sync());
  TM_RETURN_IF_ERROR(f->Close());
  TM_RETURN_IF_ERROR(fs->Rename(tmp, path));
  TM_RETURN_IF_ERROR(fs->SyncDir(dir));
  return id;
}

// "http://127.0.0.1:2379" -> host, port.
Status ParseUrl(const std::string& url, std::string* host, int* port) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.rfind("https://", 0) == 0 || rest.rfind("unix", 0) == 0) {
    return InvalidArgumentError("listen-client-urls: " + url +
                                ": only http:// URLs are supported (TLS is not built yet)");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgumentError("listen-client-urls: " + url + ": missing port");
  }
  *host = rest.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  try {
    *port = std::stoi(rest.substr(colon + 1));
  } catch (...) {
    return InvalidArgumentError("listen-client-urls: " + url + ": bad port");
  }
  if (*port < 0 || *port > 65535) {
    return InvalidArgumentError("listen-client-urls: " + url + ": bad port");
  }
  return Status::Ok();
}

}  // namespace

Status Core::AdmitWrite(size_t request_bytes, bool needs_space) {
  if (static_cast<int64_t>(request_bytes) > options.max_request_bytes) {
    return apply::RequestTooLarge();
  }
  if (pipeline->pending() > options.max_pending_proposals) {
    return Status(Code::kResourceExhausted, apply::kErrTooManyRequests);
  }
  TM_RETURN_IF_ERROR(AdmitArchive(this));
  if (!needs_space) return Status::Ok();
  if (applier->HasAlarm(etcdserverpb::NOSPACE)) return apply::NoSpace();
  if (db_size_bytes.load() + static_cast<int64_t>(request_bytes) > quota_bytes()) {
    // etcd raises the alarm through consensus so it survives restarts.
    internal::InternalRequest ir;
    ir.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    ir.mutable_alarm()->set_memberid(member_id);
    ir.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
    log::Warn("database space exceeded; raising NOSPACE alarm",
              {{"db-size", db_size_bytes.load()}, {"quota", quota_bytes()}});
    pipeline->Propose(std::move(ir), [](const Status&, internal::InternalResponse*) {});
    return apply::NoSpace();
  }
  return Status::Ok();
}

void Core::RefreshGauges() {
  metrics->db_total_size->Set(static_cast<double>(db_size_bytes.load()));
  metrics->db_total_size_in_use->Set(static_cast<double>(db_size_bytes.load()));
  metrics->keys_total->Set(static_cast<double>(store->key_count()));
  metrics->current_revision->Set(static_cast<double>(store->current_revision()));
  metrics->compact_revision->Set(static_cast<double>(store->compact_revision()));
  metrics->proposals_pending->Set(static_cast<double>(pipeline->pending()));
  if (lessor) metrics->lease_live->Set(static_cast<double>(lessor->size()));
  RefreshWatchGauges(this);
  RefreshArchiveGauges(this);
}

Server::Server(std::unique_ptr<Core> core) : core_(std::move(core)) {}

Server::~Server() { Shutdown(); }

Result<std::unique_ptr<Server>> Server::Open(const ServerOptions& options) {
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detector on: every lock gRPC takes then also updates a global lock graph
  // (~5 % of server CPU under watch fan-out, measured with perf). It is a
  // debugging aid for absl's own users; gRPC does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto core = std::make_unique<Core>();
  core->options = options;
  if (core->options.data_dir.empty()) core->options.data_dir = options.name + ".tidemark";
  core->clock = std::make_unique<SystemClock>();
  core->fs = std::make_unique<fs::PosixFileSystem>();
  core->metrics = std::make_unique<Metrics>();
  const std::string& dir = core->options.data_dir;
  TM_RETURN_IF_ERROR(core->fs->CreateDirs(dir));
  TM_ASSIGN_OR_RETURN(core->lock, core->fs->LockFile(dir + "/LOCK"));
  TM_ASSIGN_OR_RETURN(Identity id, LoadOrCreateIdentity(core->fs.get(), dir, options.name));
  core->member_id = id.member_id;
  core->cluster_id = id.cluster_id;

  storage::Options so;
  // Smaller memtables than RocksDB's 64 MiB: data moves to SST files (page
  // cache, not heap) sooner, which keeps the server's RSS low; the WAL that
  // must be kept until a flush is smaller too.
  so.write_buffer_bytes = 16ull << 20;
  TM_ASSIGN_OR_RETURN(core->engine, storage::Engine::Open(dir + "/db", so));
  TM_ASSIGN_OR_RETURN(core->store, mvcc::Store::Open(core->engine.get()));
  apply::ApplyOptions ao;
  ao.max_txn_ops = options.max_txn_ops;
  core->applier = std::make_unique<apply::Applier>(core->store.get(), ao);
  {
    lease::Lessor::Options lo;
    lo.clock = core->clock.get();
    TM_ASSIGN_OR_RETURN(core->lessor, lease::Lessor::Open(core->engine.get(), lo));
    core->applier->set_lessor(core->lessor.get());
  }
  TM_RETURN_IF_ERROR(core->applier->LoadAlarms());

  wal::WalOptions wo;
  wo.segment_size = static_cast<uint64_t>(options.wal_segment_bytes);
  wo.initial_index = core->store->applied_index() + 1;
  wo.log = [](const std::string& m) { log::Info(m); };
  TM_ASSIGN_OR_RETURN(core->wal, wal::Wal::Open(core->fs.get(), dir + "/wal", wo));

  core->pipeline = std::make_unique<Pipeline>(core->wal.get(), core->applier.get(),
                                              core->metrics.get(), core->clock.get(),
                                              Pipeline::Options{
                                                  .release_every_entries =
                                                      options.wal_release_every_entries,
                                                  .debug_after_sync = options.debug_after_wal_sync});
  TM_RETURN_IF_ERROR(core->pipeline->Recover());
  TM_RETURN_IF_ERROR(OpenArchive(core.get()));
  auto size = core->engine->ApproximateSizeBytes();
  if (size.ok()) core->db_size_bytes.store(static_cast<int64_t>(*size));
  {
    Core* c = core.get();
    TM_ASSIGN_OR_RETURN(
        auto ac,
        AutoCompactor::Create(
            options.auto_compaction_mode, options.auto_compaction_retention, c->clock.get(),
            [c] { return c->store->current_revision(); },
            [c] { return c->store->compact_revision(); },
            [c](int64_t rev) {
              internal::InternalRequest ir;
              ir.mutable_compaction()->set_revision(rev);
              c->pipeline->Propose(std::move(ir), [rev](const Status& s, internal::InternalResponse*) {
                if (!s.ok()) {
                  log::Warn("auto compaction failed", {{"revision", rev}, {"error", s.ToString()}});
                }
              });
            }));
    core->auto_compactor.emplace(std::move(ac));
  }
  // A snapshot stream cut short by a crash leaves its temporary file behind.
  if (auto names = core->fs->ListDir(dir); names.ok()) {
    for (const auto& n : *names) {
      if (n.rfind("snapshot-", 0) == 0 && n.size() > 4 && n.substr(n.size() - 4) == ".tmp") {
        core->fs->Remove(dir + "/" + n).IgnoreError();  // best effort: only a temp file
      }
    }
  }
  core->metrics->quota_backend_bytes->Set(static_cast<double>(core->quota_bytes()));
  log::Info("opened data dir", {{"data-dir", dir},
                                {"member-id", Hex(core->member_id)},
                                {"cluster-id", Hex(core->cluster_id)},
                                {"revision", core->store->current_revision()},
                                {"applied-index", core->store->applied_index()}});
  return std::unique_ptr<Server>(new Server(std::move(core)));
}

Status Server::Start() {
  Core* c = core_.get();
  TM_RETURN_IF_ERROR(StartWatchHub(c));  // before the apply thread runs
  StartArchive(c);  // wires the archive gates before the pipeline runs
  c->pipeline->Start();
  {
    // The start-of-term entry (see internal.proto Noop); serve only once it
    // is durable so Status never reports a zero raft index.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status noop_status;
    internal::InternalRequest noop;
    noop.mutable_noop();
    c->pipeline->Propose(std::move(noop), [&](const Status& s, internal::InternalResponse*) {
      std::lock_guard<std::mutex> lock(mu);
      noop_status = s;
      done = true;
      cv.notify_one();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    TM_RETURN_IF_ERROR(noop_status);
  }

  c->services.push_back(NewKvService(c));
  c->services.push_back(NewMaintenanceService(c));
  c->services.push_back(NewClusterService(c));
  c->services.push_back(NewLeaseService(c));
  c->services.push_back(NewWatchService(c));
  grpc::ServerBuilder builder;
  for (auto& s : c->services) builder.RegisterService(s.get());
  int max_recv = static_cast<int>(std::max<int64_t>(c->options.max_request_bytes + 512 * 1024,
                                                    2 * 1024 * 1024));
  builder.SetMaxReceiveMessageSize(max_recv);
  builder.SetMaxSendMessageSize(-1);
  // Tolerate grpc-go client keepalive pings (etcdctl asks for every 2 s,
  // clamped to 10 s) as etcd does; gRPC C++'s default would GOAWAY them.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2 * 3600 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, INT32_MAX);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<MetricsInterceptorFactory>(c->metrics.get()));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  c->grpc_server = builder.BuildAndStart();
  if (!c->grpc_server) return InternalError("grpc: server failed to start");

  c->http_server = std::make_unique<httplib::Server>();
  RegisterHttpRoutes(c, c->http_server.get());
  c->http_port = c->http_server->bind_to_any_port("127.0.0.1");
  if (c->http_port <= 0) return IoError("http: cannot bind an internal loopback port");
  c->http_thread = std::thread([c] {
    pthread_setname_np(pthread_self(), "http");
    c->http_server->listen_after_bind();
  });

  for (const auto& url : c->options.listen_client_urls) {
    std::string host;
    int port = 0;
    TM_RETURN_IF_ERROR(ParseUrl(url, &host, &port));
    auto l = std::make_unique<SharedListener>();
    TM_RETURN_IF_ERROR(l->Bind(host, port));
    grpc::Server* gs = c->grpc_server.get();
    l->Start({[gs](int fd) { grpc::AddInsecureChannelFromFd(gs, fd); }, c->http_port});
    log::Info("serving client traffic", {{"address", host + ":" + std::to_string(l->port())},
                                         {"protocols", std::string("grpc,http")}});
    c->listeners.push_back(std::move(l));
  }

  StartLeaseExpiry(c);

  // Maintenance: db size for the quota and Status, metrics gauges.
  c->maintenance_thread = std::thread([c] {
    pthread_setname_np(pthread_self(), "maintenance");
    while (!c->stopping.load()) {
      auto size = c->engine->ApproximateSizeBytes();
      if (size.ok()) c->db_size_bytes.store(static_cast<int64_t>(*size));
      if (c->auto_compactor) c->auto_compactor->Tick();
      for (int i = 0; i < 10 && !c->stopping.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });
  return Status::Ok();
}

std::vector<int> Server::client_ports() const {
  std::vector<int> ports;
  for (const auto& l : core_->listeners) ports.push_back(l->port());
  return ports;
}

void Server::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return shutdown_requested_; });
}

void Server::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_requested_ = true;
  }
  cv_.notify_all();
  if (shut_down_.exchange(true)) return;
  Core* c = core_.get();
  log::Info("shutting down");
  c->stopping.store(true);
  for (auto& l : c->listeners) l->Stop();
  if (c->grpc_server) {
    c->grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  StopWatchHub(c);  // ends watch streams so the gRPC shutdown need not wait
  if (c->http_server) c->http_server->stop();
  if (c->http_thread.joinable()) c->http_thread.join();
  if (c->maintenance_thread.joinable()) c->maintenance_thread.join();
  if (c->lessor) c->lessor->Stop();  // no expiry proposals after this
  if (c->pipeline) c->pipeline->Stop();
  if (!StopArchive(c).ok()) archive_unshipped_.store(true);  // logged with the range
  if (c->grpc_server) c->grpc_server->Wait();
  c->grpc_server.reset();
  c->pipeline.reset();
  if (c->wal) {
    Status s = c->wal->Close();
    if (!s.ok()) log::Error("closing WAL", {{"error", s.ToString()}});
  }
  c->applier.reset();
  c->lessor.reset();
  if (c->store) c->store->Close();
  c->store.reset();
  if (c->engine) {
    Status s = c->engine->Close();
    if (!s.ok()) log::Error("closing storage", {{"error", s.ToString()}});
  }
  log::Info("stopped");
}

}  // namespace tidemark::server
