#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace tidemark::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// etcd's buckets: 1 ms .. ~8 s, doubling (prometheus.ExponentialBuckets(0.001, 2, 14)).
Histogram::BucketBoundaries EtcdDiskBuckets() {
  Histogram::BucketBoundaries b;
  double v = 0.001;
  for (int i = 0; i < 14; ++i, v *= 2) b.push_back(v);
  return b;
}

// Finer buckets for our own apply timings: 10 µs .. ~80 ms.
Histogram::BucketBoundaries FineBuckets() {
  Histogram::BucketBoundaries b;
  double v = 0.00001;
  for (int i = 0; i < 14; ++i, v *= 2) b.push_back(v);
  return b;
}

double ProcessStartTime() {
  std::ifstream f("/proc/self/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto p = s.rfind(')');
  if (p == std::string::npos) return 0;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  unsigned long long start_ticks = 0;
  for (int i = 3; i <= 22 && in >> field; ++i) {
    if (i == 22) start_ticks = std::stoull(field);
  }
  std::ifstream up("/proc/uptime");
  double uptime = 0;
  up >> uptime;
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return now - uptime + static_cast<double>(start_ticks) / ticks;
}

}  // namespace

Metrics::Metrics() : registry(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry;
  has_leader = &BuildGauge().Name("etcd_server_has_leader").Help("Whether or not a leader exists. 1 is existence, 0 is not.").Register(r).Add({});
  is_leader = &BuildGauge().Name("etcd_server_is_leader").Help("Whether or not this member is a leader. 1 if is, 0 otherwise.").Register(r).Add({});
  leader_changes = &BuildCounter().Name("etcd_server_leader_changes_seen_total").Help("The number of leader changes seen.").Register(r).Add({});
  db_total_size = &BuildGauge().Name("etcd_mvcc_db_total_size_in_bytes").Help("Total size of the underlying database physically allocated in bytes.").Register(r).Add({});
  db_total_size_in_use = &BuildGauge().Name("etcd_mvcc_db_total_size_in_use_in_bytes").Help("Total size of the underlying database logically in use in bytes.").Register(r).Add({});
  quota_backend_bytes = &BuildGauge().Name("etcd_server_quota_backend_bytes").Help("Current backend storage quota size in bytes.").Register(r).Add({});
  keys_total = &BuildGauge().Name("etcd_debugging_mvcc_keys_total").Help("Total number of keys.").Register(r).Add({});
  put_total = &BuildCounter().Name("etcd_mvcc_put_total").Help("Total number of puts seen by this member.").Register(r).Add({});
  delete_total = &BuildCounter().Name("etcd_mvcc_delete_total").Help("Total number of deletes seen by this member.").Register(r).Add({});
  range_total = &BuildCounter().Name("etcd_mvcc_range_total").Help("Total number of ranges seen by this member.").Register(r).Add({});
  txn_total = &BuildCounter().Name("etcd_mvcc_txn_total").Help("Total number of txns seen by this member.").Register(r).Add({});
  proposals_committed = &BuildCounter().Name("etcd_server_proposals_committed_total").Help("The total number of consensus proposals committed.").Register(r).Add({});
  proposals_applied = &BuildCounter().Name("etcd_server_proposals_applied_total").Help("The total number of consensus proposals applied.").Register(r).Add({});
  proposals_failed = &BuildCounter().Name("etcd_server_proposals_failed_total").Help("The total number of failed proposals seen.").Register(r).Add({});
  proposals_pending = &BuildGauge().Name("etcd_server_proposals_pending").Help("The current number of pending proposals to commit.").Register(r).Add({});
  current_revision = &BuildGauge().Name("etcd_debugging_mvcc_current_revision").Help("The current revision of store.").Register(r).Add({});
  compact_revision = &BuildGauge().Name("etcd_debugging_mvcc_compact_revision").Help("The revision of the last compaction in store.").Register(r).Add({});
  wal_fsync_seconds = &BuildHistogram().Name("etcd_disk_wal_fsync_duration_seconds").Help("The latency distributions of fsync called by WAL.").Register(r).Add({}, EtcdDiskBuckets());
  backend_commit_seconds = &BuildHistogram().Name("etcd_disk_backend_commit_duration_seconds").Help("The latency distributions of commit called by backend.").Register(r).Add({}, EtcdDiskBuckets());
  apply_seconds = &BuildHistogram().Name("tidemark_apply_duration_seconds").Help("Time to apply one committed entry to storage.").Register(r).Add({}, FineBuckets());
  wal_batch_entries = &BuildHistogram().Name("tidemark_wal_batch_entries").Help("Entries written per WAL fdatasync (group commit size).").Register(r).Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  wal_bytes_written = &BuildCounter().Name("etcd_disk_wal_write_bytes_total").Help("Total number of bytes written in WAL.").Register(r).Add({});
  slow_apply_total = &BuildCounter().Name("etcd_server_slow_apply_total").Help("The total number of slow apply requests (likely overloaded from slow disk).").Register(r).Add({});
  lease_granted = &BuildCounter().Name("etcd_debugging_lease_granted_total").Help("The total number of granted leases.").Register(r).Add({});
  lease_revoked = &BuildCounter().Name("etcd_debugging_lease_revoked_total").Help("The total number of revoked leases.").Register(r).Add({});
  lease_renewed = &BuildCounter().Name("etcd_debugging_lease_renewed_total").Help("The number of renewed leases seen by the leader.").Register(r).Add({});
  {
    Histogram::BucketBoundaries ttl_buckets;  // etcd: ExponentialBuckets(1, 2, 14)
    double v = 1;
    for (int i = 0; i < 14; ++i, v *= 2) ttl_buckets.push_back(v);
    lease_ttl = &BuildHistogram().Name("etcd_debugging_lease_ttl_total").Help("Bucketed histogram of lease TTLs.").Register(r).Add({}, ttl_buckets);
  }
  lease_expired = &BuildCounter().Name("tidemark_lease_expired_total").Help("The total number of leases revoked because their TTL ran out.").Register(r).Add({});
  lease_live = &BuildGauge().Name("tidemark_lease_live").Help("The number of leases currently granted.").Register(r).Add({});
  watcher_total = &BuildGauge().Name("etcd_debugging_mvcc_watcher_total").Help("Total number of watchers.").Register(r).Add({});
  watch_stream_total = &BuildGauge().Name("etcd_debugging_mvcc_watch_stream_total").Help("Total number of watch streams.").Register(r).Add({});
  slow_watcher_total = &BuildGauge().Name("etcd_debugging_mvcc_slow_watcher_total").Help("Total number of unsynced slow watchers.").Register(r).Add({});
  pending_events_total = &BuildGauge().Name("etcd_debugging_mvcc_pending_events_total").Help("Total number of pending events to be sent.").Register(r).Add({});
  watch_events_total = &BuildCounter().Name("etcd_debugging_mvcc_events_total").Help("Total number of events sent by this member.").Register(r).Add({});
  watch_responses_total = &BuildCounter().Name("tidemark_watch_responses_total").Help("WatchResponse messages written to watch streams (events, created, canceled and progress replies; fragments count one each).").Register(r).Add({});
  rpc_handled_ = &BuildCounter().Name("grpc_server_handled_total").Help("Total number of RPCs completed on the server, regardless of success or failure.").Register(r);
  rpc_started_ = &BuildCounter().Name("grpc_server_started_total").Help("Total number of RPCs started on the server.").Register(r);
  rss_ = &BuildGauge().Name("process_resident_memory_bytes").Help("Resident memory size in bytes.").Register(r).Add({});
  vsize_ = &BuildGauge().Name("process_virtual_memory_bytes").Help("Virtual memory size in bytes.").Register(r).Add({});
  cpu_seconds_ = &BuildGauge().Name("process_cpu_seconds_total").Help("Total user and system CPU time spent in seconds.").Register(r).Add({});
  open_fds_ = &BuildGauge().Name("process_open_fds").Help("Number of open file descriptors.").Register(r).Add({});
  start_time_ = &BuildGauge().Name("process_start_time_seconds").Help("Start time of the process since unix epoch in seconds.").Register(r).Add({});
  start_time_->Set(ProcessStartTime());
  has_leader->Set(1);
  is_leader->Set(1);
  leader_changes->Increment();
}

