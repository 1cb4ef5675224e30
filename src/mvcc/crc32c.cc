#include "mvcc/crc32c.h"

#include <array>

namespace tidemark::mvcc {

namespace {

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

}  // namespace

void Crc32c::Update(std::string_view data) {
  static const std::array<uint32_t, 256> kTable = MakeTable();
  uint32_t c = state_;
  for (unsigned char b : data) c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
  state_ = c;
}

}  // namespace tidemark::mvcc
