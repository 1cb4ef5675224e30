#pragma once
// Server configuration. Flag names follow etcd's where the concept exists
// (docs/operations.md lists them all).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tidemark::server {

struct ServerOptions {
  std::string name = "default";
  std::string data_dir;  // default: "<name>.tidemark" in the working directory
  std::vector<std::string> listen_client_urls = {"http://127.0.0.1:2379"};
  std::vector<std::string> advertise_client_urls;  // default: the listen URLs
  std::vector<std::string> initial_advertise_peer_urls = {"http://localhost:2380"};
  int64_t quota_backend_bytes = 0;  // 0 = etcd's default, 2 GiB
  std::string auto_compaction_mode = "periodic";  // periodic | revision
  std::string auto_compaction_retention = "0";     // 0 = off
  int64_t max_request_bytes = 1572864;  // 1.5 MiB
  int max_txn_ops = 128;
  std::string log_level = "info";
  int64_t wal_segment_bytes = 64LL << 20;
  // Apply backlog above which writes are refused ("too many requests").
  uint64_t max_pending_proposals = 5000;
  // etcd --experimental-watch-progress-notify-interval (Go duration text).
  std::string watch_progress_notify_interval = "10m";
  // Continuous archive (docs/design/archive.md); empty URL = off.
  std::string archive_url;                 // file:///dir | s3://bucket/prefix
  int64_t archive_interval_ms = 1000;      // ship at least this often
  bool archive_sync = false;               // ack writes only once archived
  int64_t archive_spool_limit_bytes = 8LL << 30;  // unshipped WAL kept locally
  std::string archive_spool_policy = "refuse-writes";
  int64_t archive_shutdown_timeout_ms = 5000;
  int64_t archive_heartbeat_ms = 300000;
  int64_t archive_base_interval_ms = 3600000;
  int64_t archive_base_every_entries = 1000000;
  int64_t archive_hashkv_interval_ms = 600000;  // HashKV records between bases; 0 = off
  std::string archive_s3_endpoint;
  std::string archive_s3_region = "us-east-1";
  bool archive_s3_path_style = true;
  // Credentials: these (flags, or the config file), else AWS_ACCESS_KEY_ID /
  // AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment (one
  // source as a unit, never mixed).
  std::string archive_s3_access_key_id;
  std::string archive_s3_secret_access_key;
  std::string archive_s3_session_token;
  // Release WAL segments at most every this many entries (hidden flag
  // --debug-wal-release-every-entries; tests of --archive-spool-policy continue).
  uint64_t wal_release_every_entries = 100000;
  // Debug only (hidden flag --debug-inject-fsync-delay): called on the
  // wal-writer thread right after every successful WAL fdatasync, e.g. to
  // sleep for a random delay and study tail latency. Empty = off.
  std::function<void()> debug_after_wal_sync;
};

inline constexpr int64_t kDefaultQuotaBytes = 2LL << 30;
inline constexpr char kEtcdVersion[] = "3.4.23";
inline constexpr char kEtcdClusterVersion[] = "3.4.0";

}  // namespace tidemark::server
