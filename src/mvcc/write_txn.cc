#include "mvcc/write_txn.h"

#include <utility>

#include <fmt/format.h>

#include "base/check.h"
#include "mvcc/codec.h"
#include "mvcc/errors.h"
#include "mvcc/range.h"
#include "mvcc/store.h"

namespace tidemark::mvcc {

WriteTxn::WriteTxn(Store* store)
    : store_(store),
      base_rev_(store->current_revision()),
      key_count_(store->key_count()),
      batch_(store->engine()) {}

WriteTxn::~WriteTxn() {
  if (!done_) {
    store_->EndWrite();
  }
}

Status WriteTxn::ScanOverlay(std::string_view key, std::string_view range_end, KvView::Mode mode,
                             const KvView::Visitor& visit) const {
  KvView view(store_->engine(), /*snapshot=*/nullptr, base_rev_);
  auto pit = pending_.lower_bound(key);
  auto pending_in_range = [&] {
    return pit != pending_.end() && InRange(pit->first, key, range_end);
  };
  if (!pending_in_range()) {
    return view.Scan(key, range_end, mode, visit);
  }

  auto emit = [&](KeyValue kv) {
    if (mode == KvView::Mode::kCountOnly) {
      kv = KeyValue();
    } else if (mode == KvView::Mode::kKeysOnly) {
      kv.value.clear();
    }
    return visit(std::move(kv));
  };
  // Emits the pending entry at pit (if it is a put) and advances pit.
  auto emit_pending = [&] {
    const std::optional<KeyValue>& p = pit->second;
    ++pit;
    return p ? emit(*p) : true;
  };

  bool stopped = false;
  // The merge needs keys, so count-only scans read keys too.
  KvView::Mode db_mode = mode == KvView::Mode::kCountOnly ? KvView::Mode::kKeysOnly : mode;
  TM_RETURN_IF_ERROR(view.Scan(key, range_end, db_mode, [&](KeyValue&& kv) {
    while (pending_in_range() && pit->first < kv.key) {
      if (!emit_pending()) {
        stopped = true;
        return false;
      }
    }
    bool go_on = (pending_in_range() && pit->first == kv.key) ? emit_pending()  // txn overrides
                                                              : emit(std::move(kv));
    if (!go_on)
      stopped = true;
    return go_on;
  }));
  while (!stopped && pending_in_range()) {
    if (!emit_pending()) {
      stopped = true;
    }
  }
  return Status::Ok();
}

Result<RangeResult> WriteTxn::Range(const RangeRequest& req) {
  TM_CHECK(!done_);
  const int64_t cur = changed() ? revision() : base_rev_;
  int64_t rev = req.revision;
  if (rev > cur) {
    return FutureRevError();
  }
  if (rev <= 0) {
    rev = cur;
  }
  if (rev < store_->compact_revision()) {
    return CompactedError();
  }

  RangeSource source;
  KvView view(store_->engine(), /*snapshot=*/nullptr, rev);
  if (rev > base_rev_) {
    source = [&](KvView::Mode mode, const KvView::Visitor& visit) {
      return ScanOverlay(req.key, req.range_end, mode, visit);
    };
  } else {
    source = [&](KvView::Mode mode, const KvView::Visitor& visit) {
      return view.Scan(req.key, req.range_end, mode, visit);
    };
  }
  TM_ASSIGN_OR_RETURN(RangeResult result, ExecuteRange(req, source));
  result.revision = cur;
  return result;
}

Result<std::optional<KeyValue>> WriteTxn::Get(std::string_view key) {
  TM_CHECK(!done_);
  auto it = pending_.find(key);
  if (it != pending_.end()) {
    return it->second;
  }
  return Committed(key);
}

void WriteTxn::AddEvent(Event event) {
  const uint32_t sub = static_cast<uint32_t>(events_.size());
  batch_.Put(storage::kHistoryCf, codec::HistoryKey(revision(), sub),
             codec::HistoryValue(event.type, event.kv.key));
  events_.push_back(std::move(event));
}

Result<std::optional<KeyValue>> WriteTxn::Committed(std::string_view key) const {
  // The latest index names the newest version (the state at base_rev_, as no
  // other writer exists): one point read instead of an iterator seek.
  auto found = store_->latest_.find(key);
  if (found == store_->latest_.end()) {
    return std::optional<KeyValue>();
  }
  const std::string raw_key = codec::KvKey(key, found->second);
  TM_ASSIGN_OR_RETURN(std::optional<std::string> raw, store_->engine()->Get(storage::kKvCf, raw_key));
  if (!raw) {
    return CorruptionError(fmt::format("mvcc: kv record {} (newest version of a live key) missing in {}",
                                       codec::EscapeForLog(raw_key), store_->engine()->dir()));
  }
  KeyValue kv;
  kv.key.assign(key);
  kv.mod_revision = found->second;
  TM_RETURN_IF_ERROR(codec::DecodeLive(*raw, /*skip_value=*/false, &kv));
  return std::optional<KeyValue>(std::move(kv));
}

void WriteTxn::SupersedeEarlierPut(std::string_view key) {
  auto it = put_event_.find(key);
  if (it == put_event_.end()) {
    return;
  }
  const size_t index = it->second;
  batch_.Put(storage::kHistoryCf, codec::HistoryKey(revision(), static_cast<uint32_t>(index)),
             codec::HistoryInlinePutValue(events_[index].kv));
  put_event_.erase(it);
}

Result<std::optional<KeyValue>> WriteTxn::Put(std::string_view key, std::string_view value,
                                              int64_t lease) {
  TM_CHECK(!done_);
  if (key.empty()) {
    return InvalidArgumentError("mvcc: put with an empty key");
  }
  TM_ASSIGN_OR_RETURN(std::optional<KeyValue> prev, Get(key));

  const int64_t rev = revision();
  KeyValue kv;
  kv.key.assign(key);
  kv.create_revision = prev ? prev->create_revision : rev;
  kv.mod_revision = rev;
  kv.version = prev ? prev->version + 1 : 1;
  kv.value.assign(value);
  kv.lease = lease;

  std::optional<KeyValue> event_prev;
  if (kv.create_revision != kv.mod_revision) {
    if (pending_.contains(key)) {
      TM_ASSIGN_OR_RETURN(event_prev, Committed(key));
    } else {
      event_prev = prev;
    }
  }
  batch_.Put(storage::kKvCf, codec::KvKey(key, rev), codec::EncodeLive(kv));
  if (!prev) {
    ++key_count_;
  }
  pending_.insert_or_assign(kv.key, kv);
  SupersedeEarlierPut(key);
  put_event_[kv.key] = events_.size();
  AddEvent(Event{EventType::kPut, std::move(kv), std::move(event_prev)});
  return prev;
}

Result<std::vector<KeyValue>> WriteTxn::DeleteRange(std::string_view key,
                                                    std::string_view range_end) {
  TM_CHECK(!done_);
  std::vector<KeyValue> deleted;
  TM_RETURN_IF_ERROR(ScanOverlay(key, range_end, KvView::Mode::kFull, [&](KeyValue&& kv) {
    deleted.push_back(std::move(kv));
    return true;
  }));
  const int64_t rev = revision();
  const std::string tombstone = codec::EncodeTombstone();
  for (const KeyValue& kv : deleted) {
    std::optional<KeyValue> event_prev = kv;
    if (pending_.contains(kv.key)) {
      TM_ASSIGN_OR_RETURN(event_prev, Committed(kv.key));
    }
    batch_.Put(storage::kKvCf, codec::KvKey(kv.key, rev), tombstone);
    TM_CHECK(key_count_ > 0);
    --key_count_;
    pending_.insert_or_assign(kv.key, std::nullopt);
    SupersedeEarlierPut(kv.key);
    KeyValue marker;
    marker.key = kv.key;
    marker.mod_revision = rev;
    AddEvent(Event{EventType::kDelete, std::move(marker), std::move(event_prev)});
  }
  return deleted;
}

Status WriteTxn::Commit(uint64_t applied_index, std::vector<Event>* events) {
  TM_CHECK(!done_);
  done_ = true;
  Status s = WriteAndPublish(applied_index, events);
  // Whatever happened, this txn is over: the next one may begin even while
  // this object is still alive.
  store_->EndWrite();
  return s;
}

Status WriteTxn::WriteAndPublish(uint64_t applied_index, std::vector<Event>* events) {
  TM_RETURN_IF_ERROR(store_->poisoned_);
  // The applied index going backwards would mean replaying the WAL twice.
  TM_CHECK(applied_index >= store_->applied_index());

  const int64_t new_rev = changed() ? revision() : base_rev_;
  const bool write_meta = !store_->options_.defer_meta_writes;  // restore: once at the end
  if (write_meta) {
    batch_.Put(storage::kMetaCf, codec::kMetaAppliedIndex, codec::EncodeU64(applied_index));
  }
  if (write_meta && changed()) {
    batch_.Put(storage::kMetaCf, codec::kMetaCurrentRev,
               codec::EncodeU64(static_cast<uint64_t>(new_rev)));
    batch_.Put(storage::kMetaCf, codec::kMetaKeyCount, codec::EncodeU64(key_count_));
  }
  batch_.set_durability_marker(applied_index);
  Status s = store_->engine()->Write(batch_);
  if (!s.ok()) {
    store_->poisoned_ = s;
    return s;
  }
  for (const auto& [key, kv] : pending_) {
    store_->UpdateLatestIndex(key, kv);
  }
  store_->Publish(new_rev, applied_index, key_count_);
  if (events != nullptr) {
    *events = std::move(events_);
  }
  events_.clear();
  pending_.clear();
  return Status::Ok();
}

}  // namespace tidemark::mvcc
