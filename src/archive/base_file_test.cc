#include "archive/base_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "archive/catalog.h"
#include "archive/object_store.h"
#include "testing/temp_dir.h"

namespace tidemark::archive {
namespace {

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileBytes(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

// ~3 MiB: incompressible, compressible and repetitive runs.
std::string TestSnapshot() {
  std::mt19937_64 rng(42);
  std::string s = "TMSNAP01";
  for (int i = 0; i < 2 * 1024 * 1024 / 8; ++i) {
    uint64_t v = rng();
    s.append(reinterpret_cast<const char*>(&v), 8);
  }
  for (int i = 0; i < 20000; ++i) s += "key-" + std::to_string(i) + "=value;";
  s.append(600000, 'z');
  return s;
}

BaseHeader TestHeader() {
  BaseHeader h;
  h.timeline = 0xabc;
  h.index = 1234;
  h.revision = 999;
  h.unix_nanos = 1'700'000'000'000'000'000;
  return h;
}

// Writes `data` through a BaseFileWriter in irregular pieces.
Result<BaseFileInfo> WriteBaseFile(const std::string& path, std::string_view data,
                                   const BaseHeader& h) {
  TM_ASSIGN_OR_RETURN(auto w, BaseFileWriter::Create(path));
  const size_t sizes[] = {1, 7, 65536, (1 << 20) + 3, 100, 333333};
  size_t off = 0, k = 0;
  while (off < data.size()) {
    size_t n = std::min(sizes[k++ % 6], data.size() - off);
    TM_RETURN_IF_ERROR(w->Append(data.substr(off, n)));
    off += n;
  }
  return w->Finish(h);
}

struct Fd {
  int fd;
  explicit Fd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY)) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Pass 1 then pass 2 over a file; the decompressed bytes, read `chunk` at a time.
Result<std::string> ReadBaseFile(const std::string& object, const std::string& path,
                                 size_t chunk = 4096, BaseHeader* header = nullptr) {
  Fd f(path);
  if (f.fd < 0) return IoError("open " + path);
  TM_ASSIGN_OR_RETURN(CheckedBase c, CheckBaseFile(object, f.fd));
  if (header != nullptr) *header = c.header;
  BaseBodyReader r(object, f.fd, c.header);
  std::string out;
  std::vector<char> buf(chunk);
  for (;;) {
    TM_ASSIGN_OR_RETURN(size_t n, r.Read(buf.data(), buf.size()));
    if (n == 0) break;
    out.append(buf.data(), n);
  }
  TM_RETURN_IF_ERROR(r.Finish());
  return out;
}

TEST(BaseFile, StreamingRoundTripIsTheInMemoryFormat) {
  test::TempDir dir;
  const std::string snap = TestSnapshot();
  const std::string path = dir.Join("b.spool");
  auto info = WriteBaseFile(path, snap, TestHeader());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->header.raw_bytes, snap.size());
  const std::string bytes = ReadFileBytes(path);
  EXPECT_EQ(info->size, bytes.size());
  EXPECT_EQ(info->header.compressed_bytes, bytes.size() - kBaseHeaderSize - kTrailerSize);
  EXPECT_LT(bytes.size(), snap.size());  // the repetitive part compressed
  // What an older binary (whole object in memory) reads.
  auto d = DecodeBase("b", bytes);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->snapshot == snap);
  EXPECT_EQ(d->header.index, 1234u);
  EXPECT_EQ(d->header.revision, 999);
  EXPECT_EQ(d->header.timeline, 0xabcu);
  EXPECT_EQ(d->header.unix_nanos, 1'700'000'000'000'000'000);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(info->digest.data()), 32),
            bytes.substr(bytes.size() - 32));
  // The streaming reader, with small and large buffers.
  for (size_t chunk : {size_t{61}, size_t{777}, size_t{1} << 20}) {
    BaseHeader h;
    auto got = ReadBaseFile("b", path, chunk, &h);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == snap) << chunk;
    EXPECT_EQ(h.index, 1234u);
  }
}

TEST(BaseFile, ReadsBasesEncodedInMemory) {
  test::TempDir dir;
  const std::string snap = TestSnapshot();
  auto b = EncodeBase(TestHeader(), snap);
  ASSERT_TRUE(b.ok());
  WriteFileBytes(dir.Join("old.tmbase"), *b);
  auto got = ReadBaseFile("old", dir.Join("old.tmbase"), 65536);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == snap);
  // An empty snapshot too.
  auto e = WriteBaseFile(dir.Join("empty"), "", TestHeader());
  ASSERT_TRUE(e.ok());
  auto ge = ReadBaseFile("e", dir.Join("empty"));
  ASSERT_TRUE(ge.ok()) << ge.status().ToString();
  EXPECT_EQ(*ge, "");
}

