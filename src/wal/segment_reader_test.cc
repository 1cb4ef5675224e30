#include "wal/segment_reader.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fs/path.h"
#include "fs/posix_file_system.h"
#include "testing/temp_dir.h"
#include "wal/segment_writer.h"
#include "wal/wal_test_util.h"

namespace tidemark::wal {
namespace {

using testutil::MakeEntry;

class SegmentReaderTest : public ::testing::Test {
 protected:
  fs::FileSystem* fs() { return fs::PosixFileSystem::Default(); }

  // Writes a segment holding entries [first, first + n) with the given
  // payload size through SegmentWriter; returns its path and the offsets of
  // the records.
  std::string WriteSegment(uint64_t first, int n, size_t payload, uint64_t prealloc,
                           std::vector<uint64_t>* offsets = nullptr) {
    auto w = SegmentWriter::Create(fs(), dir_.path(), 1, first, prealloc);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < n; ++i) {
      if (offsets != nullptr) {
        offsets->push_back((*w)->size());
      }
      (*w)->AddEntry(MakeEntry(first + i, payload));
    }
    EXPECT_TRUE((*w)->Sync().ok());
    EXPECT_TRUE((*w)->Close().ok());
    return (*w)->path();
  }

  // Writes a raw segment file: a valid header followed by `body`.
  std::string WriteRaw(const std::string& body, uint64_t first = 1) {
    SegmentHeader h;
    h.sequence = 1;
    h.first_index = first;
    std::string path = dir_.Join(SegmentFileName(1, first));
    auto f = fs()->NewWritableFile(path);
    EXPECT_TRUE(f.ok());
    EXPECT_TRUE((*f)->Append(EncodeSegmentHeader(h) + body).ok());
    EXPECT_TRUE((*f)->Close().ok());
    return path;
  }

  std::unique_ptr<SegmentReader> Open(const std::string& path,
                                      uint64_t limit = SegmentReader::kNoLimit) {
    auto r = SegmentReader::Open(fs(), path, limit);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // Reads entries until the end or an error; returns the error (OK at end).
  Status Drain(SegmentReader* r, std::vector<Entry>* out) {
    for (;;) {
      Result<std::optional<Entry>> e = r->Next();
      if (!e.ok()) {
        return e.status();
      }
      if (!e->has_value()) {
        return Status::Ok();
      }
      out->push_back(**e);
    }
  }

  test::TempDir dir_;
};

TEST_F(SegmentReaderTest, ReadsBackEverythingAndStopsAtZeroFill) {
  const std::string path = WriteSegment(10, 50, 100, uint64_t{64} * 1024);
  auto r = Open(path);
  EXPECT_EQ(r->header().first_index, 10u);
  EXPECT_EQ(r->file_name(), fs::Basename(path));
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[i], MakeEntry(10 + i, 100));
  }
  EXPECT_EQ(r->end_kind(), SegmentReader::EndKind::kZeroFill);
  EXPECT_EQ(r->valid_end(), kSegmentHeaderSize + 50 * EntryRecordSize(100));
  EXPECT_TRUE(r->TailError().ok());
  auto end = r->EndOfNonZeroData(r->valid_end());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, r->valid_end());
  // Sticky end.
  auto again = r->Next();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TEST_F(SegmentReaderTest, EndOfFileWithoutPreallocation) {
  const std::string path = WriteSegment(1, 3, 10, 0);
  auto r = Open(path);
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(r->end_kind(), SegmentReader::EndKind::kEndOfFile);
}

TEST_F(SegmentReaderTest, LimitHidesLaterRecords) {
  const std::string path = WriteSegment(1, 10, 20, 4096);
  auto r = Open(path, kSegmentHeaderSize + 4 * EntryRecordSize(20));
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(r->end_kind(), SegmentReader::EndKind::kEndOfFile);
}

TEST_F(SegmentReaderTest, RecordCutByEndOfFileIsTorn) {
  std::vector<uint64_t> offsets;
  const std::string path = WriteSegment(1, 5, 50, 0, &offsets);
  auto f = fs()->ReopenWritableFile(path, 0);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Truncate(offsets[4] + 30).ok());  // inside the 5th record's payload
  ASSERT_TRUE((*f)->Close().ok());
  auto r = Open(path);
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(r->end_kind(), SegmentReader::EndKind::kTorn);
  EXPECT_NE(r->end_reason().find("past the end of the file"), std::string::npos);
  EXPECT_EQ(r->valid_end(), offsets[4]);
  Status tail = r->TailError();
  EXPECT_EQ(tail.code(), Code::kCorruption);
  EXPECT_NE(tail.message().find(r->file_name()), std::string::npos);
  EXPECT_NE(tail.message().find("at offset " + std::to_string(offsets[4])), std::string::npos);
}

