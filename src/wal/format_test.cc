#include "wal/format.h"

#include <string>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/crc32c.h"
#include "wal/wal_test_util.h"

namespace tidemark::wal {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// Golden bytes, computed independently of this code (a bitwise CRC32C in
// Python, following docs/formats/wal.md). A format change must add new
// golden values, never edit these: version-1 files must stay readable.
constexpr std::string_view kGoldenHeaderHex =
    "544d57414c534547"  // magic "TMWALSEG"
    "01000000"          // version 1
    "28000000"          // header size 40
    "0300000000000000"  // sequence 3
    "2f1a000000000000"  // first index 0x1a2f
    "00000000"          // flags
    "bbd8fc72";         // masked crc32c of the 36 bytes above
constexpr std::string_view kGoldenRecordHex =
    "e970c7bf"          // masked crc32c of bytes [4, 38)
    "1a000000"          // length 26
    "01"                // type: entry
    "00"                // reserved
    "f468"              // header check
    "0100000000000000"  // index 1
    "0000000000000000"  // term 0
    "00002a36fe9c9717"  // unix_nanos 1700000000000000000
    "6869";             // payload "hi"

TEST(FormatTest, SegmentHeaderGoldenBytes) {
  SegmentHeader h;
  h.sequence = 3;
  h.first_index = 0x1a2f;
  const std::string encoded = EncodeSegmentHeader(h);
  EXPECT_EQ(encoded, FromHex(kGoldenHeaderHex));
  auto decoded = DecodeSegmentHeader(FromHex(kGoldenHeaderHex), "x.wal");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->version, 1u);
  EXPECT_EQ(decoded->sequence, 3u);
  EXPECT_EQ(decoded->first_index, 0x1a2fu);
}

TEST(FormatTest, EntryRecordGoldenBytes) {
  Entry e;
  e.index = 1;
  e.unix_nanos = 1'700'000'000'000'000'000;
  e.payload = "hi";
  std::string out;
  AppendEntryRecord(&out, e);
  EXPECT_EQ(out, FromHex(kGoldenRecordHex));
  EXPECT_EQ(out.size(), EntryRecordSize(2));

  // AppendRecord with an explicitly encoded payload frames identically.
  std::string payload;
  PutFixed64(&payload, 1);
  PutFixed64(&payload, 0);
  PutFixed64(&payload, static_cast<uint64_t>(e.unix_nanos));
  payload += "hi";
  std::string framed;
  AppendRecord(&framed, kRecordTypeEntry, payload);
  EXPECT_EQ(framed, out);
}

TEST(FormatTest, EntryRoundTripIncludingNegativeTimeAndEmptyPayload) {
  for (const Entry& e :
       {Entry{7, 3, -5, ""}, Entry{~0ull, ~0ull, INT64_MIN, std::string(1000, 'z')},
        testutil::MakeEntry(42, 300)}) {
    std::string rec;
    AppendEntryRecord(&rec, e);
    const uint32_t length = DecodeFixed32(rec.data() + 4);
    ASSERT_EQ(length + kRecordHeaderSize, rec.size());
    EXPECT_EQ(crc32c::Unmask(DecodeFixed32(rec.data())),
              crc32c::Value(rec.data() + 4, rec.size() - 4));
    const std::string_view record = rec;
    auto decoded = DecodeEntryPayload(record.substr(kRecordHeaderSize));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, e);
  }
  EXPECT_FALSE(DecodeEntryPayload(std::string(23, 'x')).has_value());
}

TEST(FormatTest, SegmentHeaderCorruptionIsDetected) {
  const std::string good = FromHex(kGoldenHeaderHex);
  EXPECT_EQ(DecodeSegmentHeader(good.substr(0, 39), "a.wal").status().code(), Code::kCorruption);

  std::string bad_magic = good;
  bad_magic[0] = 'X';
  auto r = DecodeSegmentHeader(bad_magic, "a.wal");
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("a.wal"), std::string::npos);

  std::string flipped = good;
  flipped[20] ^= 0x01;  // inside the sequence
  r = DecodeSegmentHeader(flipped, "a.wal");
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status().message();

  std::string future = good;
  EncodeFixed32(future.data() + 8, 2);
  EXPECT_EQ(DecodeSegmentHeader(future, "a.wal").status().code(), Code::kFailedPrecondition);
}

TEST(FormatTest, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(3, 0x1a2f), "0000000000000003-0000000000001a2f.wal");
  auto parsed = ParseSegmentFileName("0000000000000003-0000000000001a2f.wal");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->sequence, 3u);
  EXPECT_EQ(parsed->first_index, 0x1a2fu);
  EXPECT_EQ(SegmentFileName(~0ull, ~0ull), "ffffffffffffffff-ffffffffffffffff.wal");
  EXPECT_FALSE(ParseSegmentFileName("0000000000000003-0000000000001a2f.wal.tmp"));
  EXPECT_FALSE(ParseSegmentFileName("0000000000000003-0000000000001A2F.wal"));
  EXPECT_FALSE(ParseSegmentFileName("000000000000003-0000000000001a2f.wal"));
  EXPECT_FALSE(ParseSegmentFileName("LOCK"));
  // Bytewise name order is sequence order.
  EXPECT_LT(SegmentFileName(9, 100), SegmentFileName(10, 1));
}

TEST(FormatTest, HasZeroSectorSplitsAtFileOffsetSectors) {
  // 600 bytes at offset 500: chunks [500,512) [512,1024) [1024,1100).
  std::string bytes(600, 'x');
  EXPECT_FALSE(HasZeroSector(500, bytes));
  std::string first = bytes;
  std::fill(first.begin(), first.begin() + 12, '\0');  // exactly the first partial chunk
  EXPECT_TRUE(HasZeroSector(500, first));
  std::string almost = bytes;
  std::fill(almost.begin(), almost.begin() + 11, '\0');
  EXPECT_FALSE(HasZeroSector(500, almost));
  std::string middle = bytes;
  std::fill(middle.begin() + 12, middle.begin() + 524, '\0');
  EXPECT_TRUE(HasZeroSector(500, middle));
  std::string last = bytes;
  std::fill(last.begin() + 524, last.end(), '\0');
  EXPECT_TRUE(HasZeroSector(500, last));
  EXPECT_FALSE(HasZeroSector(0, ""));
}

}  // namespace
}  // namespace tidemark::wal
