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

class HashingFile {
 public:
  explicit HashingFile(FILE* f) : f_(f), ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~HashingFile() { EVP_MD_CTX_free(ctx_); }
  bool Write(const std::string& s) {
    EVP_DigestUpdate(ctx_, s.data(), s.size());
    bytes_ += s.size();
    return std::fwrite(s.data(), 1, s.size(), f_) == s.size();
  }
  std::string Digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    return std::string(reinterpret_cast<char*>(md), n);
  }
  uint64_t bytes() const { return bytes_; }

 private:
  FILE* f_;
  EVP_MD_CTX* ctx_;
  uint64_t bytes_ = 0;
};

}  // namespace

Result<SnapshotInfo> WriteSnapshotFile(storage::Engine* engine, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IoError("snapshot: cannot create " + path);
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, &std::fclose);
  HashingFile out(f);
  SnapshotInfo info;
  if (!out.Write(std::string(kMagic, sizeof kMagic))) return IoError("snapshot: write " + path);

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
      if (!out.Write(rec)) return IoError("snapshot: write " + path);
      ++info.records;
    }
    TM_RETURN_IF_ERROR(it->status());
  }
  rec.assign(1, static_cast<char>(kEndRecord));
  PutVarint(&rec, info.records);
  if (!out.Write(rec)) return IoError("snapshot: write " + path);
  // Pad to a multiple of 512 so that file + 32-byte hash is 32 mod 512.
  uint64_t pad = (512 - out.bytes() % 512) % 512;
  if (pad > 0 && !out.Write(std::string(pad, '\0'))) return IoError("snapshot: write " + path);
  if (std::fflush(f) != 0) return IoError("snapshot: flush " + path);
  info.bytes = out.bytes();
  info.sha256 = out.Digest();
  return info;
}

}  // namespace tidemark::server
