#include "mvcc/store.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "base/check.h"
#include "mvcc/codec.h"
#include "mvcc/compactor.h"
#include "mvcc/errors.h"
#include "mvcc/kv_view.h"
#include "mvcc/range.h"
#include "mvcc/write_txn.h"
#include "storage/iterator.h"
#include "storage/write_batch.h"

namespace tidemark::mvcc {

namespace {

// Reads an optional BE64 meta value.
Result<std::optional<uint64_t>> ReadMeta(const storage::Engine* engine, std::string_view key) {
  TM_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine->Get(storage::kMetaCf, key));
  if (!raw) {
    return std::optional<uint64_t>();
  }
  TM_ASSIGN_OR_RETURN(uint64_t v, codec::DecodeU64(*raw, key));
  return std::optional<uint64_t>(v);
}

}  // namespace

Store::Store(storage::Engine* engine, StoreOptions options) : engine_(engine), options_(options) {}

Store::~Store() {
  Close();
}

void Store::Close() {
  if (compactor_) {
    compactor_->Stop();
  }
}

Result<std::unique_ptr<Store>> Store::Open(storage::Engine* engine, StoreOptions options) {
  TM_CHECK(engine != nullptr);
  std::unique_ptr<Store> store(new Store(engine, options));
  TM_RETURN_IF_ERROR(store->Load());
  return store;
}

Status Store::Load() {
  TM_ASSIGN_OR_RETURN(std::optional<std::string> format,
                      engine_->Get(storage::kMetaCf, codec::kMetaFormat));
  if (!format) {
    // Fresh store: make sure it really is empty before claiming revision 1.
    auto it = engine_->NewIterator(storage::kKvCf);
    it->SeekToFirst();
    const bool has_data = it->Valid();
    TM_RETURN_IF_ERROR(it->status());
    it.reset();
    if (has_data) {
      return CorruptionError(
          fmt::format("mvcc: kv data without meta {} in {}", codec::kMetaFormat, engine_->dir()));
    }
    storage::WriteBatch init(engine_);
    std::string version;
    codec::PutBE32(&version, codec::kFormatVersion);
    init.Put(storage::kMetaCf, codec::kMetaFormat, version);
    init.Put(storage::kMetaCf, codec::kMetaCurrentRev, codec::EncodeU64(1));
    TM_RETURN_IF_ERROR(engine_->Write(init));
  } else if (format->size() != 4 || codec::GetBE32(format->data()) != codec::kFormatVersion) {
    return FailedPreconditionError(fmt::format("mvcc: unsupported format {} in {} (want {})",
                                               codec::EscapeForLog(*format), engine_->dir(),
                                               codec::kFormatVersion));
  }

  TM_ASSIGN_OR_RETURN(auto current, ReadMeta(engine_, codec::kMetaCurrentRev));
  TM_ASSIGN_OR_RETURN(auto applied, ReadMeta(engine_, codec::kMetaAppliedIndex));
  TM_ASSIGN_OR_RETURN(auto compact, ReadMeta(engine_, codec::kMetaCompactRev));
  TM_ASSIGN_OR_RETURN(auto finished, ReadMeta(engine_, codec::kMetaCompactDone));
  TM_ASSIGN_OR_RETURN(auto keys, ReadMeta(engine_, codec::kMetaKeyCount));
  if (!current) {
    return CorruptionError(
        fmt::format("mvcc: meta {} missing in {}", codec::kMetaCurrentRev, engine_->dir()));
  }
  TM_ASSIGN_OR_RETURN(auto deferred, engine_->Get(storage::kMetaCf, codec::kMetaDeferred));
  if (deferred && !options_.defer_meta_writes) {
    return FailedPreconditionError(fmt::format(
        "mvcc: {} holds an unfinished restore (its meta records were never written: {} is "
        "present); the data is incomplete: discard it and restore again",
        engine_->dir(), codec::kMetaDeferred));
  }
  if (options_.defer_meta_writes && !deferred) {
    // Before any deferred commit: any crash state that holds replayed data
    // holds this marker too (the engine keeps a prefix of the write sequence).
    // A bulk loader may have written it earlier itself (restore: before the
    // base records).
    storage::WriteBatch mark(engine_);
    mark.Put(storage::kMetaCf, codec::kMetaDeferred, "");
    TM_RETURN_IF_ERROR(engine_->Write(mark));
  }
  current_rev_.store(static_cast<int64_t>(*current));
  applied_index_.store(applied.value_or(0));
  opened_applied_index_ = applied.value_or(0);
  compact_rev_.store(compact ? static_cast<int64_t>(*compact) : -1);
  key_count_.store(keys.value_or(0));
  TM_RETURN_IF_ERROR(LoadLatestIndex());

  const int64_t done = finished ? static_cast<int64_t>(*finished) : -1;
  compactor_ = std::make_unique<Compactor>(engine_, options_.compaction_batch_limit, done,
                                           options_.compaction_halt_after_batches_for_testing);
  if (options_.run_compactor) {
    compactor_->Start();
  }
  if (compact_rev_.load() > done) {
    compactor_->Schedule(compact_rev_.load());  // resume
  }
  return Status::Ok();
}