// Every corruption is caught in pass 1 and named with the object and where.
TEST(BaseFile, CorruptionIsReportedWithObjectAndOffset) {
  test::TempDir dir;
  const std::string snap = TestSnapshot();
  auto info = WriteBaseFile(dir.Join("good"), snap, TestHeader());
  ASSERT_TRUE(info.ok());
  const std::string good = ReadFileBytes(dir.Join("good"));
  const size_t n = good.size();
  const std::string obj = "tl-0000000000000abc/base/x.tmbase";
  struct Case {
    std::string what;
    std::string bytes;
    std::string needle;
  };
  auto flip = [&](size_t at) {
    std::string b = good;
    b[at] ^= 0x10;
    return b;
  };
  const std::string trailer_at = "trailer at byte offset " + std::to_string(n - 32);
  std::vector<Case> cases = {
      {"header magic", flip(3), "the header (bytes [0, 64)) is damaged too"},
      {"header index", flip(20), "the header (bytes [0, 64)) is damaged too"},
      {"header crc", flip(61), "the header (bytes [0, 64)) is damaged too"},
      {"body start", flip(64), trailer_at},
      {"body middle", flip(n / 2), trailer_at},
      {"body end", flip(n - 33), trailer_at},
      {"trailer", flip(n - 5), trailer_at},
      {"truncated by 100", good.substr(0, n - 100),
       "truncated at byte offset " + std::to_string(n - 100)},
      {"truncated by 1", good.substr(0, n - 1), "truncated at byte offset " + std::to_string(n - 1)},
      {"extended", good + "0123456789", "bytes from offset " + std::to_string(n) + " on"},
      {"truncated in the header", good.substr(0, 50), "truncated (50 bytes): the object ends at byte offset 50"},
      {"empty", "", "truncated (0 bytes)"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.Join("bad");
    WriteFileBytes(path, c.bytes);
    Fd f(path);
    auto r = CheckBaseFile(obj, f.fd);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << c.what;
    const std::string& m = r.status().message();
    EXPECT_NE(m.find("archive: object " + obj + ": "), std::string::npos) << c.what << ": " << m;
    EXPECT_NE(m.find("offset"), std::string::npos) << c.what << ": " << m;
    EXPECT_NE(m.find(c.needle), std::string::npos) << c.what << ": " << m;
    // The in-memory decoder refuses the same bytes.
    EXPECT_FALSE(DecodeBase(obj, c.bytes).ok()) << c.what;
  }
}

// Damage behind a valid trailer (a buggy writer, not the disk): pass 2
// catches it, naming the object and the offset.
TEST(BaseFile, BadBodyBehindAValidTrailerIsCaughtWhileDecompressing) {
  test::TempDir dir;
  const std::string snap = TestSnapshot();
  auto info = WriteBaseFile(dir.Join("good"), snap, TestHeader());
  ASSERT_TRUE(info.ok());
  const std::string good = ReadFileBytes(dir.Join("good"));
  auto reseal = [](std::string b, const BaseHeader* h) {
    if (h != nullptr) b.replace(0, kBaseHeaderSize, EncodeBaseHeader(*h));
    b.resize(b.size() - kTrailerSize);
    Digest d = Sha256(b);
    b.append(reinterpret_cast<const char*>(d.data()), kTrailerSize);
    return b;
  };
  const std::string path = dir.Join("bad");
  // Not a zstd frame (its magic number zeroed).
  std::string body = good;
  for (size_t i = kBaseHeaderSize; i < kBaseHeaderSize + 4; ++i) body[i] = 0;
  WriteFileBytes(path, reseal(body, nullptr));
  auto r = ReadBaseFile("obj1", path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("archive: object obj1: zstd body does not decompress"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("offset"), std::string::npos) << r.status().message();
  // A frame cut in half, with sizes that agree with the cut.
  {
    BaseHeader h = info->header;
    h.compressed_bytes /= 2;
    std::string cut = good.substr(0, kBaseHeaderSize + h.compressed_bytes) + std::string(32, '\0');
    WriteFileBytes(path, reseal(cut, &h));
    auto rc = ReadBaseFile("obj3", path);
    ASSERT_FALSE(rc.ok());
    EXPECT_NE(rc.status().message().find("archive: object obj3: zstd body does not decompress: "
                                         "the frame is cut short at byte offset " +
                                         std::to_string(kBaseHeaderSize + h.compressed_bytes)),
              std::string::npos)
        << rc.status().message();
  }
  // A header that promises more (or fewer) bytes than the frame holds.
  for (int64_t delta : {int64_t{1}, int64_t{-1}}) {
    BaseHeader h = info->header;
    h.raw_bytes = static_cast<uint64_t>(static_cast<int64_t>(h.raw_bytes) + delta);
    WriteFileBytes(path, reseal(good, &h));
    auto r2 = ReadBaseFile("obj2", path);
    ASSERT_FALSE(r2.ok()) << delta;
    EXPECT_NE(r2.status().message().find("archive: object obj2: decompressed size differs from "
                                         "the header"),
              std::string::npos)
        << r2.status().message();
  }
}

// A store without a local path (S3-like): GetToFile / PutFile through the
// defaults (Get / Put of the wrapped store).
class RemoteLikeStore : public ObjectStore {
 public:
  explicit RemoteLikeStore(ObjectStore* s) : s_(s) {}
  Status Put(const std::string& n, std::string_view d) override { return s_->Put(n, d); }
  Status PutIfAbsent(const std::string& n, std::string_view d) override {
    return s_->PutIfAbsent(n, d);
  }
  Result<std::string> Get(const std::string& n) override {
    ++gets;
    return s_->Get(n);
  }
  Status Delete(const std::string& n) override { return s_->Delete(n); }
  Result<std::vector<ObjectInfo>> List(const std::string& p) override { return s_->List(p); }
  std::string url() const override { return s_->url(); }
  int gets = 0;

 private:
  ObjectStore* s_;
};

TEST(ObjectStoreFiles, DirPutFileGetToFileAndLocalPath) {
  test::TempDir dir;
  DirObjectStore store(dir.Join("archive"));
  const std::string data = TestSnapshot();
  WriteFileBytes(dir.Join("src"), data);
  ASSERT_TRUE(store.PutFile("tl-x/base/a.tmbase", dir.Join("src")).ok());
  ::unlink(dir.Join("src").c_str());  // the object does not depend on the source name
  auto got = store.Get("tl-x/base/a.tmbase");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == data);
  EXPECT_EQ(store.LocalPath("tl-x/base/a.tmbase"), dir.Join("archive") + "/tl-x/base/a.tmbase");
  ASSERT_TRUE(store.GetToFile("tl-x/base/a.tmbase", dir.Join("copy")).ok());
  EXPECT_TRUE(ReadFileBytes(dir.Join("copy")) == data);
  // Replacing works; no temporary names are left in the listing.
  WriteFileBytes(dir.Join("src2"), "second");
  ASSERT_TRUE(store.PutFile("tl-x/base/a.tmbase", dir.Join("src2")).ok());
  EXPECT_EQ(*store.Get("tl-x/base/a.tmbase"), "second");
  auto list = store.List("tl-x/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  // Errors.
  EXPECT_EQ(store.GetToFile("tl-x/base/missing", dir.Join("m")).code(), Code::kNotFound);
  Status s = store.PutFile("tl-x/base/b", dir.Join("no-such-file"));
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("no-such-file"), std::string::npos) << s.message();
  // The defaults (through Put / Get).
  RemoteLikeStore remote(&store);
  WriteFileBytes(dir.Join("src3"), data);
  ASSERT_TRUE(remote.PutFile("tl-x/base/c", dir.Join("src3")).ok());
  ASSERT_TRUE(remote.GetToFile("tl-x/base/c", dir.Join("copy3")).ok());
  EXPECT_TRUE(ReadFileBytes(dir.Join("copy3")) == data);
  EXPECT_EQ(remote.LocalPath("tl-x/base/c"), "");
  EXPECT_EQ(remote.GetToFile("tl-x/base/missing", dir.Join("m")).code(), Code::kNotFound);
}

class CollectSink : public RestoreSink {
 public:
  Status LoadBase(const BaseHeader& h, ByteReader* snapshot) override {
    TM_ASSIGN_OR_RETURN(snap, ReadAll(snapshot));
    return Status::Ok();
  }
  Status Apply(const wal::Entry&) override { return Status::Ok(); }
  int64_t current_revision() const override { return 999; }
  std::string snap;
};

// Restore and verify read file-backed bases in place (directory) or via a
// download that leaves nothing behind; corruption names object and offset.
TEST(ObjectStoreFiles, DownloadIsRefusedWhenTheSpoolDiskIsTooSmall) {
  test::TempDir dir;
  DirObjectStore store(dir.Join("archive"));
  const std::string data = TestSnapshot();
  ASSERT_TRUE(store.Put("tl-x/base/a.tmbase", data).ok());
  RemoteLikeStore remote(&store);
  ASSERT_EQ(::mkdir(dir.Join("spool").c_str(), 0755), 0);
  // Larger than any disk: refused before a byte is fetched.
  auto big = OpenLocalObject(&remote, "tl-x/base/a.tmbase", dir.Join("spool"), uint64_t{1} << 60);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kResourceExhausted);
  EXPECT_NE(big.status().message().find("not enough free space in " + dir.Join("spool") +
                                        " to download tl-x/base/a.tmbase"),
            std::string::npos)
      << big.status().message();
  EXPECT_EQ(remote.gets, 0);
  // Its real size fits.
  auto ok = OpenLocalObject(&remote, "tl-x/base/a.tmbase", dir.Join("spool"), data.size());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(remote.gets, 1);
  // A local object is read in place: no download, no check.
  EXPECT_TRUE(OpenLocalObject(&store, "tl-x/base/a.tmbase", "", uint64_t{1} << 60).ok());
}

