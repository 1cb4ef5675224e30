#pragma once
// Prometheus metrics, named as etcd names them where etcd has the concept
// (so existing dashboards and `etcdctl check datascale` work), plus
// tidemark_* for what etcd lacks. Rendered in the text exposition format by
// the HTTP server at GET /metrics.
//
// Thread-safety: every metric object is thread-safe (prometheus-cpp uses
// atomics); the struct is built once at start-up and never mutated after.

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace tidemark::server {

struct Metrics {
  Metrics();

  // Counts one finished RPC (grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}).
  void RpcHandled(const std::string& type, const std::string& service, const std::string& method,
                  const std::string& code);
  void RpcStarted(const std::string& type, const std::string& service, const std::string& method);

  // The text exposition of every metric, with process_* gauges refreshed.
  std::string Render();

  std::shared_ptr<prometheus::Registry> registry;

  prometheus::Gauge* has_leader;
  prometheus::Gauge* is_leader;
  prometheus::Counter* leader_changes;
  prometheus::Gauge* db_total_size;
  prometheus::Gauge* db_total_size_in_use;
  prometheus::Gauge* quota_backend_bytes;
  prometheus::Gauge* keys_total;
  prometheus::Counter* put_total;
  prometheus::Counter* delete_total;
  prometheus::Counter* range_total;
  prometheus::Counter* txn_total;
  prometheus::Counter* proposals_committed;
  prometheus::Counter* proposals_applied;
  prometheus::Counter* proposals_failed;
  prometheus::Gauge* proposals_pending;
  prometheus::Gauge* current_revision;
  prometheus::Gauge* compact_revision;
  prometheus::Histogram* wal_fsync_seconds;
  prometheus::Histogram* backend_commit_seconds;
  prometheus::Histogram* apply_seconds;
  prometheus::Histogram* wal_batch_entries;
  prometheus::Counter* wal_bytes_written;
  prometheus::Counter* slow_apply_total;
  // Leases (etcd's lease metric names, plus tidemark_* for expiry).
  prometheus::Counter* lease_granted;
  prometheus::Counter* lease_revoked;
  prometheus::Counter* lease_renewed;
  prometheus::Histogram* lease_ttl;
  prometheus::Counter* lease_expired;
  prometheus::Gauge* lease_live;
  // Watch (etcd's mvcc watch metric names).
  prometheus::Gauge* watcher_total;
  prometheus::Gauge* watch_stream_total;
  prometheus::Gauge* slow_watcher_total;
  prometheus::Gauge* pending_events_total;
  prometheus::Counter* watch_events_total;
  prometheus::Counter* watch_responses_total;  // WatchResponse messages written (events/response = batching)

 private:
  prometheus::Family<prometheus::Counter>* rpc_handled_;
  prometheus::Family<prometheus::Counter>* rpc_started_;
  prometheus::Gauge* rss_;
  prometheus::Gauge* vsize_;
  prometheus::Gauge* cpu_seconds_;
  prometheus::Gauge* open_fds_;
  prometheus::Gauge* start_time_;
};

}  // namespace tidemark::server
