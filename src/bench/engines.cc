// `tidemark bench engines`: placeholder until the embedded-engine drivers land.
#include <cstdio>
#include <string>

namespace tidemark::bench {

struct BenchFlags;

int RunEngines(const BenchFlags&, const std::string&) {
  std::fprintf(stderr, "Error: bench engines is not implemented yet\n");
  return 2;
}

}  // namespace tidemark::bench
