#include "mvcc/kv_view.h"

#include <string>

#include "mvcc/codec.h"
#include "storage/iterator.h"

namespace tidemark::mvcc {

namespace {

// After this many Next() calls within one key's older versions, Seek past the
// key instead: a Seek costs a few Next()s, and hot keys can have thousands of
// versions until compaction.
constexpr int kNextBeforeSeek = 4;

}  // namespace

bool InRange(std::string_view k, std::string_view key, std::string_view range_end) {
  if (range_end.empty()) {
    return k == key;
  }
  if (range_end == std::string_view("\0", 1)) {
    return k >= key;
  }
  return k >= key && k < range_end;
}

Status KvView::Scan(std::string_view key, std::string_view range_end, Mode mode,
                    const Visitor& visit) const {
  const bool single = range_end.empty();
  const bool unbounded = range_end == std::string_view("\0", 1);
  if (!single && !unbounded && range_end <= key) {
    return Status::Ok();  // empty range
  }

  storage::ReadOptions ro;
  ro.snapshot = snapshot_;
  if (single) {
    ro.upper_bound = codec::PastKey(codec::KeyPrefix(key));
  } else if (!unbounded) {
    ro.upper_bound = codec::EscapedBound(range_end);
  }
  auto it = engine_->NewIterator(storage::kKvCf, std::move(ro));

  std::string target = codec::KvKey(key, revision_);
  it->Seek(target);
  std::string prefix;
  while (it->Valid()) {
    TM_ASSIGN_OR_RETURN(codec::KvKeyParts parts, codec::SplitKvKey(it->key()));
    if (parts.revision > revision_) {
      // Newer than the view: jump to this key's newest version <= revision_.
      target.assign(parts.prefix);
      codec::PutBE64(&target, ~static_cast<uint64_t>(revision_));
      it->Seek(target);
      continue;
    }
    prefix.assign(parts.prefix);
    TM_ASSIGN_OR_RETURN(bool tombstone, codec::IsTombstone(it->value()));
    if (!tombstone) {
      KeyValue kv;
      if (mode != Mode::kCountOnly) {
        TM_ASSIGN_OR_RETURN(kv.key, codec::UnescapePrefix(prefix));
        kv.mod_revision = parts.revision;
        TM_RETURN_IF_ERROR(codec::DecodeLive(it->value(), mode == Mode::kKeysOnly, &kv));
      }
      if (!visit(std::move(kv))) {
        return Status::Ok();
      }
    }
    if (single) {
      break;
    }
    // Skip the older versions of this key.
    int steps = 0;
    for (it->Next(); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (++steps >= kNextBeforeSeek) {
        it->Seek(codec::PastKey(prefix));
        break;
      }
    }
  }
  return it->status();
}

Result<std::optional<KeyValue>> KvView::Get(std::string_view key) const {
  std::optional<KeyValue> found;
  TM_RETURN_IF_ERROR(Scan(key, {}, Mode::kFull, [&](KeyValue&& kv) {
    found = std::move(kv);
    return false;
  }));
  return found;
}

}  // namespace tidemark::mvcc
