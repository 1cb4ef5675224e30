// Tidemark's own storage stack as the server uses it, minus gRPC and group
// commit: every write is appended to wal::Wal (fdatasync per write when
// sync, else handed to the kernel with Flush) and then applied through
// mvcc::Store onto storage::Engine (RocksDB with its WAL off), with the WAL
// index as the applied index. Reads are mvcc::Store::Range of one key.
// Writers are serialized by a mutex (the server has one wal-writer and one
// apply thread).
#include <mutex>

#include "bench/engines/engine_factories.h"
#include "fs/posix_file_system.h"
#include "mvcc/store.h"
#include "mvcc/write_txn.h"
#include "storage/engine.h"
#include "wal/wal.h"

namespace tidemark::bench {
namespace {

class TidemarkEngine final : public KvEngine {
 public:
  TidemarkEngine(std::unique_ptr<storage::Engine> engine, std::unique_ptr<mvcc::Store> store,
                 std::unique_ptr<wal::Wal> wal, bool sync)
      : engine_(std::move(engine)), store_(std::move(store)), wal_(std::move(wal)), sync_(sync) {
    index_ = wal_->last_index();
  }
  ~TidemarkEngine() override { Close().IgnoreError(); }  // errors reported by an explicit Close

  Status Put(std::string_view k, std::string_view v) override {
    std::lock_guard<std::mutex> lock(mu_);
    TM_RETURN_IF_ERROR(Log('P', k, v));
    auto txn = store_->BeginWrite();
    auto prev = txn->Put(k, v, 0);
    if (!prev.ok())
      return prev.status();
    return txn->Commit(index_, nullptr);
  }
  Result<bool> Get(std::string_view k, std::string* v) override {
    mvcc::RangeRequest req;
    req.key = std::string(k);
    TM_ASSIGN_OR_RETURN(mvcc::RangeResult r, store_->Range(req));
    if (r.kvs.empty())
      return false;
    *v = std::move(r.kvs[0].value);
    return true;
  }
  Status Delete(std::string_view k) override {
    std::lock_guard<std::mutex> lock(mu_);
    TM_RETURN_IF_ERROR(Log('D', k, {}));
    auto txn = store_->BeginWrite();
    auto gone = txn->DeleteRange(k, "");
    if (!gone.ok())
      return gone.status();
    return txn->Commit(index_, nullptr);
  }
  Status Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (engine_ == nullptr)
      return Status::Ok();
    store_->Close();
    store_.reset();
    Status w = wal_->Close();
    wal_.reset();
    Status e = engine_->Close();
    engine_.reset();
    return w.ok() ? e : w;
  }

 private:
  Status Log(char op, std::string_view k, std::string_view v) {
    wal::Entry e;
    e.index = ++index_;
    e.payload.reserve(1 + 4 + k.size() + v.size());
    e.payload += op;
    uint32_t n = static_cast<uint32_t>(k.size());
    e.payload.append(reinterpret_cast<const char*>(&n), sizeof n);
    e.payload += k;
    e.payload += v;
    TM_RETURN_IF_ERROR(wal_->Append(e));
    return sync_ ? wal_->Sync() : wal_->Flush();
  }

  std::mutex mu_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<wal::Wal> wal_;
  const bool sync_;
  uint64_t index_ = 0;
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenTidemark(const std::string& dir, bool sync) {
  TM_ASSIGN_OR_RETURN(auto engine, storage::Engine::Open(dir + "/db", storage::Options{}));
  TM_ASSIGN_OR_RETURN(auto store, mvcc::Store::Open(engine.get()));
  TM_ASSIGN_OR_RETURN(auto wal, wal::Wal::Open(fs::PosixFileSystem::Default(), dir + "/wal"));
  return std::unique_ptr<KvEngine>(
      new TidemarkEngine(std::move(engine), std::move(store), std::move(wal), sync));
}

}  // namespace tidemark::bench
