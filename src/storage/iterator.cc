#include "storage/iterator.h"

#include <rocksdb/slice.h>

#include "storage/engine_rep.h"
#include "storage/rocks_status.h"

namespace tidemark::storage {

namespace {
rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}
std::string_view ToView(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}
}  // namespace

Snapshot::Snapshot(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

Snapshot::~Snapshot() {
  rep_->db->ReleaseSnapshot(rep_->snapshot);
  rep_->live_readers->fetch_sub(1);
}

Iterator::Iterator(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

Iterator::~Iterator() {
  rep_->it.reset();
  rep_->live_readers->fetch_sub(1);
}

bool Iterator::Valid() const {
  return rep_->it->Valid();
}
void Iterator::SeekToFirst() {
  rep_->it->SeekToFirst();
}
void Iterator::SeekToLast() {
  rep_->it->SeekToLast();
}
void Iterator::Seek(std::string_view target) {
  rep_->it->Seek(ToSlice(target));
}
void Iterator::SeekForPrev(std::string_view target) {
  rep_->it->SeekForPrev(ToSlice(target));
}
void Iterator::Next() {
  rep_->it->Next();
}
void Iterator::Prev() {
  rep_->it->Prev();
}
std::string_view Iterator::key() const {
  return ToView(rep_->it->key());
}
std::string_view Iterator::value() const {
  return ToView(rep_->it->value());
}

Status Iterator::status() const {
  return FromRocks(rep_->it->status(), "iterate", rep_->cf_name, rep_->dir);
}

}  // namespace tidemark::storage
