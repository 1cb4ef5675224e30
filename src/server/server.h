#pragma once
// The composition root: opens the data directory (member identity, storage,
// WAL), recovers, wires the commit pipeline to the gRPC services and the HTTP
// endpoints, and serves on the client URLs until Shutdown().
//
// Data directory layout (docs/formats/data-dir.md):
//   <data-dir>/member.json   member/cluster identity
//   <data-dir>/db/           storage (RocksDB, its WAL off)
//   <data-dir>/wal/          our WAL (source of truth)
//   <data-dir>/LOCK          held while a server runs
//
// Threads: Open/Start/Wait/Shutdown from the main thread; Shutdown is also
// safe from a signal-watching thread.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "server/options.h"

namespace tidemark::server {

struct Core;  // shared by the services (server/core.h)

class Server {
 public:
  static Result<std::unique_ptr<Server>> Open(const ServerOptions& options);
  ~Server();

  // Binds every listen URL and starts serving. Errors name the address.
  Status Start();
  // The bound client ports (useful when a URL asked for port 0).
  std::vector<int> client_ports() const;
  // Blocks until Shutdown() is called.
  void Wait();
  // Stops accepting, drains the pipeline, closes storage and WAL. Idempotent.
  void Shutdown();
  // After Shutdown: true if committed entries could not be shipped to the
  // archive within --archive-shutdown-timeout (the log names them).
  bool archive_unshipped() const { return archive_unshipped_.load(); }

 private:
  explicit Server(std::unique_ptr<Core> core);
  std::unique_ptr<Core> core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_requested_ = false;
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> archive_unshipped_{false};
};

}  // namespace tidemark::server
