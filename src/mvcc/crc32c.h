#pragma once
// Crc32c: incremental CRC-32C (Castagnoli, reflected 0x82F63B78), the
// checksum etcd's HashKV uses. Values equal base/crc32c.h's.
// TODO(mvcc): switch to base/crc32c once it is part of tm_base (#storage).
//
// Thread safety: an instance is single-threaded; no shared state after the
// table is built (function-local static, thread-safe initialization).

#include <cstdint>
#include <string_view>

namespace tidemark::mvcc {

class Crc32c {
 public:
  void Update(std::string_view data);
  uint32_t value() const { return ~state_; }

 private:
  uint32_t state_ = 0xffffffffu;
};

}  // namespace tidemark::mvcc
