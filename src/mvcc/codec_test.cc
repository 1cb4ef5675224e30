#include "mvcc/codec.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tidemark::mvcc::codec {
namespace {

std::string S(std::string_view s) {
  return std::string(s);
}

TEST(CodecTest, KvKeyLayoutIsByteExact) {
  // "a\0b" at revision 2: 61 00 ff 62 | 00 01 | ~2 big-endian.
  std::string k = KvKey(std::string_view("a\0b", 3), 2);
  const unsigned char want[] = {0x61, 0x00, 0xff, 0x62, 0x00, 0x01, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd};
  ASSERT_EQ(k.size(), sizeof(want));
  EXPECT_EQ(k, std::string(reinterpret_cast<const char*>(want), sizeof(want)));
}

TEST(CodecTest, KvKeysSortByUserKeyThenNewestFirst) {
  std::vector<std::string> users = {S(""),
                                    S("a"),
                                    std::string("a\0", 2),
                                    std::string("a\0\0", 3),
                                    std::string("a\0\x01", 3),
                                    std::string("a\x01", 2),
                                    S("ab"),
                                    S("a\xff"),
                                    S("b"),
                                    S("\xff"),
                                    S("\xff\xff")};
  ASSERT_TRUE(std::is_sorted(users.begin(), users.end()));
  std::vector<std::pair<std::string, int64_t>> expected;
  for (const auto& u : users) {
    for (int64_t rev : {1000000000000LL, 300LL, 2LL, 1LL}) {
      expected.emplace_back(u, rev);
    }
  }
  std::vector<std::string> encoded;
  encoded.reserve(expected.size());
  for (const auto& [u, rev] : expected) {
    encoded.push_back(KvKey(u, rev));
  }
  std::vector<std::string> shuffled = encoded;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, encoded);
  for (size_t i = 0; i < encoded.size(); ++i) {
    auto parts = SplitKvKey(encoded[i]);
    ASSERT_TRUE(parts.ok());
    EXPECT_EQ(parts->revision, expected[i].second);
    auto user = UnescapePrefix(parts->prefix);
    ASSERT_TRUE(user.ok());
    EXPECT_EQ(*user, expected[i].first);
    // PastKey lies after all versions of this key and before the next key.
    std::string past = PastKey(parts->prefix);
    EXPECT_GT(past, KvKey(expected[i].first, 0));
    if (i + 1 < encoded.size() && expected[i + 1].first != expected[i].first) {
      EXPECT_LT(past, encoded[i + 1]);
    }
  }
}

TEST(CodecTest, EscapedBoundAdmitsExactlyKeysBelowRangeEnd) {
  std::vector<std::string> keys = {S("a"), std::string("a\0", 2), S("a\x01"), S("ab"),
                                   S("b"), std::string("b\0", 2)};
  for (const auto& end : keys) {
    std::string bound = EscapedBound(end);
    for (const auto& k : keys) {
      EXPECT_EQ(KvKey(k, 5) < bound, k < end) << EscapeForLog(k) << " vs " << EscapeForLog(end);
    }
  }
}

TEST(CodecTest, MalformedKeysAreCorruption) {
  EXPECT_EQ(SplitKvKey("short").status().code(), Code::kCorruption);
  std::string bad = "ab" + std::string(2, '\x00') + std::string(8, '\x01');
  EXPECT_EQ(SplitKvKey(bad).status().code(), Code::kCorruption);
  std::string bad_escape = std::string("a\0b", 3) + std::string("\0\x01", 2);
  EXPECT_EQ(UnescapePrefix(bad_escape).status().code(), Code::kCorruption);
}

TEST(CodecTest, RecordsRoundTripAndAreByteExact) {
  KeyValue kv;
  kv.create_revision = 2;
  kv.version = 300;
  kv.lease = 0x7fffffffffffffffLL;
  kv.value = std::string("v\0", 2);
  std::string rec = EncodeLive(kv);
  // 01 | 02 | ac 02 | ff ff ff ff ff ff ff ff 7f | 76 00
  const unsigned char want[] = {0x01, 0x02, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0x7f, 0x76, 0x00};
  EXPECT_EQ(rec, std::string(reinterpret_cast<const char*>(want), sizeof(want)));
  KeyValue out;
  ASSERT_TRUE(DecodeLive(rec, false, &out).ok());
  EXPECT_EQ(out.create_revision, 2);
  EXPECT_EQ(out.version, 300);
  EXPECT_EQ(out.lease, kv.lease);
  EXPECT_EQ(out.value, kv.value);
  ASSERT_TRUE(DecodeLive(rec, true, &out).ok());
  EXPECT_TRUE(out.value.empty());

  EXPECT_EQ(EncodeTombstone(), S("\x02"));
  EXPECT_TRUE(*IsTombstone(EncodeTombstone()));
  EXPECT_FALSE(*IsTombstone(rec));
  EXPECT_EQ(IsTombstone("\x07").status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeLive(S("\x01\x80"), false, &out).code(), Code::kCorruption);
  EXPECT_EQ(DecodeLive(EncodeTombstone(), false, &out).code(), Code::kCorruption);
}

TEST(CodecTest, HistoryRoundTrip) {
  std::string k = HistoryKey(0x0102030405060708LL, 9);
  EXPECT_EQ(k, S("\x01\x02\x03\x04\x05\x06\x07\x08") + std::string("\0\0\0\x09", 4));
  std::string v = HistoryValue(EventType::kDelete, std::string("k\0", 2));
  EXPECT_EQ(v, std::string("\x02k\0", 3));
  auto h = DecodeHistory(k, v);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->revision, 0x0102030405060708LL);
  EXPECT_EQ(h->sub, 9u);
  EXPECT_EQ(h->type, EventType::kDelete);
  EXPECT_EQ(h->key, std::string("k\0", 2));
  EXPECT_EQ(DecodeHistory(k, "\x05k").status().code(), Code::kCorruption);
  EXPECT_LT(HistoryKey(2, 7), HistoryKey(3, 0));

  KeyValue kv{"k", 5, 9, 2, "val", 3};
  std::string inline_put = HistoryInlinePutValue(kv);
  // 03 | 01 'k' | 01 05 02 03 'val'
  EXPECT_EQ(inline_put, S("\x03\x01k\x01\x05\x02\x03val"));
  auto hi = DecodeHistory(HistoryKey(9, 0), inline_put);
  ASSERT_TRUE(hi.ok()) << hi.status().ToString();
  EXPECT_EQ(hi->type, EventType::kPut);
  EXPECT_EQ(hi->key, "k");
  ASSERT_TRUE(hi->inline_kv);
  EXPECT_EQ(*hi->inline_kv, kv);
  EXPECT_EQ(DecodeHistory(HistoryKey(9, 0), S("\x03\x09k")).status().code(), Code::kCorruption);
}

TEST(CodecTest, VarintEdgeCases) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, ~0ull}) {
    std::string s;
    PutVarint64(&s, v);
    std::string_view in = s;
    uint64_t out = 1;
    ASSERT_TRUE(GetVarint64(&in, &out));
    EXPECT_EQ(out, v);
    EXPECT_TRUE(in.empty());
  }
  std::string_view overlong("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
  uint64_t out = 0;
  EXPECT_FALSE(GetVarint64(&overlong, &out));
}

}  // namespace
}  // namespace tidemark::mvcc::codec
