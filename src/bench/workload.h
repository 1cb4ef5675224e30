#pragma once
// The operation mix of a workload: which etcd KV operations, in which
// proportion, on which keys, with which value sizes.
//
// Mix spec: comma-separated NAME=WEIGHT pairs, NAME in range, put, delete,
// txn (compare + put), e.g. "put=1" or "range=8,put=2". Weights are relative
// (any non-negative numbers, at least one positive).
//
// Thread safety: OpGenerator::Next may be called concurrently from several
// threads, each with its own Rng (the key chooser is shared; see
// distributions.h).

#include <array>
#include <memory>
#include <string>

#include "base/status.h"
#include "bench/distributions.h"

namespace tidemark::bench {

enum class OpType { kRange = 0, kPut, kDelete, kTxn };
inline constexpr size_t kOpTypes = 4;
const char* OpTypeName(OpType t);

struct Op {
  OpType type = OpType::kPut;
  std::string key;
  std::string value;          // put / txn
  bool serializable = false;  // range
};

struct OpMix {
  std::array<double, kOpTypes> weight{0, 1, 0, 0};
  std::string Describe() const;  // normalized "range=8,put=2"
};
Result<OpMix> ParseOpMix(const std::string& spec);

struct WorkloadSpec {
  OpMix mix;
  bool serializable = false;  // range consistency: false = linearizable
  std::string key_dist = "uniform";
  uint64_t key_space = 100000;
  size_t key_size = 8;
  std::string value_size = "256";
};

class OpGenerator {
 public:
  // kInvalidArgument for a bad key distribution, value size or key size.
  static Result<std::unique_ptr<OpGenerator>> Create(const WorkloadSpec& spec);
  Op Next(Rng& rng);
  const KeyChooser& chooser() const { return *chooser_; }

 private:
  OpGenerator() = default;
  WorkloadSpec spec_;
  std::unique_ptr<KeyChooser> chooser_;
  SizeDist value_size_;
  std::array<double, kOpTypes> cumulative_{};
  std::string value_pool_;  // values are slices of this pre-filled buffer
};

}  // namespace tidemark::bench
