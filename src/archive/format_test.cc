#include "archive/format.h"

#include <gtest/gtest.h>

namespace tidemark::archive {
namespace {

std::vector<wal::Entry> Entries(uint64_t first, int n) {
  std::vector<wal::Entry> v;
  for (int i = 0; i < n; ++i) {
    v.push_back({first + i, 0, 1'700'000'000'000'000'000 + i * 1000, "payload-" + std::to_string(i)});
  }
  return v;
}

TEST(ChunkFormat, RoundTrip) {
  auto e = Entries(10, 50);
  auto c = EncodeChunk(7, e, std::nullopt);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->header.flags, kChunkFlagChainStart);
  auto d = DecodeChunk("x", c->bytes);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->entries, e);
  EXPECT_EQ(d->header.first_index, 10u);
  EXPECT_EQ(d->header.last_index, 59u);
  EXPECT_EQ(d->header.timeline, 7u);
  EXPECT_EQ(d->digest, c->digest);

  auto c2 = EncodeChunk(7, Entries(60, 3), c->digest);
  ASSERT_TRUE(c2.ok());
  auto d2 = DecodeChunk("y", c2->bytes);
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(d2->header.flags, 0u);
  EXPECT_EQ(d2->header.prev_digest, c->digest);
}

TEST(ChunkFormat, EveryFlippedBitIsDetected) {
  auto c = EncodeChunk(1, Entries(1, 5), std::nullopt);
  ASSERT_TRUE(c.ok());
  for (size_t i = 0; i < c->bytes.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string b = c->bytes;
      b[i] ^= static_cast<char>(1 << bit);
      auto d = DecodeChunk("obj", b);
      ASSERT_FALSE(d.ok()) << "byte " << i;
      EXPECT_NE(d.status().message().find("obj"), std::string::npos);
    }
  }
}

TEST(ChunkFormat, TruncationAndExtensionAreDetected) {
  auto c = EncodeChunk(1, Entries(1, 5), std::nullopt);
  ASSERT_TRUE(c.ok());
  for (size_t n : {size_t{0}, size_t{10}, kChunkHeaderSize, c->bytes.size() - 1}) {
    auto d = DecodeChunk("obj", std::string_view(c->bytes).substr(0, n));
    EXPECT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), Code::kCorruption);
  }
  EXPECT_FALSE(DecodeChunk("obj", c->bytes + "x").ok());
}

TEST(ChunkFormat, RejectsNonContiguousEntries) {
  auto e = Entries(1, 3);
  e[2].index = 9;
  EXPECT_FALSE(EncodeChunk(1, e, std::nullopt).ok());
  EXPECT_FALSE(EncodeChunk(1, {}, std::nullopt).ok());
}

TEST(BaseFormat, RoundTripAndCorruption) {
  BaseHeader h;
  h.timeline = 3;
  h.index = 100;
  h.revision = 42;
  h.unix_nanos = 5;
  std::string snap(10000, 'a');
  auto b = EncodeBase(h, snap);
  ASSERT_TRUE(b.ok());
  auto d = DecodeBase("b", *b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->snapshot, snap);
  EXPECT_EQ(d->header.revision, 42);
  std::string bad = *b;
  bad[bad.size() / 2] ^= 1;
  EXPECT_FALSE(DecodeBase("b", bad).ok());
}

TEST(Names, RoundTrip) {
  uint64_t tl, a;
  ASSERT_TRUE(ParseChunkName(ChunkName(0xabc, 5), &tl, &a));
  EXPECT_EQ(tl, 0xabcu);
  EXPECT_EQ(a, 5u);
  int64_t rev, ms;
  ASSERT_TRUE(ParseBaseName(BaseName(9, 100, 50, 1'700'000'000'123'000'000), &tl, &a, &rev, &ms));
  EXPECT_EQ(a, 100u);
  EXPECT_EQ(rev, 50);
  EXPECT_EQ(ms, 1'700'000'000'123);
  int64_t created;
  ASSERT_TRUE(ParseTimelineRecordName(TimelineRecordName(123, 0xff), &created, &tl));
  EXPECT_EQ(created, 123);
  EXPECT_EQ(tl, 0xffu);
  EXPECT_FALSE(ParseChunkName("tl-0000000000000abc/log/garbage", &tl, &a));
}

TEST(Rfc3339, ParseAndFormat) {
  auto t = ParseRfc3339("2026-11-21T10:00:00.123Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatRfc3339(*t), "2026-11-21T10:00:00.123Z");
  auto t2 = ParseRfc3339("2026-11-21T11:00:00.123+01:00");
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t, *t2);
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
  EXPECT_FALSE(ParseRfc3339("2026-11-21T10:00:00").ok());
}

}  // namespace
}  // namespace tidemark::archive
