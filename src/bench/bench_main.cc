// tidemark-bench: the `tidemark bench` subcommands in a binary of their own,
// linked without the server (quicker to build; usable when only the harness
// is wanted). `tidemark-bench bench run ...` == `tidemark bench run ...`.
#include "bench/bench_cli.h"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"tidemark-bench: workload generator for etcd-compatible servers"};
  app.require_subcommand(1);
  tidemark::bench::BenchCli bench_cli(&app);
  CLI11_PARSE(app, argc, argv);
  return bench_cli.Run(argc, argv);
}
