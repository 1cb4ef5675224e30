#pragma once
// bench::GrpcTarget: a Target that sends etcd v3 KV RPCs over gRPC with the
// callback API, N channels (TCP connections) shared round-robin by M
// clients: client c uses connection c % N.
//
// Every RPC has a deadline (rpc_timeout_ms) so a hung server cannot hang the
// benchmark; a deadline or any non-OK gRPC status is reported to the driver
// as kUnavailable with the gRPC code and message.
//
// Thread safety: Start() may be called from any thread concurrently.

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/driver.h"

namespace tidemark::bench {

struct GrpcTargetOptions {
  std::string endpoint;  // host:port
  int connections = 1;
  int64_t connect_timeout_ms = 5000;
  int64_t rpc_timeout_ms = 30000;
};

class GrpcTarget final : public Target {
 public:
  // Opens the connections and waits until each is ready. kUnavailable naming
  // the endpoint if it cannot connect within connect_timeout_ms;
  // kInvalidArgument for connections < 1 or an empty endpoint.
  static Result<std::unique_ptr<GrpcTarget>> Connect(const GrpcTargetOptions& options);
  ~GrpcTarget() override;

  void Start(int client, const Op& op, std::function<void(const Status&)> done) override;

  // One synchronous Status RPC: the server's version string, or the error.
  Result<std::string> ServerVersion();

  struct Rep;

 private:
  explicit GrpcTarget(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

// True if `endpoint` (host:port) names a loopback address: 127.0.0.0/8,
// [::1] or localhost.
bool IsLoopbackEndpoint(const std::string& endpoint);

}  // namespace tidemark::bench