TEST(BaseFile, RestoreAndVerifyStreamTheBase) {
  test::TempDir dir;
  DirObjectStore store(dir.Join("archive"));
  const std::string snap = TestSnapshot();
  const BaseHeader h = TestHeader();
  ASSERT_TRUE(WriteBaseFile(dir.Join("b.spool"), snap, h).ok());
  const std::string name = BaseName(h.timeline, h.index, h.revision, h.unix_nanos);
  ASSERT_TRUE(store.PutFile(name, dir.Join("b.spool")).ok());
  const std::string spool = dir.Join("spool");
  ASSERT_TRUE(ResetSpoolDir(spool).ok());
  RemoteLikeStore remote(&store);
  for (ObjectStore* s : {static_cast<ObjectStore*>(&store), static_cast<ObjectStore*>(&remote)}) {
    CollectSink sink;
    auto r = Restore(s, h.timeline, RestoreTarget{}, &sink, {}, {}, spool);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(sink.snap == snap);
    EXPECT_EQ(r->base, name);
    EXPECT_EQ(r->bytes_fetched, ReadFileBytes(store.LocalPath(name)).size());
    auto v = Verify(s, h.timeline, /*deep=*/true, spool);
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok()) << v->problems.front();
    EXPECT_EQ(v->bases, 1u);
    EXPECT_TRUE(std::filesystem::is_empty(spool)) << "a download was left behind";
  }
  EXPECT_EQ(remote.gets, 2);  // restore and verify each fetched the base once
  // Corrupt it: both name the object and the offset.
  std::string b = ReadFileBytes(store.LocalPath(name));
  b[b.size() / 2] ^= 1;
  ::unlink(store.LocalPath(name).c_str());  // (the spool file is a hard link of it)
  WriteFileBytes(store.LocalPath(name), b);
  for (ObjectStore* s : {static_cast<ObjectStore*>(&store), static_cast<ObjectStore*>(&remote)}) {
    for (bool deep : {false, true}) {
      auto v = Verify(s, h.timeline, deep, spool);
      ASSERT_TRUE(v.ok());
      ASSERT_EQ(v->problems.size(), 1u);
      EXPECT_NE(v->problems[0].find(name + ": SHA-256 trailer mismatch"), std::string::npos)
          << v->problems[0];
      EXPECT_NE(v->problems[0].find("byte offset " + std::to_string(b.size() - 32)),
                std::string::npos)
          << v->problems[0];
    }
    CollectSink sink;
    auto r = Restore(s, h.timeline, RestoreTarget{}, &sink, {}, {}, spool);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("byte offset"), std::string::npos) << r.status().message();
    EXPECT_EQ(sink.snap, "") << "nothing reaches the sink before the whole base is checked";
    EXPECT_TRUE(std::filesystem::is_empty(spool));
  }
}

}  // namespace
}  // namespace tidemark::archive
