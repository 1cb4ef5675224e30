#include "storage/write_batch.h"

#include <rocksdb/slice.h>

#include "storage/engine_rep.h"

namespace tidemark::storage {

namespace {
rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}
}  // namespace

WriteBatch::WriteBatch(const Engine* engine) : engine_(engine), rep_(std::make_unique<Rep>()) {}
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

// rocksdb::WriteBatch only fails these for oversized batches (> 4 GiB by
// default), which the callers' request-size limits rule out; the batch then
// also fails as a whole in Engine::Write, so nothing is silently lost.
void WriteBatch::Put(ColumnFamily cf, std::string_view key, std::string_view value) {
  rep_->batch.Put(engine_->rep()->handle(cf), ToSlice(key), ToSlice(value)).PermitUncheckedError();
}

void WriteBatch::Delete(ColumnFamily cf, std::string_view key) {
  rep_->batch.Delete(engine_->rep()->handle(cf), ToSlice(key)).PermitUncheckedError();
}

void WriteBatch::DeleteRange(ColumnFamily cf, std::string_view begin, std::string_view end) {
  rep_->batch.DeleteRange(engine_->rep()->handle(cf), ToSlice(begin), ToSlice(end))
      .PermitUncheckedError();
}

void WriteBatch::Clear() {
  rep_->batch.Clear();
  marker_ = 0;
}

size_t WriteBatch::Count() const {
  return static_cast<size_t>(rep_->batch.Count());
}
size_t WriteBatch::ByteSize() const {
  return rep_->batch.GetDataSize();
}

}  // namespace tidemark::storage