void Metrics::RpcHandled(const std::string& type, const std::string& service,
                         const std::string& method, const std::string& code) {
  rpc_handled_
      ->Add({{"grpc_type", type}, {"grpc_service", service}, {"grpc_method", method}, {"grpc_code", code}})
      .Increment();
}

void Metrics::RpcStarted(const std::string& type, const std::string& service,
                         const std::string& method) {
  rpc_started_->Add({{"grpc_type", type}, {"grpc_service", service}, {"grpc_method", method}})
      .Increment();
}

std::string Metrics::Render() {
  {
    std::ifstream f("/proc/self/statm");
    unsigned long long size = 0, resident = 0;
    f >> size >> resident;
    double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    rss_->Set(static_cast<double>(resident) * page);
    vsize_->Set(static_cast<double>(size) * page);
  }
  {
    std::ifstream f("/proc/self/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto p = s.rfind(')');
    if (p != std::string::npos) {
      std::istringstream in(s.substr(p + 2));
      std::string field;
      double ut = 0, st = 0;
      for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) ut = std::stod(field);
        if (i == 15) st = std::stod(field);
      }
      cpu_seconds_->Set((ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK)));
    }
  }
  {
    int n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d) != nullptr) ++n;
      closedir(d);
    }
    open_fds_->Set(n > 2 ? n - 2 : 0);
  }
  prometheus::TextSerializer ser;
  std::ostringstream out;
  ser.Serialize(out, registry->Collect());
  return out.str();
}

}  // namespace tidemark::server
