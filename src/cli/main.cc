// tidemark: the single binary. Subcommands: serve, version.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "base/log.h"
#include "cli/archive_commands.h"
#include "bench/bench_cli.h"
#include "bench/distributions.h"
#include "server/options.h"
#include "server/server.h"

namespace {

using tidemark::server::ServerOptions;

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string part = s.substr(start, comma - start);
    if (!part.empty()) out.push_back(part);
    start = comma + 1;
  }
  return out;
}

// etcd's YAML config file keys are the flag names. As in etcd, when a config
// file is given it is the whole configuration: other flags are ignored.
bool LoadConfigFile(const std::string& path, ServerOptions* o, std::string* err) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    *err = "config-file " + path + ": " + e.what();
    return false;
  }
  if (!root.IsMap()) {
    *err = "config-file " + path + ": top level must be a mapping of flag names to values";
    return false;
  }
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      auto urls = [&]() {
        if (v.IsSequence()) return v.as<std::vector<std::string>>();
        return SplitCommas(v.as<std::string>());
      };
      if (key == "name") o->name = v.as<std::string>();
      else if (key == "data-dir") o->data_dir = v.as<std::string>();
      else if (key == "listen-client-urls") o->listen_client_urls = urls();
      else if (key == "advertise-client-urls") o->advertise_client_urls = urls();
      else if (key == "initial-advertise-peer-urls") o->initial_advertise_peer_urls = urls();
      else if (key == "quota-backend-bytes") o->quota_backend_bytes = v.as<int64_t>();
      else if (key == "auto-compaction-mode") o->auto_compaction_mode = v.as<std::string>();
      else if (key == "auto-compaction-retention") o->auto_compaction_retention = v.as<std::string>();
      else if (key == "max-request-bytes") o->max_request_bytes = v.as<int64_t>();
      else if (key == "max-txn-ops") o->max_txn_ops = v.as<int>();
      else if (key == "log-level") o->log_level = v.as<std::string>();
      else if (key == "wal-segment-bytes") o->wal_segment_bytes = v.as<int64_t>();
      else if (key == "experimental-watch-progress-notify-interval") o->watch_progress_notify_interval = v.as<std::string>();
      else if (tidemark::cli::ApplyArchiveConfigKey(key, v, o)) {}
      else {
        tidemark::log::Warn("config-file: unknown key ignored", {{"key", key}, {"file", path}});
      }
    }
  } catch (const std::exception& e) {
    *err = "config-file " + path + ": " + e.what();
    return false;
  }
  return true;
}

