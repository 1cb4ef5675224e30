#include "server/snapshot_writer.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "storage/iterator.h"

namespace tidemark::server {
namespace {

constexpr char kMagic[8] = {'T', 'M', 'S', 'N', 'A', 'P', '0', '1'};
constexpr uint8_t kEndRecord = 0xFF;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

constexpr size_t kPieceBytes = 1 << 20;

// Collects records into ~1 MiB pieces for `out`.
class PieceWriter {
 public:
  explicit PieceWriter(const SnapshotOut& out) : out_(out) { buf_.reserve(kPieceBytes + 4096); }
  Status Write(std::string_view s) {
    buf_.append(s);
    bytes_ += s.size();
    return buf_.size() >= kPieceBytes ? Flush() : Status::Ok();
  }
  Status Flush() {
    if (buf_.empty()) return Status::Ok();
    Status st = out_(buf_);
    buf_.clear();
    if (buf_.capacity() > 2 * kPieceBytes) {  // after one huge record: give it back
      buf_.shrink_to_fit();
      buf_.reserve(kPieceBytes + 4096);
    }
    return st;
  }
  uint64_t bytes() const { return bytes_; }

 private:
  const SnapshotOut& out_;
  std::string buf_;
  uint64_t bytes_ = 0;
};

}  // namespace

Result<SnapshotInfo> WriteSnapshot(storage::Engine* engine, const SnapshotOut& out,
                                   const SnapshotRecordObserver& on_record) {
  PieceWriter w(out);
  SnapshotInfo info;
  TM_RETURN_IF_ERROR(w.Write(std::string_view(kMagic, sizeof kMagic)));
  auto snap = engine->GetSnapshot();
  const storage::ColumnFamily cfs[] = {storage::kKvCf, storage::kHistoryCf, storage::kMetaCf};
  std::string rec;
  for (auto cf : cfs) {
    storage::ReadOptions ro;
    ro.snapshot = snap.get();
    ro.fill_cache = false;
    auto it = engine->NewIterator(cf, ro);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rec.clear();
      rec.push_back(static_cast<char>(cf.id));
      PutVarint(&rec, it->key().size());
      rec.append(it->key());
      PutVarint(&rec, it->value().size());
      rec.append(it->value());
      if (on_record) on_record(cf.id, it->key(), it->value());
      TM_RETURN_IF_ERROR(w.Write(rec));
      ++info.records;
    }
    TM_RETURN_IF_ERROR(it->status());
  }
  rec.assign(1, static_cast<char>(kEndRecord));
  PutVarint(&rec, info.records);
  TM_RETURN_IF_ERROR(w.Write(rec));
  // Pad to a multiple of 512 so that file + 32-byte hash is 32 mod 512.
  const uint64_t pad = (512 - w.bytes() % 512) % 512;
  if (pad > 0) TM_RETURN_IF_ERROR(w.Write(std::string(pad, '\0')));
  TM_RETURN_IF_ERROR(w.Flush());
  info.bytes = w.bytes();
  return info;
}

Result<SnapshotInfo> WriteSnapshotFile(storage::Engine* engine, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IoError("snapshot: cannot create " + path);
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, &std::fclose);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  TM_ASSIGN_OR_RETURN(SnapshotInfo info, WriteSnapshot(engine, [&](std::string_view piece) {
    EVP_DigestUpdate(ctx.get(), piece.data(), piece.size());
    if (std::fwrite(piece.data(), 1, piece.size(), f) != piece.size()) {
      return IoError("snapshot: write " + path);
    }
    return Status::Ok();
  }));
  if (std::fflush(f) != 0) return IoError("snapshot: flush " + path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  info.sha256.assign(reinterpret_cast<char*>(md), n);
  return info;
}

}  // namespace tidemark::server