Status Store::LoadLatestIndex() {
  latest_.clear();
  // Every live key at the current revision, as a range read sees it (newest
  // version per key, tombstones skipped, older versions seeked past).
  KvView view(engine_, /*snapshot=*/nullptr, current_rev_.load());
  TM_RETURN_IF_ERROR(view.Scan(std::string_view("\0", 1), std::string_view("\0", 1),
                               KvView::Mode::kKeysOnly, [&](KeyValue&& kv) {
                                 latest_.emplace(std::move(kv.key), kv.mod_revision);
                                 return true;
                               }));
  if (latest_.size() != key_count_.load()) {
    return CorruptionError(fmt::format("mvcc: {} live keys in the kv data of {} but meta {} says {}",
                                       latest_.size(), engine_->dir(), codec::kMetaKeyCount,
                                       key_count_.load()));
  }
  return Status::Ok();
}

void Store::UpdateLatestIndex(std::string_view key, const std::optional<KeyValue>& kv) {
  if (kv) {
    auto it = latest_.find(key);
    if (it != latest_.end()) {
      it->second = kv->mod_revision;
    } else {
      latest_.emplace(std::string(key), kv->mod_revision);
    }
  } else if (auto it = latest_.find(key); it != latest_.end()) {
    latest_.erase(it);
  }
}

uint64_t Store::durable_applied_index() const {
  return std::max(opened_applied_index_, engine_->durable_marker());
}

int64_t Store::physically_compacted_revision() const {
  return compactor_->finished();
}

void Store::Publish(int64_t revision, uint64_t applied_index, uint64_t key_count) {
  const int64_t prev = current_rev_.load(std::memory_order_relaxed);
  TM_CHECK(revision == prev || revision == prev + 1);  // revisions never skip or go back
  applied_index_.store(applied_index, std::memory_order_release);
  key_count_.store(key_count, std::memory_order_release);
  // Last, with release: a reader that observes `revision` also observes the
  // batch that produced it (it was written before this store).
  current_rev_.store(revision, std::memory_order_release);
  if (publish_observer_) publish_observer_(revision, applied_index);
}

Result<RangeResult> Store::Range(const RangeRequest& req) const {
  // Order matters (docs/design/mvcc.md): current revision, then snapshot, then
  // compact revision. A snapshot that already misses compacted versions was
  // taken after compact_rev_ was raised, so the check below sees the raise.
  const int64_t cur = current_revision();
  std::shared_ptr<const storage::Snapshot> snap = engine_->GetSnapshot();
  const int64_t compact = compact_rev_.load();
  int64_t rev = req.revision;
  if (rev > cur) {
    return FutureRevError();
  }
  if (rev <= 0) {
    rev = cur;
  }
  if (rev < compact) {
    return CompactedError();
  }

  KvView view(engine_, snap.get(), rev);
  TM_ASSIGN_OR_RETURN(RangeResult result,
                      ExecuteRange(req, [&](KvView::Mode mode, const KvView::Visitor& visit) {
                        return view.Scan(req.key, req.range_end, mode, visit);
                      }));
  result.revision = cur;
  return result;
}