int Serve(ServerOptions options, const std::string& config_file) {
  if (!config_file.empty()) {
    std::string err;
    options = ServerOptions{};
    if (!LoadConfigFile(config_file, &options, &err)) {
      std::fprintf(stderr, "Error: %s\n", err.c_str());
      return 2;
    }
  }
  tidemark::log::Level level;
  if (!tidemark::log::ParseLevel(options.log_level, &level)) {
    std::fprintf(stderr, "Error: --log-level %s: expected debug, info, warn or error\n",
                 options.log_level.c_str());
    return 2;
  }
  tidemark::log::SetLevel(level);
  if (options.max_txn_ops < 1) {
    std::fprintf(stderr, "Error: --max-txn-ops must be at least 1\n");
    return 2;
  }
  if (std::string err; !tidemark::cli::FinishArchiveServeFlags(&options, &err)) {
    std::fprintf(stderr, "Error: %s\n", err.c_str());
    return 2;
  }

  // Signals are taken by one thread with sigwait; block them everywhere else.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = tidemark::server::Server::Open(options);
  if (!server.ok()) {
    tidemark::log::Error("cannot open server", {{"error", server.status().ToString()}});
    std::fprintf(stderr, "Error: %s\n", server.status().message().c_str());
    return 1;
  }
  auto& srv = *server;
  tidemark::Status s = srv->Start();
  if (!s.ok()) {
    tidemark::log::Error("cannot start server", {{"error", s.ToString()}});
    std::fprintf(stderr, "Error: %s\n", s.message().c_str());
    srv->Shutdown();
    return 1;
  }
  tidemark::log::Info("ready to serve client requests", {{"name", options.name}});
  std::thread signals([&] {
    int sig = 0;
    sigwait(&set, &sig);
    tidemark::log::Info("received signal; shutting down", {{"signal", static_cast<int64_t>(sig)}});
    srv->Shutdown();
  });
  srv->Wait();
  srv->Shutdown();
  // The signal thread may still wait; wake it so it can be joined.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  if (srv->archive_unshipped()) {
    std::fprintf(stderr, "Error: committed entries were not shipped to the archive (see log)\n");
    return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Tidemark: an etcd-v3-compatible key-value store with continuous archiving"};
  app.require_subcommand(1);

  ServerOptions o;
  std::string config_file, listen_urls, advertise_urls, peer_urls;
  auto* serve = app.add_subcommand("serve", "Run the server");
  serve->add_option("--name", o.name, "Human-readable name for this member")->default_val(o.name);
  serve->add_option("--data-dir", o.data_dir, "Path to the data directory (default: <name>.tidemark)");
  serve->add_option("--listen-client-urls", listen_urls,
                    "Comma-separated URLs to serve gRPC and HTTP clients on")
      ->default_val("http://127.0.0.1:2379");
  serve->add_option("--advertise-client-urls", advertise_urls,
                    "Comma-separated client URLs advertised in MemberList");
  serve->add_option("--initial-advertise-peer-urls", peer_urls,
                    "Peer URLs advertised in MemberList (no peer traffic yet)")
      ->default_val("http://localhost:2380");
  serve->add_option("--quota-backend-bytes", o.quota_backend_bytes,
                    "Raise the NOSPACE alarm when the database exceeds this size (0 = 2 GiB)")
      ->default_val(0);
  serve->add_option("--auto-compaction-mode", o.auto_compaction_mode,
                    "periodic or revision")->default_val("periodic");
  serve->add_option("--auto-compaction-retention", o.auto_compaction_retention,
                    "Auto compaction retention (0 = off): hours or a duration for periodic, "
                    "revisions for revision mode")->default_val("0");
  serve->add_option("--max-request-bytes", o.max_request_bytes,
                    "Maximum client request size in bytes")->default_val(1572864);
  serve->add_option("--max-txn-ops", o.max_txn_ops,
                    "Maximum operations per list in a transaction")->default_val(128);
  serve->add_option("--log-level", o.log_level, "debug, info, warn or error")->default_val("info");
  serve->add_option("--wal-segment-bytes", o.wal_segment_bytes, "WAL segment file size")
      ->default_val(64LL << 20);
  serve->add_option("--experimental-watch-progress-notify-interval",
                    o.watch_progress_notify_interval,
                    "Interval of progress notifications to watchers that asked for them")
      ->default_val("10m");
  std::string debug_fsync_delay;
  serve->add_option("--debug-inject-fsync-delay", debug_fsync_delay,
                    "DEBUG: sleep after every WAL fdatasync, e.g. exp:1ms (tidemark bench)")
      ->group("");  // hidden
  serve->add_option("--config-file", config_file,
                    "YAML config file (keys = flag names); when given, other flags are ignored");

  tidemark::cli::AddArchiveServeFlags(serve, &o);
  tidemark::cli::AddArchiveCommands(&app);
  auto* version = app.add_subcommand("version", "Print versions");
  tidemark::bench::BenchCli bench_cli(&app);

  CLI11_PARSE(app, argc, argv);
  if (bench_cli.parsed()) return bench_cli.Run(argc, argv);

  if (int rc = 0; tidemark::cli::RunArchiveCommands(&rc)) return rc;
  if (version->parsed()) {
    std::printf("tidemark version: 0.1.0\netcd API version: %s\n", tidemark::server::kEtcdVersion);
    return 0;
  }
  if (!debug_fsync_delay.empty()) {
    auto hook = tidemark::bench::MakeSleepHook(debug_fsync_delay);
    if (!hook.ok()) {
      std::fprintf(stderr, "Error: --debug-inject-fsync-delay: %s\n", hook.status().message().c_str());
      return 2;
    }
    o.debug_after_wal_sync = *hook;
    tidemark::log::Warn("DEBUG: injecting a delay after every WAL fdatasync",
                        {{"delay", debug_fsync_delay}});
  }
  o.listen_client_urls = SplitCommas(listen_urls);
  if (!advertise_urls.empty()) o.advertise_client_urls = SplitCommas(advertise_urls);
  o.initial_advertise_peer_urls = SplitCommas(peer_urls);
  if (!config_file.empty() && argc > 4) {
    tidemark::log::Warn("--config-file given: other command-line flags are ignored (as in etcd)");
  }
  return Serve(o, config_file);
}
