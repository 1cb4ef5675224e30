#include "archive/archiver.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "fs/posix_file_system.h"
#include "testing/temp_dir.h"

namespace tidemark::archive {
namespace {

class FakeBase : public BaseSource {
 public:
  explicit FakeBase(const wal::Wal* wal) : wal_(wal) {}
  Result<BaseSnapshot> WriteBase(const SnapshotSink& out) override {
    ++taken;
    // One read: the test commits concurrently.
    const uint64_t index = wal_->synced_index();
    last_index = index;
    TM_RETURN_IF_ERROR(out("SNAP"));
    return BaseSnapshot{index, static_cast<int64_t>(index) + 1};
  }
  uint64_t EstimateBaseBytes() override { return estimate.load(); }
  const wal::Wal* wal_;
  int taken = 0;
  uint64_t last_index = 0;
  std::atomic<uint64_t> estimate{0};
};

class ArchiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = wal::Wal::Open(&fs_, dir_.Join("wal"));
    ASSERT_TRUE(w.ok());
    wal_ = std::move(*w);
    store_ = std::make_unique<DirObjectStore>(dir_.Join("archive"));
  }
  std::vector<wal::Entry> Commit(int n) {
    std::vector<wal::Entry> batch;
    for (int i = 0; i < n; ++i) {
      uint64_t idx = wal_->last_index() + 1;
      wal::Entry e{idx, 0, clock_.NowNanos(), "value-" + std::to_string(idx)};
      EXPECT_TRUE(wal_->Append(e).ok());
      batch.push_back(e);
    }
    EXPECT_TRUE(wal_->Sync().ok());
    return batch;
  }
  ArchiverOptions Opts(uint64_t tl) {
    ArchiverOptions o;
    o.timeline = tl;
    o.interval_nanos = 20'000'000;
    o.spool_dir = dir_.Join("spool");
    return o;
  }

  test::TempDir dir_;
  fs::PosixFileSystem fs_;
  SystemClock clock_;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<DirObjectStore> store_;
};

