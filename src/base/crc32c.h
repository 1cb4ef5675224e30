#pragma once
// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78).
//
// Used to frame every record Tidemark writes to disk (WAL records, segment
// headers). Uses the SSE4.2 CRC32 instruction when the CPU has it (checked
// once at run time) and a portable slicing-by-8 table otherwise; both produce
// identical values.
//
// Thread safety: all functions are pure and may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tidemark::crc32c {

// Returns the CRC32C of `data[0, n)` appended to a byte stream whose CRC32C is
// `crc` (the value returned by an earlier Value()/Extend() call; 0 for the
// empty stream). Extend(Value(a), b) == Value(a ++ b).
uint32_t Extend(uint32_t crc, const void* data, size_t n);

// Returns the CRC32C of `data[0, n)`. Value("123456789") == 0xE3069283.
inline uint32_t Value(const void* data, size_t n) {
  return Extend(0, data, n);
}
inline uint32_t Value(std::string_view data) {
  return Extend(0, data.data(), data.size());
}
inline uint32_t Extend(uint32_t crc, std::string_view data) {
  return Extend(crc, data.data(), data.size());
}

// Masking (for CRCs that are stored on disk): the CRC of a string that itself
// contains embedded CRCs is prone to degenerate cases, so we store a rotated
// and offset value instead. Unmask(Mask(c)) == c for every c.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// Exposed for tests and benchmarks: the two implementations behind Extend().
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
// Precondition: HardwareAvailable(). Falls back to ExtendPortable otherwise.
uint32_t ExtendHardware(uint32_t crc, const void* data, size_t n);
// True when the running CPU supports SSE4.2 (and this is an x86-64 build).
bool HardwareAvailable();

}  // namespace tidemark::crc32c
