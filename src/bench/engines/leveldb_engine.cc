// LevelDB adapter (Debian libleveldb-dev); sync = log fdatasync per write.
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include "bench/engines/engine_factories.h"

namespace tidemark::bench {
namespace {

Status FromLevel(const leveldb::Status& s) {
  if (s.ok())
    return Status::Ok();
  return IoError("leveldb: " + s.ToString());
}

class LevelEngine final : public KvEngine {
 public:
  LevelEngine(leveldb::DB* db, bool sync) : db_(db) { wo_.sync = sync; }
  ~LevelEngine() override { Close().IgnoreError(); }  // nothing to report: leveldb closes in delete
  Status Put(std::string_view k, std::string_view v) override {
    return FromLevel(
        db_->Put(wo_, leveldb::Slice(k.data(), k.size()), leveldb::Slice(v.data(), v.size())));
  }
  Result<bool> Get(std::string_view k, std::string* v) override {
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), leveldb::Slice(k.data(), k.size()), v);
    if (s.IsNotFound())
      return false;
    if (!s.ok())
      return FromLevel(s);
    return true;
  }
  Status Delete(std::string_view k) override {
    return FromLevel(db_->Delete(wo_, leveldb::Slice(k.data(), k.size())));
  }
  Status Close() override {
    delete db_;
    db_ = nullptr;
    return Status::Ok();
  }

 private:
  leveldb::DB* db_;
  leveldb::WriteOptions wo_;
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenLevelDb(const std::string& dir, bool sync) {
  leveldb::Options o;
  o.create_if_missing = true;
  leveldb::DB* db = nullptr;
  TM_RETURN_IF_ERROR(FromLevel(leveldb::DB::Open(o, dir, &db)));
  return std::unique_ptr<KvEngine>(new LevelEngine(db, sync));
}

}  // namespace tidemark::bench
