#pragma once
// Byte-order-explicit encoding helpers for on-disk formats.
//
//  * Fixed32/Fixed64: little-endian (all Tidemark file formats).
//  * BigEndian64: big-endian, for keys that must sort bytewise in numeric
//    order (e.g. revisions in RocksDB keys).
//  * Varint32/Varint64: LEB128 (7 bits per byte, low groups first), the same
//    wire form as protobuf varints.
//
// Decoding from untrusted input goes through the Get* functions, which take a
// std::string_view* cursor, advance it past what they consumed, and return
// std::nullopt (leaving the cursor unchanged) on truncated or overlong input.
// They never read outside the view.
//
// Thread safety: all functions are pure.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace tidemark {

inline constexpr size_t kMaxVarint32Bytes = 5;
inline constexpr size_t kMaxVarint64Bytes = 10;

// ---- Fixed-width, little-endian -------------------------------------------

inline void EncodeFixed32(char* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    dst[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    dst[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
inline uint32_t DecodeFixed32(const char* src) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(src[i]);
  return v;
}
inline uint64_t DecodeFixed64(const char* src) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(src[i]);
  return v;
}
inline void EncodeFixed16(char* dst, uint16_t v) {
  dst[0] = static_cast<char>(v & 0xffu);
  dst[1] = static_cast<char>(v >> 8);
}
inline uint16_t DecodeFixed16(const char* src) {
  return static_cast<uint16_t>(static_cast<unsigned char>(src[0]) |
                               (static_cast<unsigned char>(src[1]) << 8));
}

inline void PutFixed32(std::string* dst, uint32_t v) {
  char buf[4];
  EncodeFixed32(buf, v);
  dst->append(buf, sizeof(buf));
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  dst->append(buf, sizeof(buf));
}

inline std::optional<uint32_t> GetFixed32(std::string_view* in) {
  if (in->size() < 4)
    return std::nullopt;
  uint32_t v = DecodeFixed32(in->data());
  in->remove_prefix(4);
  return v;
}
inline std::optional<uint64_t> GetFixed64(std::string_view* in) {
  if (in->size() < 8)
    return std::nullopt;
  uint64_t v = DecodeFixed64(in->data());
  in->remove_prefix(8);
  return v;
}

// ---- Fixed-width, big-endian (sortable) -------------------------------------

inline void EncodeBigEndian64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    dst[i] = static_cast<char>((v >> (8 * (7 - i))) & 0xffu);
}
inline uint64_t DecodeBigEndian64(const char* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(src[i]);
  return v;
}
inline void PutBigEndian64(std::string* dst, uint64_t v) {
  char buf[8];
  EncodeBigEndian64(buf, v);
  dst->append(buf, sizeof(buf));
}
inline std::optional<uint64_t> GetBigEndian64(std::string_view* in) {
  if (in->size() < 8)
    return std::nullopt;
  uint64_t v = DecodeBigEndian64(in->data());
  in->remove_prefix(8);
  return v;
}

// ---- Varints ----------------------------------------------------------------

// Number of bytes EncodeVarint64(v) writes (1..10).
inline size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes v to dst (which must have room for VarintLength(v) bytes); returns
// the position just past the last byte written.
inline char* EncodeVarint64(char* dst, uint64_t v) {
  auto* p = reinterpret_cast<unsigned char*>(dst);
  while (v >= 0x80) {
    *p++ = static_cast<unsigned char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<unsigned char>(v);
  return reinterpret_cast<char*>(p);
}
inline char* EncodeVarint32(char* dst, uint32_t v) {
  return EncodeVarint64(dst, v);
}

inline void PutVarint64(std::string* dst, uint64_t v) {
  char buf[kMaxVarint64Bytes];
  char* end = EncodeVarint64(buf, v);
  dst->append(buf, static_cast<size_t>(end - buf));
}
inline void PutVarint32(std::string* dst, uint32_t v) {
  PutVarint64(dst, v);
}

// Decodes a varint64. Returns nullopt if the input ends inside the varint, if
// it is longer than 10 bytes, or if the 10th byte carries bits beyond 64.
inline std::optional<uint64_t> GetVarint64(std::string_view* in) {
  uint64_t result = 0;
  const size_t limit = in->size() < kMaxVarint64Bytes ? in->size() : kMaxVarint64Bytes;
  for (size_t i = 0; i < limit; ++i) {
    const auto byte = static_cast<unsigned char>((*in)[i]);
    if (i == kMaxVarint64Bytes - 1 && byte > 1)
      return std::nullopt;  // overflows 64 bits
    result |= uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80u) == 0) {
      in->remove_prefix(i + 1);
      return result;
    }
  }
  return std::nullopt;  // truncated, or continuation bit on the 10th byte
}

// Decodes a varint32. Returns nullopt on truncated input, more than 5 bytes,
// or a value that does not fit in 32 bits.
inline std::optional<uint32_t> GetVarint32(std::string_view* in) {
  uint32_t result = 0;
  const size_t limit = in->size() < kMaxVarint32Bytes ? in->size() : kMaxVarint32Bytes;
  for (size_t i = 0; i < limit; ++i) {
    const auto byte = static_cast<unsigned char>((*in)[i]);
    if (i == kMaxVarint32Bytes - 1 && byte > 0x0f)
      return std::nullopt;  // overflows 32 bits
    result |= uint32_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80u) == 0) {
      in->remove_prefix(i + 1);
      return result;
    }
  }
  return std::nullopt;
}

// A varint64 length prefix followed by that many bytes.
inline void PutLengthPrefixed(std::string* dst, std::string_view value) {
  PutVarint64(dst, value.size());
  dst->append(value.data(), value.size());
}
// Returns nullopt (cursor unchanged) if the prefix or the bytes are truncated.
inline std::optional<std::string_view> GetLengthPrefixed(std::string_view* in) {
  std::string_view cursor = *in;
  std::optional<uint64_t> len = GetVarint64(&cursor);
  if (!len || *len > cursor.size())
    return std::nullopt;
  std::string_view value = cursor.substr(0, static_cast<size_t>(*len));
  cursor.remove_prefix(static_cast<size_t>(*len));
  *in = cursor;
  return value;
}

}  // namespace tidemark
