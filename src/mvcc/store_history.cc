// Store methods that read across revisions: HashKV and Events.

#include <string>

#include <fmt/format.h>

#include "base/crc32c.h"
#include "mvcc/codec.h"
#include "mvcc/errors.h"
#include "mvcc/kv_view.h"
#include "mvcc/store.h"
#include "storage/iterator.h"

namespace tidemark::mvcc {

Result<HashKVResult> Store::HashKV(int64_t rev) const {
  const int64_t cur = current_revision();
  std::shared_ptr<const storage::Snapshot> snap = engine_->GetSnapshot();
  const int64_t compact = compact_rev_.load();
  // etcd's HashByRev checks before resolving 0 to the current revision.
  if (rev > 0 && rev <= compact) {
    return CompactedError();
  }
  if (rev > cur) {
    return FutureRevError();
  }
  if (rev <= 0) {
    rev = cur;
  }

  storage::ReadOptions ro;
  ro.snapshot = snap.get();
  ro.fill_cache = false;  // a full scan should not evict the hot set
  auto it = engine_->NewIterator(storage::kKvCf, std::move(ro));
  uint32_t crc = 0;  // CRC-32C (Castagnoli), as etcd's HashKV
  std::string key_prefix;
  bool seen_at_or_below_compact = false;
  std::string len;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    TM_ASSIGN_OR_RETURN(codec::KvKeyParts parts, codec::SplitKvKey(it->key()));
    if (parts.prefix != key_prefix) {
      key_prefix.assign(parts.prefix);
      seen_at_or_below_compact = false;
    }
    if (parts.revision > rev) {
      continue;
    }
    if (parts.revision <= compact) {
      // Only the newest version <= compact survives compaction, and only if
      // it is not a tombstone: exactly what the compactor keeps, so the hash
      // is the same before and after physical removal.
      if (seen_at_or_below_compact) {
        continue;
      }
      seen_at_or_below_compact = true;
      TM_ASSIGN_OR_RETURN(bool tombstone, codec::IsTombstone(it->value()));
      if (tombstone) {
        continue;
      }
    }
    len.clear();
    codec::PutBE32(&len, static_cast<uint32_t>(it->key().size()));
    crc = crc32c::Extend(crc, len);
    crc = crc32c::Extend(crc, it->key());
    len.clear();
    codec::PutBE32(&len, static_cast<uint32_t>(it->value().size()));
    crc = crc32c::Extend(crc, len);
    crc = crc32c::Extend(crc, it->value());
  }
  TM_RETURN_IF_ERROR(it->status());
  return HashKVResult{crc, compact, rev};
}

Result<std::vector<Event>> Store::Events(int64_t from_rev, int64_t to_rev, size_t max) const {
  const int64_t cur = current_revision();
  std::shared_ptr<const storage::Snapshot> snap = engine_->GetSnapshot();
  const int64_t compact = compact_rev_.load();
  if (to_rev <= 0 || to_rev > cur) {
    to_rev = cur;
  }
  if (from_rev < compact) {
    return CompactedError();
  }
  std::vector<Event> events;
  if (from_rev > to_rev) {
    return events;
  }

  storage::ReadOptions ro;
  ro.snapshot = snap.get();
  ro.upper_bound = codec::HistoryKey(to_rev + 1, 0);
  auto it = engine_->NewIterator(storage::kHistoryCf, std::move(ro));
  int64_t last_rev = 0;
  for (it->Seek(codec::HistoryKey(std::max<int64_t>(from_rev, 0), 0)); it->Valid(); it->Next()) {
    TM_ASSIGN_OR_RETURN(codec::HistoryEntry h, codec::DecodeHistory(it->key(), it->value()));
    if (max != 0 && events.size() >= max && h.revision != last_rev) {
      break;
    }
    last_rev = h.revision;

    Event ev;
    ev.type = h.type;
    if (h.inline_kv) {
      ev.kv = std::move(*h.inline_kv);  // overwritten later in its own txn
    } else if (h.type == EventType::kPut) {
      KvView at(engine_, snap.get(), h.revision);
      TM_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, at.Get(h.key));
      if (!kv || kv->mod_revision != h.revision) {
        return CorruptionError(fmt::format("mvcc: history put of {} at revision {} has no kv entry",
                                           codec::EscapeForLog(h.key), h.revision));
      }
      ev.kv = std::move(*kv);
    } else {
      ev.kv.key = h.key;
      ev.kv.mod_revision = h.revision;
    }
    // prev_kv: the version at revision - 1, unless compacted or a creation.
    const bool creation = h.type == EventType::kPut && ev.kv.create_revision == ev.kv.mod_revision;
    if (!creation && h.revision - 1 >= compact) {
      KvView before(engine_, snap.get(), h.revision - 1);
      TM_ASSIGN_OR_RETURN(ev.prev_kv, before.Get(h.key));
    }
    events.push_back(std::move(ev));
  }
  TM_RETURN_IF_ERROR(it->status());
  return events;
}

}  // namespace tidemark::mvcc
