#pragma once
// CLI for the continuous archive: `serve --archive-*` flags, `tidemark
// restore`, `tidemark archive status|verify` (docs/design/archive.md).

#include <string>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "server/options.h"

namespace tidemark::cli {

// Registers the --archive-* flags on `serve`. Durations are parsed at Run.
void AddArchiveServeFlags(CLI::App* serve, server::ServerOptions* o);
// Applies the parsed duration flags; false + message on a bad value.
bool FinishArchiveServeFlags(server::ServerOptions* o, std::string* err);
// Config-file keys (same names as the flags). True if `key` was one.
bool ApplyArchiveConfigKey(const std::string& key, const YAML::Node& v, server::ServerOptions* o);

// Registers `restore` and `archive` subcommands.
void AddArchiveCommands(CLI::App* app);
// Runs whichever of them was parsed; returns true (and sets *rc) if one was.
bool RunArchiveCommands(int* rc);

}  // namespace tidemark::cli
