#include "bench/workload.h"

#include <cstdio>
#include <cstdlib>

namespace tidemark::bench {

const char* OpTypeName(OpType t) {
  switch (t) {
    case OpType::kRange:
      return "range";
    case OpType::kPut:
      return "put";
    case OpType::kDelete:
      return "delete";
    case OpType::kTxn:
      return "txn";
  }
  return "?";
}

std::string OpMix::Describe() const {
  std::string out;
  for (size_t i = 0; i < kOpTypes; ++i) {
    if (weight[i] <= 0)
      continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s=%g", out.empty() ? "" : ",",
                  OpTypeName(static_cast<OpType>(i)), weight[i]);
    out += buf;
  }
  return out;
}

Result<OpMix> ParseOpMix(const std::string& spec) {
  OpMix mix;
  mix.weight = {0, 0, 0, 0};
  size_t start = 0;
  double total = 0;
  while (start < spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos)
      comma = spec.size();
    std::string item = spec.substr(start, comma - start);
    start = comma + 1;
    size_t eq = item.find('=');
    std::string name = item.substr(0, eq);
    double w = 1;
    if (eq != std::string::npos) {
      char* end = nullptr;
      std::string num = item.substr(eq + 1);
      w = std::strtod(num.c_str(), &end);
      if (num.empty() || end != num.c_str() + num.size() || w < 0) {
        return InvalidArgumentError("mix '" + spec + "': bad weight in '" + item + "'");
      }
    }
    int idx = -1;
    for (size_t i = 0; i < kOpTypes; ++i) {
      if (name == OpTypeName(static_cast<OpType>(i)))
        idx = static_cast<int>(i);
    }
    if (name == "del")
      idx = static_cast<int>(OpType::kDelete);
    if (idx < 0) {
      return InvalidArgumentError(
          "unknown workload operation '" + name + "' in mix '" + spec +
          "' (expected range, put, delete, txn; watch is not available yet)");
    }
    mix.weight[idx] += w;
    total += w;
  }
  if (total <= 0)
    return InvalidArgumentError("mix '" + spec + "': no operation has a positive weight");
  return mix;
}

Result<std::unique_ptr<OpGenerator>> OpGenerator::Create(const WorkloadSpec& spec) {
  if (spec.key_size == 0 || spec.key_size > 4096) {
    return InvalidArgumentError("key size must be in [1, 4096], got " +
                                std::to_string(spec.key_size));
  }
  std::unique_ptr<OpGenerator> g(new OpGenerator());
  g->spec_ = spec;
  TM_ASSIGN_OR_RETURN(g->chooser_, ParseKeyChooser(spec.key_dist, spec.key_space));
  TM_ASSIGN_OR_RETURN(g->value_size_, ParseSizeDist(spec.value_size));
  double total = 0;
  for (double w : spec.mix.weight)
    total += w;
  if (total <= 0)
    return InvalidArgumentError("operation mix is empty");
  double acc = 0;
  for (size_t i = 0; i < kOpTypes; ++i) {
    acc += spec.mix.weight[i] / total;
    g->cumulative_[i] = acc;
  }
  g->cumulative_[kOpTypes - 1] = 1.0;
  // Incompressible-looking but deterministic bytes; a value is a slice.
  g->value_pool_.resize(g->value_size_.hi + 4096);
  Rng fill(42);
  for (char& c : g->value_pool_)
    c = static_cast<char>('a' + fill() % 26);
  return g;
}

Op OpGenerator::Next(Rng& rng) {
  Op op;
  double u = std::uniform_real_distribution<double>(0, 1)(rng);
  size_t t = 0;
  while (t + 1 < kOpTypes && u >= cumulative_[t])
    ++t;
  op.type = static_cast<OpType>(t);
  op.key = FormatKey(chooser_->Next(rng), spec_.key_size);
  if (op.type == OpType::kPut || op.type == OpType::kTxn) {
    uint64_t n = value_size_.Next(rng);
    size_t off = std::uniform_int_distribution<size_t>(0, 4095)(rng);
    op.value.assign(value_pool_, off, n);
  }
  op.serializable = spec_.serializable;
  return op;
}

}  // namespace tidemark::bench
