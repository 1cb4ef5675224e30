#include "base/coding.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tidemark {
namespace {

TEST(CodingTest, Fixed32And64AreLittleEndian) {
  std::string s;
  PutFixed32(&s, 0x04030201u);
  PutFixed64(&s, 0x0807060504030201ull);
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(s.substr(0, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(s.substr(4), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(DecodeFixed32(s.data()), 0x04030201u);
  EXPECT_EQ(DecodeFixed64(s.data() + 4), 0x0807060504030201ull);

  char b[2];
  EncodeFixed16(b, 0xbeef);
  EXPECT_EQ(static_cast<unsigned char>(b[0]), 0xefu);
  EXPECT_EQ(DecodeFixed16(b), 0xbeef);
}

TEST(CodingTest, FixedRoundTripAndTruncation) {
  std::string s;
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}, uint64_t{1} << 63}) {
    PutFixed64(&s, v);
  }
  std::string_view in = s;
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}, uint64_t{1} << 63}) {
    EXPECT_EQ(GetFixed64(&in), v);
  }
  EXPECT_TRUE(in.empty());
  std::string_view short_in("\x01\x02\x03", 3);
  EXPECT_FALSE(GetFixed32(&short_in).has_value());
  EXPECT_EQ(short_in.size(), 3u);  // cursor untouched
  EXPECT_FALSE(GetFixed64(&short_in).has_value());
}

TEST(CodingTest, BigEndianSortsNumerically) {
  std::vector<uint64_t> values = {0, 1, 255, 256, 65535, 1ull << 32, ~0ull - 1, ~0ull};
  std::string prev;
  for (uint64_t v : values) {
    std::string s;
    PutBigEndian64(&s, v);
    ASSERT_EQ(s.size(), 8u);
    EXPECT_EQ(DecodeBigEndian64(s.data()), v);
    if (!prev.empty()) {
      EXPECT_LT(prev, s) << v;
    }
    prev = s;
  }
  std::string s;
  PutBigEndian64(&s, 0x0102030405060708ull);
  EXPECT_EQ(s, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  std::string_view in(s.data(), 7);
  EXPECT_FALSE(GetBigEndian64(&in).has_value());
}

TEST(CodingTest, Varint64RoundTrip) {
  std::vector<uint64_t> values;
  for (int shift = 0; shift < 64; ++shift) {
    const uint64_t p = uint64_t{1} << shift;
    values.push_back(p - 1);
    values.push_back(p);
    values.push_back(p + 1);
  }
  values.push_back(std::numeric_limits<uint64_t>::max());
  std::string s;
  for (uint64_t v : values) {
    const size_t before = s.size();
    PutVarint64(&s, v);
    EXPECT_EQ(s.size() - before, VarintLength(v)) << v;
  }
  std::string_view in = s;
  for (uint64_t v : values) {
    std::optional<uint64_t> got = GetVarint64(&in);
    ASSERT_TRUE(got.has_value()) << v;
    EXPECT_EQ(*got, v);
  }
  EXPECT_TRUE(in.empty());
}

TEST(CodingTest, Varint32RoundTripAndOverflow) {
  std::string s;
  for (uint32_t v : {0u, 127u, 128u, 16383u, 16384u, 0xffffffffu}) {
    PutVarint32(&s, v);
  }
  std::string_view in = s;
  for (uint32_t v : {0u, 127u, 128u, 16383u, 16384u, 0xffffffffu}) {
    EXPECT_EQ(GetVarint32(&in), v);
  }
  EXPECT_TRUE(in.empty());

  // 2^32 does not fit in 32 bits.
  std::string big;
  PutVarint64(&big, uint64_t{1} << 32);
  std::string_view big_in = big;
  EXPECT_FALSE(GetVarint32(&big_in).has_value());
  EXPECT_EQ(big_in.size(), big.size());
}

TEST(CodingTest, VarintTruncatedAndOverlongInputIsRejected) {
  std::string s;
  PutVarint64(&s, std::numeric_limits<uint64_t>::max());
  for (size_t len = 0; len < s.size(); ++len) {
    std::string_view in(s.data(), len);
    EXPECT_FALSE(GetVarint64(&in).has_value()) << len;
    EXPECT_EQ(in.size(), len);
  }
  // Eleven continuation bytes: longer than any valid varint64.
  std::string overlong(11, '\x80');
  std::string_view in = overlong;
  EXPECT_FALSE(GetVarint64(&in).has_value());
  // Tenth byte with bits beyond 64.
  std::string too_big(9, '\xff');
  too_big.push_back('\x02');
  std::string_view in2 = too_big;
  EXPECT_FALSE(GetVarint64(&in2).has_value());
}

TEST(CodingTest, LengthPrefixed) {
  std::string s;
  PutLengthPrefixed(&s, "abc");
  PutLengthPrefixed(&s, "");
  std::string_view in = s;
  EXPECT_EQ(GetLengthPrefixed(&in), std::optional<std::string_view>("abc"));
  EXPECT_EQ(GetLengthPrefixed(&in), std::optional<std::string_view>(""));
  EXPECT_TRUE(in.empty());
  std::string_view truncated(s.data(), 3);  // claims 3 bytes, has 2
  EXPECT_FALSE(GetLengthPrefixed(&truncated).has_value());
  EXPECT_EQ(truncated.size(), 3u);
}

TEST(CodingTest, RandomVarintFuzzNeverReadsPastInput) {
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 10000; ++i) {
    std::string bytes(rng() % 12, '\0');
    for (char& c : bytes) {
      c = static_cast<char>(rng());
    }
    std::string_view in = bytes;
    if (std::optional<uint64_t> v = GetVarint64(&in)) {
      std::string re;
      PutVarint64(&re, *v);
      // Canonical re-encoding is never longer than what was consumed.
      EXPECT_LE(re.size(), bytes.size() - in.size());
    }
  }
}

}  // namespace
}  // namespace tidemark