TEST_F(ArchiverTest, ShipsChainsAndResumes) {
  Commit(5);  // before the archiver: covered by the first base
  FakeBase base(wal_.get());
  {
    Archiver a(store_.get(), wal_.get(), &base, &clock_, Opts(7));
    uint64_t notified = 0;
    a.set_on_archived([&](uint64_t i) { notified = i; });
    a.Start();
    for (int i = 0; i < 20; ++i) a.OnCommitted(Commit(10));
    ASSERT_TRUE(a.Flush(10'000'000'000).ok());
    EXPECT_EQ(a.archived_index(), 205u);
    EXPECT_EQ(notified, 205u);
    EXPECT_EQ(a.spool_bytes(), 0u);
    a.Stop();
  }
  EXPECT_EQ(base.taken, 1);
  // Restart: resumes the chain from the archive, no new base.
  {
    Archiver a(store_.get(), wal_.get(), &base, &clock_, Opts(7));
    a.Start();
    a.OnCommitted(Commit(3));
    ASSERT_TRUE(a.Flush(10'000'000'000).ok());
    EXPECT_EQ(a.archived_index(), 208u);
    a.Stop();
  }
  EXPECT_EQ(base.taken, 1);
  auto rep = Verify(store_.get(), 7, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
  // Entries up to the first base are covered by it, not shipped as chunks.
  EXPECT_EQ(rep->entries, 208u - base.last_index);
}

TEST_F(ArchiverTest, LargeBacklogReadBackFromWal) {
  FakeBase base(wal_.get());
  ArchiverOptions o = Opts(8);
  o.memory_queue_bytes = 1000;  // forces the WAL read-back path
  o.max_chunk_bytes = 2000;
  Archiver a(store_.get(), wal_.get(), &base, &clock_, o);
  a.Start();
  for (int i = 0; i < 10; ++i) a.OnCommitted(Commit(50));
  ASSERT_TRUE(a.Flush(10'000'000'000).ok());
  EXPECT_EQ(a.archived_index(), 500u);
  a.Stop();
  auto rep = Verify(store_.get(), 8, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
  EXPECT_EQ(rep->entries, 500u - base.last_index);
  // 2000-byte chunks: the backlog after the base needed several of them.
  EXPECT_GE(rep->chunks, (500u - base.last_index) * 35 / 2000);
}

TEST_F(ArchiverTest, SecondWriterIsFenced) {
  FakeBase base(wal_.get());
  std::vector<wal::Entry> first10;
  {
    Archiver a(store_.get(), wal_.get(), &base, &clock_, Opts(9));
    a.Start();
    first10 = Commit(10);
    a.OnCommitted(first10);
    ASSERT_TRUE(a.Flush(10'000'000'000).ok());
    a.Stop();
  }
  // A copy of the data dir (same entries 1..10) that then diverges.
  test::TempDir other;
  auto w2 = wal::Wal::Open(&fs_, other.Join("wal"));
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->AppendBatch(first10).ok());
  std::vector<wal::Entry> theirs;
  for (uint64_t i = 11; i <= 20; ++i) theirs.push_back({i, 0, clock_.NowNanos(), "other"});
  ASSERT_TRUE((*w2)->AppendBatch(theirs).ok());
  ASSERT_TRUE((*w2)->Sync().ok());
  FakeBase base2(w2->get());

  Archiver a2(store_.get(), wal_.get(), &base, &clock_, Opts(9));
  ArchiverOptions slow = Opts(9);
  slow.interval_nanos = 60'000'000'000;  // b ships its backlog only when flushed
  Archiver b(store_.get(), w2->get(), &base2, &clock_, slow);
  std::atomic<int> fenced_calls{0};
  b.set_on_fenced([&](const std::string&) { ++fenced_calls; });
  a2.Start();
  b.Start();
  for (int i = 0; i < 500 && !(a2.resumed() && b.resumed()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(a2.resumed() && b.resumed());
  a2.OnCommitted(Commit(5));
  ASSERT_TRUE(a2.Flush(10'000'000'000).ok());
  b.OnCommitted(theirs);
  Status s = b.Flush(5'000'000'000);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(b.stats().fenced.find("already exists"), std::string::npos) << b.stats().fenced;
  EXPECT_EQ(fenced_calls.load(), 1);
  b.Stop();
  a2.Stop();

  // A diverged data dir is refused at resume (entry 15 differs).
  Archiver c(store_.get(), w2->get(), &base2, &clock_, Opts(9));
  c.Start();
  s = c.Flush(3'000'000'000);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(c.stats().fenced, "");
  c.Stop();
  auto rep = Verify(store_.get(), 9, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
}

// A store that fails every request while `down` is set.
class FlakyStore : public ObjectStore {
 public:
  explicit FlakyStore(ObjectStore* s) : s_(s) {}
  Status Put(const std::string& n, std::string_view d) override {
    return down ? UnavailableError("down") : s_->Put(n, d);
  }
  Status PutIfAbsent(const std::string& n, std::string_view d) override {
    return down ? UnavailableError("down") : s_->PutIfAbsent(n, d);
  }
  Result<std::string> Get(const std::string& n) override {
    if (down) return UnavailableError("down");
    return s_->Get(n);
  }
  Status Delete(const std::string& n) override { return s_->Delete(n); }
  Result<std::vector<ObjectInfo>> List(const std::string& p) override {
    if (down) return UnavailableError("down");
    return s_->List(p);
  }
  std::string url() const override { return s_->url(); }
  std::atomic<bool> down{false};

 private:
  ObjectStore* s_;
};

// A store whose next create-only Put of a chunk is stored but reported as
// failed (the reply was lost: connection reset as the target went down).
// Later Puts of that name wait until `release()`, so the test decides what
// happens in between.
class LostReplyStore : public ObjectStore {
 public:
  explicit LostReplyStore(ObjectStore* s) : s_(s) {}
  Status Put(const std::string& n, std::string_view d) override { return s_->Put(n, d); }
  Status PutIfAbsent(const std::string& n, std::string_view d) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (n.find("/log/") != std::string::npos && lose_next_) {
      lose_next_ = false;
      lost_name_ = n;
      Status s = s_->PutIfAbsent(n, d);
      EXPECT_TRUE(s.ok()) << s.ToString();
      cv_.notify_all();
      return UnavailableError("connection reset by peer (the reply was lost)");
    }
    if (n == lost_name_) cv_.wait(lock, [&] { return released_; });
    lock.unlock();
    return s_->PutIfAbsent(n, d);
  }
  Result<std::string> Get(const std::string& n) override { return s_->Get(n); }
  Status Delete(const std::string& n) override { return s_->Delete(n); }
  Result<std::vector<ObjectInfo>> List(const std::string& p) override { return s_->List(p); }
  std::string url() const override { return s_->url(); }

  void LoseNextChunkReply() {
    std::lock_guard<std::mutex> lock(mu_);
    lose_next_ = true;
  }
  bool WaitUntilLost(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !lost_name_.empty(); });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  ObjectStore* s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool lose_next_ = false;
  bool released_ = false;
  std::string lost_name_;
};

TEST_F(ArchiverTest, ARetryAfterALostReplyIsNotASecondWriter) {
  // The chunk was stored but its reply lost; more entries are committed
  // before the retry. The retry must send the same bytes (and find them
  // there), not a longer chunk under the same name, which would read as
  // another server writing the timeline and stop archiving for good.
  FakeBase base(wal_.get());
  LostReplyStore lossy(store_.get());
  Archiver a(&lossy, wal_.get(), &base, &clock_, Opts(13));
  a.Start();
  a.OnCommitted(Commit(5));
  ASSERT_TRUE(a.Flush(10'000'000'000).ok());
  const uint64_t before = a.archived_index();
  lossy.LoseNextChunkReply();
  a.OnCommitted(Commit(5));
  ASSERT_TRUE(lossy.WaitUntilLost(std::chrono::seconds(10)));
  a.OnCommitted(Commit(7));  // queued behind the lost chunk
  lossy.Release();
  ASSERT_TRUE(a.Flush(20'000'000'000).ok()) << a.stats().fenced;
  EXPECT_EQ(a.stats().fenced, "");
  EXPECT_EQ(a.archived_index(), wal_->last_index());
  a.Stop();
  auto rep = Verify(store_.get(), 13, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
  EXPECT_EQ(rep->entries, wal_->last_index() - before);  // every entry after the base, once
  // The lost chunk holds exactly the five entries of its first attempt.
  auto cat = LoadCatalog(store_.get(), 13);
  ASSERT_TRUE(cat.ok());
  bool found = false;
  for (size_t i = 0; i + 1 < cat->chunks.size(); ++i) {
    if (cat->chunks[i].first == before + 1) {
      EXPECT_EQ(cat->chunks[i + 1].first, before + 6);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(ArchiverTest, ReleasedUnarchivedWalRecordsGapAndFreshBase) {
  // Small segments so entries can be released while the target is down
  // (what --archive-spool-policy continue does past the spool limit).
  wal_.reset();
  wal::WalOptions wo;
  wo.segment_size = 4096;
  auto w = wal::Wal::Open(&fs_, dir_.Join("wal2"), wo);
  ASSERT_TRUE(w.ok());
  wal_ = std::move(*w);
  FakeBase base(wal_.get());
  FlakyStore flaky(store_.get());
  ArchiverOptions o = Opts(11);
  o.memory_queue_bytes = 100;  // nothing survives in memory: only the WAL has entries
  Archiver a(&flaky, wal_.get(), &base, &clock_, o);
  a.Start();
  a.OnCommitted(Commit(20));
  ASSERT_TRUE(a.Flush(10'000'000'000).ok());
  const uint64_t before = a.archived_index();
  flaky.down = true;
  for (int i = 0; i < 20; ++i) a.OnCommitted(Commit(20));
  ASSERT_TRUE(wal_->ReleaseBefore(wal_->last_index() - 5).ok());
  ASSERT_GT(wal_->first_index(), before + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  flaky.down = false;
  ASSERT_TRUE(a.Flush(20'000'000'000).ok());
  EXPECT_EQ(a.archived_index(), wal_->last_index());
  EXPECT_EQ(a.stats().gaps, 1u);
  // The target is probed before each attempt: no storage snapshot is taken
  // while it is down, one (the fresh base) once it is back.
  EXPECT_EQ(base.taken, 2);
  a.Stop();
  auto rep = Verify(store_.get(), 11, true);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems.front();
  ASSERT_EQ(rep->gaps.size(), 1u);
  // Latest restores from the fresh base; a target inside the gap is refused.
  auto cat = LoadCatalog(store_.get(), 11);
  ASSERT_TRUE(cat.ok());
  ASSERT_EQ(cat->gaps.size(), 1u);
  // The gap starts after what was shipped: at the first entry after the
  // target went down, or after the chunk that had been cut (and failed)
  // before the release, which is retried from memory as it was.
  EXPECT_GT(cat->gaps[0].from, before);
  EXPECT_LE(cat->gaps[0].from, wal_->first_index());
}

// A server that can take HashKV: each base carries one, and CurrentHashKV
// describes the last synced entry.
class HashingBase : public FakeBase {
 public:
  using FakeBase::FakeBase;
  Result<BaseSnapshot> WriteBase(const SnapshotSink& out) override {
    TM_ASSIGN_OR_RETURN(BaseSnapshot b, FakeBase::WriteBase(out));
    b.hash_kv = HashKVPoint{b.index, b.revision, -1, 1000 + static_cast<uint32_t>(b.index)};
    return b;
  }
  Result<std::optional<HashKVPoint>> CurrentHashKV() override {
    const uint64_t i = wal_->synced_index();
    return std::optional<HashKVPoint>(
        HashKVPoint{i, static_cast<int64_t>(i) + 1, -1, 1000 + static_cast<uint32_t>(i)});
  }
  int64_t RevisionAtIndex(uint64_t index) override { return static_cast<int64_t>(index) + 1; }
};

TEST_F(ArchiverTest, RecordsHashKVWithBasesAndPeriodicallyOnceArchived) {
  Commit(3);
  HashingBase base(wal_.get());
  ArchiverOptions o = Opts(13);
  o.hashkv_interval_nanos = 1'000'000;  // every loop turn
  Archiver a(store_.get(), wal_.get(), &base, &clock_, o);
  a.Start();
  for (int i = 0; i < 1000 && !a.resumed(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // first base at index 3
  }
  ASSERT_TRUE(a.resumed());
  a.OnCommitted(Commit(10));
  ASSERT_TRUE(a.Flush(10'000'000'000).ok());
  // Wait (bounded) for a periodic record at the last index: it is written
  // only once that index is archived, which it now is.
  const uint64_t last = wal_->synced_index();
  for (int i = 0; i < 1000; ++i) {
    auto cat = LoadCatalog(store_.get(), 13);
    ASSERT_TRUE(cat.ok());
    if (!cat->hashes.empty() && cat->hashes.back().index == last) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  a.Stop();
  auto cat = LoadCatalog(store_.get(), 13);
  ASSERT_TRUE(cat.ok());
  ASSERT_GE(cat->hashes.size(), 2u);
  EXPECT_EQ(cat->hashes.front().index, 3u);  // with the first base
  EXPECT_EQ(cat->hashes.back().index, last);
  for (const auto& h : cat->hashes) {
    auto rec = DecodeHashKVRecord(h.name, *store_->Get(h.name));
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(rec->hash, 1000 + h.index);
    EXPECT_LE(rec->index, a.archived_index());
  }
  auto first = DecodeHashKVRecord(cat->hashes.front().name, *store_->Get(cat->hashes.front().name));
  EXPECT_EQ(first->base, cat->bases.front().name);
  auto m = DecodeManifest(ManifestName(13), *store_->Get(ManifestName(13)));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->archived_revision, static_cast<int64_t>(m->archived_index) + 1);
}

}  // namespace
}  // namespace tidemark::archive

namespace tidemark::archive {
namespace {

// Under load a chunk is cut once busy_chunk_bytes are queued, long before
// the interval: the lag of a busy server is bounded by its write rate.
TEST_F(ArchiverTest, BusyQueueShipsBeforeTheInterval) {
  FakeBase base(wal_.get());
  ArchiverOptions o = Opts(9);
  o.interval_nanos = 60'000'000'000;  // a minute: only the byte threshold can ship
  o.busy_chunk_bytes = 4096;
  Commit(5);  // covered by the first base
  Archiver a(store_.get(), wal_.get(), &base, &clock_, o);
  a.Start();
  auto wait_archived = [&](uint64_t index) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (a.archived_index() < index && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return a.archived_index();
  };
  ASSERT_EQ(wait_archived(5), 5u);  // the base
  a.OnCommitted(Commit(5));  // well under 4 KiB: waits for the interval
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(a.archived_index(), 5u);
  for (int i = 0; i < 10; ++i) a.OnCommitted(Commit(50));  // > 4 KiB queued
  // Shipped without a Flush, within seconds: everything but the tail that is
  // under 4 KiB (~100 entries), which waits for the interval.
  EXPECT_GE(wait_archived(380), 380u);
  a.Stop();
}

// A base that would leave less than min_free_bytes free is not built (no
// spool file, a clear error, nothing archived); once there is room it ships.
TEST_F(ArchiverTest, BaseWaitsForFreeSpaceInsteadOfFillingTheDisk) {
  FakeBase base(wal_.get());
  base.estimate = uint64_t{1} << 62;  // more than any disk here
  Commit(3);
  ArchiverOptions o = Opts(13);
  Archiver a(store_.get(), wal_.get(), &base, &clock_, o);
  a.Start();
  Status s = a.Flush(300'000'000);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not enough free space to build a base snapshot in " + o.spool_dir),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(base.taken, 0);
  EXPECT_EQ(a.archived_index(), 0u);
  size_t spool_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(o.spool_dir)) {
    (void)e;
    ++spool_files;
  }
  EXPECT_EQ(spool_files, 0u);
  base.estimate = 0;  // room again: the retry (with backoff) ships it
  EXPECT_TRUE(a.Flush(30'000'000'000).ok());
  EXPECT_EQ(a.archived_index(), 3u);
  EXPECT_EQ(base.taken, 1);
  a.Stop();
}

// The nice value of this process's thread named `name` (-100 if none).
int ThreadNice(const std::string& name) {
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (line.substr(open + 1, close - open - 1) != name) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    // Fields after the name start at 3 (state); nice is field 19.
    for (int i = 3; i <= 19 && rest >> field; ++i) {
    }
    return std::stoi(field);
  }
  return -100;
}

// Async mode: the archiver is background work and runs niced; in sync mode
// every ack waits for it, so it keeps the normal priority.
TEST_F(ArchiverTest, AsyncArchiverThreadRunsAtBackgroundPriority) {
  for (bool sync : {false, true}) {
    SCOPED_TRACE(sync ? "sync" : "async");
    FakeBase base(wal_.get());
    ArchiverOptions o = Opts(sync ? 12 : 11);
    EXPECT_GT(o.background_nice, 0) << "the default lowers the async archiver's priority";
    o.background_nice = 7;
    o.sync = sync;
    Archiver a(store_.get(), wal_.get(), &base, &clock_, o);
    a.Start();
    int nice = -100;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      nice = ThreadNice("archiver");
      if (nice != -100 && (sync || nice != 0)) break;  // set right after the thread starts
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(nice, sync ? 0 : 7);
    a.Stop();
  }
}

// Bases are built in the spool dir and uploaded from there: the file is gone
// once the base is shipped, and leftovers of a dead process go at Start.
TEST_F(ArchiverTest, BaseIsBuiltInTheSpoolDirAndRemovedAfterUpload) {
  Commit(4);
  const std::string spool = dir_.Join("spool");
  ASSERT_TRUE(ResetSpoolDir(spool).ok());
  { std::ofstream(spool + "/base-dead-1.spool") << "leftover"; }
  { std::ofstream(spool + "/keep.txt") << "not ours"; }
  FakeBase base(wal_.get());
  Archiver a(store_.get(), wal_.get(), &base, &clock_, Opts(21));
  a.Start();
  for (int i = 0; i < 1000 && !a.resumed(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(a.resumed());
  a.Stop();
  EXPECT_EQ(base.taken, 1);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(spool)) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_EQ(left, std::vector<std::string>{"keep.txt"});
  // The shipped base reads back through the streaming path.
  auto cat = LoadCatalog(store_.get(), 21);
  ASSERT_TRUE(cat.ok());
  ASSERT_EQ(cat->bases.size(), 1u);
  auto obj = OpenLocalObject(store_.get(), cat->bases[0].name, "");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  auto checked = CheckBaseFile(cat->bases[0].name, obj->fd());
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_EQ(checked->header.index, base.last_index);
  BaseBodyReader body(cat->bases[0].name, obj->fd(), checked->header);
  auto snap = ReadAll(&body);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(*snap, "SNAP");
}

}  // namespace
}  // namespace tidemark::archive
