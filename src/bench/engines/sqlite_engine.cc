// SQLite adapter (Debian libsqlite3-dev): one WITHOUT ROWID table, WAL
// journal; sync = synchronous=FULL (fsync per commit), off = synchronous=OFF.
// One connection guarded by a mutex (SQLite allows one writer anyway).
#include <mutex>

#include "bench/engines/engine_factories.h"

#include <sqlite3.h>

namespace tidemark::bench {
namespace {

class SqliteEngine final : public KvEngine {
 public:
  explicit SqliteEngine(sqlite3* db) : db_(db) {}
  ~SqliteEngine() override { Close().IgnoreError(); }  // errors reported by an explicit Close
  Status Init(bool sync) {
    TM_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    TM_RETURN_IF_ERROR(Exec(sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF"));
    TM_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID"));
    TM_RETURN_IF_ERROR(Prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)", &put_));
    TM_RETURN_IF_ERROR(Prepare("SELECT v FROM kv WHERE k = ?1", &get_));
    return Prepare("DELETE FROM kv WHERE k = ?1", &del_);
  }
  Status Put(std::string_view k, std::string_view v) override {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_bind_blob(put_, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    sqlite3_bind_blob(put_, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return Step(put_, "put");
  }
  Result<bool> Get(std::string_view k, std::string* v) override {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_bind_blob(get_, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    int rc = sqlite3_step(get_);
    bool found = rc == SQLITE_ROW;
    if (found) {
      v->assign(static_cast<const char*>(sqlite3_column_blob(get_, 0)),
                static_cast<size_t>(sqlite3_column_bytes(get_, 0)));
    }
    sqlite3_reset(get_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return Error("get");
    return found;
  }
  Status Delete(std::string_view k) override {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_bind_blob(del_, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    return Step(del_, "delete");
  }
  Status Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (db_ == nullptr)
      return Status::Ok();
    for (sqlite3_stmt* s : {put_, get_, del_})
      sqlite3_finalize(s);
    put_ = get_ = del_ = nullptr;
    int rc = sqlite3_close(db_);
    db_ = nullptr;
    return rc == SQLITE_OK ? Status::Ok() : IoError("sqlite: close failed");
  }

 private:
  Status Error(const char* what) {
    return IoError(std::string("sqlite: ") + what + ": " + sqlite3_errmsg(db_));
  }
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) == SQLITE_OK)
      return Status::Ok();
    std::string msg = err != nullptr ? err : "?";
    sqlite3_free(err);
    return IoError(std::string("sqlite: ") + sql + ": " + msg);
  }
  Status Prepare(const char* sql, sqlite3_stmt** stmt) {
    if (sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr) == SQLITE_OK)
      return Status::Ok();
    return Error(sql);
  }
  Status Step(sqlite3_stmt* stmt, const char* what) {
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? Status::Ok() : Error(what);
  }

  std::mutex mu_;
  sqlite3* db_;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* del_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenSqlite(const std::string& dir, bool sync) {
  sqlite3* db = nullptr;
  std::string path = dir + "/kv.sqlite";
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return IoError("sqlite: open " + path + ": " + msg);
  }
  auto engine = std::make_unique<SqliteEngine>(db);
  TM_RETURN_IF_ERROR(engine->Init(sync));
  return std::unique_ptr<KvEngine>(std::move(engine));
}

}  // namespace tidemark::bench
