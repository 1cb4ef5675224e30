// LMDB adapter (Debian liblmdb-dev): one write transaction per operation
// (LMDB serializes writers); sync = the commit's fdatasync, off =
// MDB_NOSYNC | MDB_NOMETASYNC. 8 GiB map (sparse).
#include <lmdb.h>

#include "bench/engines/engine_factories.h"

namespace tidemark::bench {
namespace {

Status FromMdb(int rc, const char* what) {
  if (rc == MDB_SUCCESS)
    return Status::Ok();
  return IoError(std::string("lmdb: ") + what + ": " + mdb_strerror(rc));
}

MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

class LmdbEngine final : public KvEngine {
 public:
  LmdbEngine(MDB_env* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {}
  ~LmdbEngine() override { Close().IgnoreError(); }  // mdb_env_close cannot fail
  Status Put(std::string_view k, std::string_view v) override {
    return Write([&](MDB_txn* txn) {
      MDB_val key = Val(k), val = Val(v);
      return mdb_put(txn, dbi_, &key, &val, 0);
    });
  }
  Result<bool> Get(std::string_view k, std::string* v) override {
    MDB_txn* txn = nullptr;
    TM_RETURN_IF_ERROR(FromMdb(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "txn_begin"));
    MDB_val key = Val(k), val{};
    int rc = mdb_get(txn, dbi_, &key, &val);
    if (rc == MDB_SUCCESS)
      v->assign(static_cast<const char*>(val.mv_data), val.mv_size);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
      return false;
    TM_RETURN_IF_ERROR(FromMdb(rc, "get"));
    return true;
  }
  Status Delete(std::string_view k) override {
    return Write([&](MDB_txn* txn) {
      MDB_val key = Val(k);
      int rc = mdb_del(txn, dbi_, &key, nullptr);
      return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
    });
  }
  Status Close() override {
    if (env_ != nullptr) {
      mdb_env_close(env_);
      env_ = nullptr;
    }
    return Status::Ok();
  }

 private:
  template <typename Fn>
  Status Write(Fn fn) {
    MDB_txn* txn = nullptr;
    TM_RETURN_IF_ERROR(FromMdb(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin"));
    int rc = fn(txn);
    if (rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      return FromMdb(rc, "write");
    }
    return FromMdb(mdb_txn_commit(txn), "commit");
  }
  MDB_env* env_;
  MDB_dbi dbi_;
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenLmdb(const std::string& dir, bool sync) {
  MDB_env* env = nullptr;
  TM_RETURN_IF_ERROR(FromMdb(mdb_env_create(&env), "env_create"));
  mdb_env_set_mapsize(env, size_t{8} << 30);
  mdb_env_set_maxreaders(env, 1024);
  unsigned flags = MDB_NOTLS | (sync ? 0u : (MDB_NOSYNC | MDB_NOMETASYNC));
  int rc = mdb_env_open(env, dir.c_str(), flags, 0644);
  if (rc != MDB_SUCCESS) {
    mdb_env_close(env);
    return FromMdb(rc, ("env_open " + dir).c_str());
  }
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  rc = mdb_txn_begin(env, nullptr, 0, &txn);
  if (rc == MDB_SUCCESS)
    rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
  if (rc == MDB_SUCCESS)
    rc = mdb_txn_commit(txn);
  if (rc != MDB_SUCCESS) {
    mdb_env_close(env);
    return FromMdb(rc, "dbi_open");
  }
  return std::unique_ptr<KvEngine>(new LmdbEngine(env, dbi));
}

}  // namespace tidemark::bench
