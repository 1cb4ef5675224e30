#include "archive/catalog.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/temp_dir.h"

namespace tidemark::archive {
namespace {

constexpr uint64_t kTl = 0x1234;
constexpr int64_t kT0 = 1'700'000'000'000'000'000;

class FakeSink : public RestoreSink {
 public:
  Status LoadBase(const BaseHeader& h, ByteReader* snapshot) override {
    TM_ASSIGN_OR_RETURN(base_snapshot, ReadAll(snapshot));
    revision = h.revision;
    return Status::Ok();
  }
  Status Apply(const wal::Entry& e) override {
    applied.push_back(e.index);
    ++revision;  // every entry writes one revision in this fake
    return Status::Ok();
  }
  int64_t current_revision() const override { return revision; }
  std::string base_snapshot;
  std::vector<uint64_t> applied;
  int64_t revision = 0;
};

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<DirObjectStore>(dir_.path());
    BaseHeader h;
    h.timeline = kTl;
    h.index = 0;
    h.revision = 1;
    h.unix_nanos = kT0 - 1'000'000'000;
    auto b = EncodeBase(h, "SNAPSHOT");
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(store_->Put(BaseName(kTl, 0, 1, h.unix_nanos), *b).ok());
    std::optional<Digest> prev;
    for (uint64_t first = 1; first <= 50; first += 10) {
      std::vector<wal::Entry> e;
      for (uint64_t i = first; i < first + 10; ++i) {
        e.push_back({i, 0, kT0 + static_cast<int64_t>(i) * 1'000'000, "p" + std::to_string(i)});
      }
      auto c = EncodeChunk(kTl, e, prev);
      ASSERT_TRUE(c.ok());
      ASSERT_TRUE(store_->PutIfAbsent(ChunkName(kTl, first), c->bytes).ok());
      prev = c->digest;
      names_.push_back(ChunkName(kTl, first));
    }
  }
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }
  std::string Read(const std::string& name) { return *store_->Get(name); }
  void Write(const std::string& name, const std::string& data) {
    std::ofstream(Path(name), std::ios::binary | std::ios::trunc) << data;
  }
  Result<RestoreResult> RestoreLatest(FakeSink* sink) {
    return Restore(store_.get(), kTl, RestoreTarget{}, sink);
  }
  void ExpectVerifyNames(const std::string& what) {
    auto rep = Verify(store_.get(), kTl, /*deep=*/true);
    ASSERT_TRUE(rep.ok());
    ASSERT_FALSE(rep->ok());
    std::string all;
    for (auto& p : rep->problems) all += p + "\n";
    EXPECT_NE(all.find(what), std::string::npos) << all;
  }

  test::TempDir dir_;
  std::unique_ptr<DirObjectStore> store_;
  std::vector<std::string> names_;
};

TEST_F(CatalogTest, CleanArchiveVerifiesAndRestores) {
  auto rep = Verify(store_.get(), kTl, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
  EXPECT_EQ(rep->chunks, 5u);
  EXPECT_EQ(rep->entries, 50u);
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(sink.base_snapshot, "SNAPSHOT");
  EXPECT_EQ(sink.applied.size(), 50u);
  EXPECT_EQ(r->last_index, 50u);
}

TEST_F(CatalogTest, RestoreToRevisionAndTime) {
  FakeSink s1;
  RestoreTarget t;
  t.kind = RestoreTarget::Kind::kRevision;
  t.revision = 23;
  auto r = Restore(store_.get(), kTl, t, &s1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(s1.revision, 23);
  EXPECT_EQ(r->last_index, 22u);

  FakeSink s2;
  t.kind = RestoreTarget::Kind::kTime;
  t.unix_nanos = kT0 + 37 * 1'000'000 + 500'000;
  r = Restore(store_.get(), kTl, t, &s2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->last_index, 37u);

  FakeSink s3;
  t.kind = RestoreTarget::Kind::kRevision;
  t.revision = 1000;
  EXPECT_EQ(Restore(store_.get(), kTl, t, &s3).status().code(), Code::kOutOfRange);
}

TEST_F(CatalogTest, FlippedBit) {
  std::string b = Read(names_[2]);
  b[b.size() / 2] ^= 0x10;
  Write(names_[2], b);
  ExpectVerifyNames(names_[2]);
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(names_[2]), std::string::npos) << r.status().message();
}

TEST_F(CatalogTest, TruncatedObject) {
  std::string b = Read(names_[1]);
  Write(names_[1], b.substr(0, b.size() - 7));
  ExpectVerifyNames(names_[1]);
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(names_[1]), std::string::npos);
}

TEST_F(CatalogTest, DeletedChunk) {
  ASSERT_TRUE(store_->Delete(names_[3]).ok());
  ExpectVerifyNames("31..40");
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("31..40"), std::string::npos) << r.status().message();
}

TEST_F(CatalogTest, DeletedLastChunkCaughtByManifest) {
  Manifest m;
  m.timeline = kTl;
  m.archived_index = 50;
  m.last_chunk = names_[4];
  ASSERT_TRUE(store_->Put(ManifestName(kTl), EncodeManifest(m)).ok());
  ASSERT_TRUE(store_->Delete(names_[4]).ok());
  ExpectVerifyNames("through index 50");
  FakeSink sink;
  EXPECT_FALSE(RestoreLatest(&sink).ok());
}

