#include "mvcc/range.h"

#include <algorithm>

namespace tidemark::mvcc {

namespace {

bool HasFilters(const RangeRequest& r) {
  return r.min_mod_revision != 0 || r.max_mod_revision != 0 || r.min_create_revision != 0 ||
         r.max_create_revision != 0;
}

// Same order as etcd's pruneKVs calls; each filter is active only if != 0.
void Prune(const RangeRequest& r, std::vector<KeyValue>* kvs) {
  std::erase_if(*kvs, [&r](const KeyValue& kv) {
    return (r.max_mod_revision != 0 && kv.mod_revision > r.max_mod_revision) ||
           (r.min_mod_revision != 0 && kv.mod_revision < r.min_mod_revision) ||
           (r.max_create_revision != 0 && kv.create_revision > r.max_create_revision) ||
           (r.min_create_revision != 0 && kv.create_revision < r.min_create_revision);
  });
}

// Three-way comparison of a and b by `target`.
int CompareBy(SortTarget target, const KeyValue& a, const KeyValue& b) {
  auto cmp = [](auto x, auto y) {
    return x < y ? -1 : (y < x ? 1 : 0);
  };
  switch (target) {
    case SortTarget::kKey:
      return cmp(a.key, b.key);
    case SortTarget::kVersion:
      return cmp(a.version, b.version);
    case SortTarget::kCreate:
      return cmp(a.create_revision, b.create_revision);
    case SortTarget::kMod:
      return cmp(a.mod_revision, b.mod_revision);
    case SortTarget::kValue:
      return cmp(a.value, b.value);
  }
  return 0;
}

}  // namespace

Result<RangeResult> ExecuteRange(const RangeRequest& req, const RangeSource& source) {
  int64_t fetch_limit = req.limit;
  // (KEY, ASCEND) is the source's own order: fetching limit + 1 gives the same
  // kvs and `more` as etcd's fetch-everything-then-sort.
  const bool key_ascend =
      req.sort_order == SortOrder::kAscend && req.sort_target == SortTarget::kKey;
  if ((req.sort_order != SortOrder::kNone && !key_ascend) || HasFilters(req)) {
    fetch_limit = 0;
  }
  if (fetch_limit > 0) {
    ++fetch_limit;  // one extra to learn `more`
  }

  KvView::Mode mode = KvView::Mode::kFull;
  if (req.count_only) {
    mode = KvView::Mode::kCountOnly;
  } else if (req.keys_only && req.sort_target != SortTarget::kValue) {
    mode = KvView::Mode::kKeysOnly;  // values are never needed
  }

  RangeResult result;
  TM_RETURN_IF_ERROR(source(mode, [&](KeyValue&& kv) {
    ++result.count;
    if (!req.count_only &&
        (fetch_limit <= 0 || static_cast<int64_t>(result.kvs.size()) < fetch_limit)) {
      result.kvs.push_back(std::move(kv));
    }
    return true;  // count needs the whole range
  }));
  if (req.count_only) {
    return result;
  }

  Prune(req, &result.kvs);

  SortOrder order = req.sort_order;
  if (order == SortOrder::kNone && req.sort_target != SortTarget::kKey) {
    order = SortOrder::kAscend;
  }
  // Input is in ascending key order; a stable sort keeps that order for ties.
  if (order == SortOrder::kAscend && req.sort_target != SortTarget::kKey) {
    std::stable_sort(result.kvs.begin(), result.kvs.end(), [&](const auto& a, const auto& b) {
      return CompareBy(req.sort_target, a, b) < 0;
    });
  } else if (order == SortOrder::kDescend) {
    std::stable_sort(result.kvs.begin(), result.kvs.end(), [&](const auto& a, const auto& b) {
      return CompareBy(req.sort_target, a, b) > 0;
    });
  }

  if (req.limit > 0 && static_cast<int64_t>(result.kvs.size()) > req.limit) {
    result.kvs.resize(static_cast<size_t>(req.limit));
    result.more = true;
  }
  if (req.keys_only) {
    for (auto& kv : result.kvs) {
      kv.value.clear();
    }
  }
  return result;
}

}  // namespace tidemark::mvcc
