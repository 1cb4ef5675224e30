#pragma once
// Core: everything the gRPC services and HTTP handlers share. Built by
// Server::Open, torn down in reverse order by Server::Shutdown.
//
// Thread-safety: fields are set once during Open/Start and only read after;
// the objects they point to document their own thread-safety.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/server.h>

#include "apply/applier.h"
#include "base/clock.h"
#include "fs/file_system.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/auto_compactor.h"
#include "server/listener.h"
#include "server/metrics.h"
#include "server/options.h"
#include "server/pipeline.h"
#include "storage/engine.h"
#include "wal/wal.h"
#include "watch/hub.h"

#include "etcdserverpb/rpc.pb.h"

namespace httplib {
class Server;
}

namespace tidemark::server {

struct Core {
  ServerOptions options;
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
  // Single node: term 1 forever (no election ever happens); WAL entries carry
  // term 0 until clustering exists.
  uint64_t raft_term = 1;

  std::unique_ptr<Clock> clock;
  std::unique_ptr<fs::FileSystem> fs;
  std::unique_ptr<fs::FileLock> lock;
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<mvcc::Store> store;
  std::unique_ptr<lease::Lessor> lessor;  // outlives applier (which points to it)
  std::unique_ptr<apply::Applier> applier;
  std::unique_ptr<wal::Wal> wal;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<watch::Hub> watch_hub;  // fed by pipeline's applied hook
  // Continuous archive (server/archive_glue.h); null when --archive-url is empty.
  std::shared_ptr<struct ArchiveRuntime> archive;

  std::vector<std::unique_ptr<grpc::Service>> services;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<httplib::Server> http_server;
  std::thread http_thread;
  int http_port = 0;
  std::vector<std::unique_ptr<SharedListener>> listeners;

  // Refreshed by the maintenance thread (cheap to read on every write).
  std::atomic<int64_t> db_size_bytes{0};
  std::atomic<bool> stopping{false};
  std::thread maintenance_thread;
  std::optional<AutoCompactor> auto_compactor;  // maintenance thread only

  int64_t quota_bytes() const {
    return options.quota_backend_bytes > 0 ? options.quota_backend_bytes : kDefaultQuotaBytes;
  }

  void FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const {
    h->set_cluster_id(cluster_id);
    h->set_member_id(member_id);
    h->set_revision(revision);
    h->set_raft_term(raft_term);
  }
  void FillHeader(etcdserverpb::ResponseHeader* h) const {
    FillHeader(h, store->current_revision());
  }

  // Admission for a write of `request_bytes` (etcd's order): request size,
  // apply backlog, then space quota (raising NOSPACE when exceeded).
  Status AdmitWrite(size_t request_bytes, bool needs_space);

  // Sets the gauges that mirror state (keys, revisions, sizes, backlog).
  void RefreshGauges();

  std::string data_path(const std::string& leaf) const { return options.data_dir + "/" + leaf; }
};

}  // namespace tidemark::server