TEST_F(SegmentReaderTest, FileEndingInsideRecordHeaderIsTorn) {
  std::vector<uint64_t> offsets;
  const std::string path = WriteSegment(1, 2, 50, 0, &offsets);
  auto f = fs()->ReopenWritableFile(path, 0);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Truncate(offsets[1] + 5).ok());
  ASSERT_TRUE((*f)->Close().ok());
  auto r = Open(path);
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(r->end_kind(), SegmentReader::EndKind::kTorn);
}

TEST_F(SegmentReaderTest, ChecksumMismatchIsCorruptionNamingFileAndOffset) {
  std::vector<uint64_t> offsets;
  const std::string path = WriteSegment(1, 6, 40, 8192, &offsets);
  testutil::PokeFile(fs(), path, offsets[3] + kRecordHeaderSize + 30, "#");
  auto r = Open(path);
  std::vector<Entry> got;
  Status s = Drain(r.get(), &got);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.message(), "wal: checksum mismatch in " + std::string(fs::Basename(path)) +
                             " at offset " + std::to_string(offsets[3]));
  EXPECT_EQ(r->Next().status(), s);  // sticky
}

TEST_F(SegmentReaderTest, ChecksumMismatchWithZeroedSectorIsTorn) {
  std::vector<uint64_t> offsets;
  // Records of 12 + 24 + 2000 bytes span several sectors.
  const std::string path = WriteSegment(1, 3, 2000, 16384, &offsets);
  const uint64_t sector = (offsets[2] / 512 + 2) * 512;  // a whole sector inside record 3
  ASSERT_LT(sector + 512, offsets[2] + EntryRecordSize(2000));
  testutil::PokeFile(fs(), path, sector, std::string(512, '\0'));
  auto r = Open(path);
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(r->end_kind(), SegmentReader::EndKind::kTorn);
  EXPECT_NE(r->end_reason().find("zeroed 512-byte sector"), std::string::npos);
  EXPECT_EQ(r->valid_end(), offsets[2]);
  auto end = r->EndOfNonZeroData(r->valid_end());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, offsets[2] + EntryRecordSize(2000));
}

TEST_F(SegmentReaderTest, CorruptLengthFieldIsCorruptionNotTorn) {
  std::vector<uint64_t> offsets;
  const std::string path = WriteSegment(1, 4, 40, 1 << 20, &offsets);
  // A huge length would otherwise reach into the zero fill and look torn.
  testutil::PokeFile(fs(), path, offsets[1] + 6, "\x01");
  auto r = Open(path);
  std::vector<Entry> got;
  Status s = Drain(r.get(), &got);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("record header checksum mismatch"), std::string::npos);
  EXPECT_NE(s.message().find("at offset " + std::to_string(offsets[1])), std::string::npos);
}

TEST_F(SegmentReaderTest, UnknownOptionalRecordIsSkippedMandatoryIsCorruption) {
  std::string body;
  AppendEntryRecord(&body, MakeEntry(1));
  AppendRecord(&body, kOptionalRecordBit | 5, "future metadata");
  AppendEntryRecord(&body, MakeEntry(2));
  const std::string path = WriteRaw(body);
  auto r = Open(path);
  std::vector<Entry> got;
  ASSERT_TRUE(Drain(r.get(), &got).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].index, 2u);

  std::string body2;
  AppendEntryRecord(&body2, MakeEntry(1));
  const uint64_t bad_offset = kSegmentHeaderSize + body2.size();
  AppendRecord(&body2, 5, "unknown");
  const std::string path2 = WriteRaw(body2, 2);
  auto r2 = Open(path2);
  got.clear();
  Status s = Drain(r2.get(), &got);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("unknown record type 5"), std::string::npos);
  EXPECT_NE(s.message().find("at offset " + std::to_string(bad_offset)), std::string::npos);
}

TEST_F(SegmentReaderTest, ShortEntryRecordIsCorruption) {
  std::string body;
  AppendRecord(&body, kRecordTypeEntry, "too short");
  auto r = Open(WriteRaw(body));
  std::vector<Entry> got;
  EXPECT_EQ(Drain(r.get(), &got).code(), Code::kCorruption);
}

TEST_F(SegmentReaderTest, BadHeaderFailsOpen) {
  const std::string path = WriteSegment(1, 1, 10, 4096);
  testutil::PokeFile(fs(), path, 17, "\x7f");
  auto r = SegmentReader::Open(fs(), path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find(fs::Basename(path)), std::string::npos);
}

}  // namespace
}  // namespace tidemark::wal