std::unique_ptr<WriteTxn> Store::BeginWrite() {
  const bool was_open = txn_open_.exchange(true, std::memory_order_acq_rel);
  TM_CHECK(!was_open);  // single writer, one WriteTxn at a time
  return std::unique_ptr<WriteTxn>(new WriteTxn(this));
}

Status Store::Compact(int64_t rev, uint64_t applied_index) {
  TM_CHECK(!txn_open_.load(std::memory_order_acquire));
  TM_RETURN_IF_ERROR(poisoned_);
  if (rev <= compact_rev_.load()) {
    return CompactedError();
  }
  if (rev > current_revision()) {
    return FutureRevError();
  }
  TM_CHECK(applied_index >= applied_index_.load());

  storage::WriteBatch batch(engine_);
  batch.Put(storage::kMetaCf, codec::kMetaCompactRev, codec::EncodeU64(static_cast<uint64_t>(rev)));
  batch.Put(storage::kMetaCf, codec::kMetaAppliedIndex, codec::EncodeU64(applied_index));
  batch.set_durability_marker(applied_index);
  Status s = engine_->Write(batch);
  if (!s.ok()) {
    poisoned_ = s;
    return s;
  }
  // Raise the compact revision BEFORE the compactor may delete anything.
  compact_rev_.store(rev);
  applied_index_.store(applied_index, std::memory_order_release);
  compactor_->Schedule(rev);
  return Status::Ok();
}

Status Store::FlushDeferredMeta() {
  TM_CHECK(!txn_open_.load(std::memory_order_acquire));
  TM_RETURN_IF_ERROR(poisoned_);
  const uint64_t applied = applied_index_.load(std::memory_order_acquire);
  storage::WriteBatch batch(engine_);
  batch.Put(storage::kMetaCf, codec::kMetaAppliedIndex, codec::EncodeU64(applied));
  batch.Put(storage::kMetaCf, codec::kMetaCurrentRev,
            codec::EncodeU64(static_cast<uint64_t>(current_rev_.load())));
  batch.Put(storage::kMetaCf, codec::kMetaKeyCount, codec::EncodeU64(key_count_.load()));
  batch.Delete(storage::kMetaCf, codec::kMetaDeferred);
  batch.set_durability_marker(applied);
  Status s = engine_->Write(batch);
  if (!s.ok()) poisoned_ = s;
  return s;
}

Status Store::BumpRevisionAndMarkCompacted(int64_t amount) {
  TM_CHECK(!txn_open_.load(std::memory_order_acquire));
  TM_RETURN_IF_ERROR(poisoned_);
  if (amount <= 0) return InvalidArgumentError("mvcc: revision bump must be > 0");
  const int64_t rev = current_rev_.load() + amount;
  storage::WriteBatch batch(engine_);
  batch.Put(storage::kMetaCf, codec::kMetaCurrentRev, codec::EncodeU64(static_cast<uint64_t>(rev)));
  Status s = engine_->Write(batch);
  if (!s.ok()) {
    poisoned_ = s;
    return s;
  }
  current_rev_.store(rev, std::memory_order_release);
  return Compact(rev, applied_index_.load(std::memory_order_acquire));
}

Status Store::WaitForCompaction(int64_t rev) const {
  if (rev <= 0) {
    rev = compact_rev_.load();
  }
  if (rev <= compactor_->finished()) {
    return Status::Ok();
  }
  return compactor_->Wait(rev);
}

}  // namespace tidemark::mvcc
