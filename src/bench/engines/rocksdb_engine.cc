// RocksDB adapter (Debian librocksdb-dev) with its own WAL on; sync = WAL
// fdatasync per write.
#include <rocksdb/db.h>

#include "bench/engines/engine_factories.h"

namespace tidemark::bench {
namespace {

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok())
    return Status::Ok();
  return IoError("rocksdb: " + s.ToString());
}

class RocksEngine final : public KvEngine {
 public:
  RocksEngine(rocksdb::DB* db, bool sync) : db_(db) { wo_.sync = sync; }
  ~RocksEngine() override { Close().IgnoreError(); }  // errors reported by an explicit Close
  Status Put(std::string_view k, std::string_view v) override {
    return FromRocks(
        db_->Put(wo_, rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size())));
  }
  Result<bool> Get(std::string_view k, std::string* v) override {
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(k.data(), k.size()), v);
    if (s.IsNotFound())
      return false;
    if (!s.ok())
      return FromRocks(s);
    return true;
  }
  Status Delete(std::string_view k) override {
    return FromRocks(db_->Delete(wo_, rocksdb::Slice(k.data(), k.size())));
  }
  Status Close() override {
    if (db_ == nullptr)
      return Status::Ok();
    rocksdb::Status s = db_->FlushWAL(true);
    rocksdb::Status c = db_->Close();
    delete db_;
    db_ = nullptr;
    return FromRocks(s.ok() ? c : s);
  }

 private:
  rocksdb::DB* db_;
  rocksdb::WriteOptions wo_;
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenRocksDb(const std::string& dir, bool sync) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  TM_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(o, dir, &db)));
  return std::unique_ptr<KvEngine>(new RocksEngine(db, sync));
}

}  // namespace tidemark::bench
