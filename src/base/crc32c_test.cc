#include "base/crc32c.h"

#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace tidemark::crc32c {
namespace {

TEST(Crc32cTest, StandardCheckValue) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(ExtendHardware(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  std::string zeros(32, '\0');
  EXPECT_EQ(Value(zeros), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(Value(ones), 0x62a8ab43u);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<char>(i);
  }
  EXPECT_EQ(Value(inc), 0x46dd794eu);
  std::string dec(32, '\0');
  for (int i = 0; i < 32; ++i) {
    dec[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Value(dec), 0x113fdb5cu);
  EXPECT_EQ(Value("", 0), 0u);
}

TEST(Crc32cTest, ExtendEqualsValueOfConcatenation) {
  const std::string a = "hello ";
  const std::string b = "world, this is a longer piece of text";
  EXPECT_EQ(Extend(Value(a), b), Value(a + b));
}

TEST(Crc32cTest, HardwareAndPortableAgreeOnRandomData) {
  std::mt19937_64 rng(42);
  std::string data(8192 + 13, '\0');
  for (char& c : data) {
    c = static_cast<char>(rng());
  }
  for (int trial = 0; trial < 500; ++trial) {
    const size_t start = rng() % 64;  // exercise unaligned starts
    const size_t len = rng() % (data.size() - start);
    const uint32_t seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(ExtendPortable(seed, data.data() + start, len),
              ExtendHardware(seed, data.data() + start, len))
        << "start=" << start << " len=" << len;
  }
  if (!HardwareAvailable()) {
    GTEST_SKIP() << "no SSE4.2: only the portable path was compared";
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesValue) {
  const uint32_t crc = Value("foo");
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Unmask(Mask(Mask(crc)))));
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    const uint32_t v = rng();
    ASSERT_EQ(v, Unmask(Mask(v)));
  }
}

}  // namespace
}  // namespace tidemark::crc32c