TEST_F(CatalogTest, ManifestCoveredByBaseIsFine) {
  // A fresh timeline: one base at index 77, manifest at 77, no chunk yet.
  BaseHeader h;
  h.timeline = 99;
  h.index = 77;
  h.revision = 70;
  auto b = EncodeBase(h, "S");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store_->Put(BaseName(99, 77, 70, kT0), *b).ok());
  Manifest m;
  m.timeline = 99;
  m.archived_index = 77;
  ASSERT_TRUE(store_->Put(ManifestName(99), EncodeManifest(m)).ok());
  auto rep = Verify(store_.get(), 99, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
  FakeSink sink;
  auto r = Restore(store_.get(), 99, RestoreTarget{}, &sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->last_index, 77u);
}

TEST_F(CatalogTest, DuplicatedChunk) {
  // The same bytes under a second name covering a later range.
  Write(ChunkName(kTl, 51), Read(names_[0]));
  ExpectVerifyNames(ChunkName(kTl, 51));
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(ChunkName(kTl, 51)), std::string::npos);
  // An overlapping duplicate.
  ASSERT_TRUE(store_->Delete(ChunkName(kTl, 51)).ok());
  Write(ChunkName(kTl, 5), Read(names_[1]));
  ExpectVerifyNames("overlapping");
}

TEST_F(CatalogTest, ReorderedChunks) {
  std::string a = Read(names_[1]), b = Read(names_[2]);
  Write(names_[1], b);
  Write(names_[2], a);
  ExpectVerifyNames(names_[1]);
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(names_[1]), std::string::npos);
}

TEST_F(CatalogTest, ForeignChunkBreaksChain) {
  // A valid chunk for the right range but from another chain.
  std::vector<wal::Entry> e;
  for (uint64_t i = 21; i <= 30; ++i) e.push_back({i, 0, kT0, "other"});
  Digest bogus{};
  bogus[0] = 1;
  auto c = EncodeChunk(kTl, e, bogus);
  ASSERT_TRUE(c.ok());
  Write(names_[2], c->bytes);
  ExpectVerifyNames("hash chain broken at " + names_[2]);
  FakeSink sink;
  auto r = RestoreLatest(&sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hash chain"), std::string::npos);
}

}  // namespace
}  // namespace tidemark::archive

namespace tidemark::archive {
namespace {

TEST_F(CatalogTest, RestoreToIndexAndProgress) {
  FakeSink sink;
  RestoreTarget t;
  t.kind = RestoreTarget::Kind::kIndex;
  t.index = 23;
  std::vector<RestoreProgress> seen;
  auto r = Restore(store_.get(), kTl, t, &sink, {},
                   [&](const RestoreProgress& p) { seen.push_back(p); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->last_index, 23u);
  EXPECT_EQ(sink.applied.size(), 23u);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front().entries, 0u);
  EXPECT_FALSE(seen.front().done);
  EXPECT_TRUE(seen.back().done);
  EXPECT_EQ(seen.back().entries, 23u);
  EXPECT_EQ(seen.back().entries_total, 23u);
  for (const auto& p : seen) EXPECT_LE(p.entries, p.entries_total);
  t.index = 51;
  FakeSink sink2;
  auto r2 = Restore(store_.get(), kTl, t, &sink2);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("index 51 is beyond the end"), std::string::npos)
      << r2.status().message();
}

TEST_F(CatalogTest, HashKVRecordsRoundTripAndAreCatalogued) {
  HashKVRecord h;
  h.timeline = kTl;
  h.index = 20;
  h.revision = 21;
  h.compact_revision = -1;
  h.hash = 0xdeadbeef;
  h.unix_nanos = kT0;
  const std::string name = HashKVName(kTl, 20, 21);
  ASSERT_TRUE(store_->Put(name, EncodeHashKVRecord(h)).ok());
  auto cat = LoadCatalog(store_.get(), kTl);
  ASSERT_TRUE(cat.ok());
  ASSERT_EQ(cat->hashes.size(), 1u);
  EXPECT_EQ(cat->hashes[0].index, 20u);
  EXPECT_EQ(cat->hashes[0].revision, 21);
  EXPECT_TRUE(cat->unknown.empty());
  auto d = DecodeHashKVRecord(name, Read(name));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->hash, 0xdeadbeefu);
  EXPECT_EQ(d->compact_revision, -1);
  auto rep = Verify(store_.get(), kTl, false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok());
  EXPECT_EQ(rep->hashkv_records, 1u);
  // A record whose content does not match its name is reported.
  h.index = 19;
  Write(name, EncodeHashKVRecord(h));
  ExpectVerifyNames(name + ": HashKV record does not match its name");
}

TEST_F(CatalogTest, TargetInAGapWithNoChunkAfterItIsRefusedNamingTheGap) {
  // Entries 51..60 were never archived (recorded gap); no chunk after it yet.
  const std::string gap = GapName(kTl, 51, 60);
  ASSERT_TRUE(store_->Put(gap, "{}\n").ok());
  FakeSink sink;
  RestoreTarget t;
  t.kind = RestoreTarget::Kind::kRevision;
  t.revision = 55;  // base revision 1 + 54 entries: inside the gap
  auto r = Restore(store_.get(), kTl, t, &sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("lies in a recorded gap"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find(gap), std::string::npos);
}

}  // namespace
}  // namespace tidemark::archive
