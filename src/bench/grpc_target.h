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

#include <functional>
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

  // Opens `streams` Watch streams (stream s on connection s % N) carrying
  // `watchers` watchers in all; watcher w watches keys[w % keys.size()].
  // `on_event` runs for every event received, with the event's value and
  // the receive time (NowNs), on gRPC threads, concurrently across streams.
  // Returns once every watcher is created; kUnavailable if a stream fails
  // or creation takes longer than `timeout_ms`. Destroying the session
  // cancels the streams and waits for them to end.
  class WatchSession {
   public:
    virtual ~WatchSession() = default;
    virtual uint64_t events() const = 0;  // received so far
  };
  using EventFn = std::function<void(const std::string& value, int64_t now_ns)>;
  Result<std::unique_ptr<WatchSession>> OpenWatchers(int watchers, int streams,
                                                     const std::vector<std::string>& keys,
                                                     EventFn on_event, int64_t timeout_ms);

  struct Rep;

 private:
  explicit GrpcTarget(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

// True if `endpoint` (host:port) names a loopback address: 127.0.0.0/8,
// [::1] or localhost.
bool IsLoopbackEndpoint(const std::string& endpoint);

}  // namespace tidemark::bench
