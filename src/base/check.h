#pragma once
// TM_CHECK: always-on invariant check. Use only for violations that would
// corrupt data (revisions going backwards, non-contiguous WAL indexes).
// Never for input from disk or network: that is a Status.

#include <cstdio>
#include <cstdlib>

#define TM_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "FATAL %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
