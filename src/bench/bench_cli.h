#pragma once
// `tidemark bench`: the command-line front end of the benchmark harness.
//
//   tidemark bench run --endpoint HOST:PORT [workload flags]
//   tidemark bench ab  --a HOST:PORT --b HOST:PORT [workload flags]
//
// Usage from main(): construct BenchCli on the CLI11 app before parsing
// (it adds the "bench" subcommand and its flags); after parsing, if parsed()
// call Run(), whose return value is the process exit status:
//   0 all repetitions finished without request errors; 1 the run failed
//   (cannot connect, request errors, cannot write output); 2 bad arguments;
//   130 interrupted by Ctrl-C (finished repetitions are still written).
// docs/design/bench.md describes the flags and the statistics.

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace tidemark::bench {

struct BenchFlags;

class BenchCli {
 public:
  explicit BenchCli(CLI::App* app);
  ~BenchCli();
  BenchCli(const BenchCli&) = delete;
  BenchCli& operator=(const BenchCli&) = delete;

  bool parsed() const;
  int Run(int argc, char** argv);

 private:
  CLI::App* bench_ = nullptr;
  CLI::App* run_ = nullptr;
  CLI::App* ab_ = nullptr;
  CLI::App* engines_ = nullptr;
  std::unique_ptr<BenchFlags> flags_;
};

}  // namespace tidemark::bench
