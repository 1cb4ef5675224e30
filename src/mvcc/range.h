#pragma once
// ExecuteRange: etcd 3.4's Range semantics (applierV3backend.Range plus
// mvcc rangeKeys) over any ordered source of live KVs. Revision validation is
// the caller's job; this applies limit, count, filters, sorting, keys_only
// and count_only exactly as etcd 3.4 does:
//   * count = keys in the range, before limit and before min/max filters;
//   * a sort order other than NONE, or any min/max filter, fetches the whole
//     range before filtering, sorting and truncating to `limit`; otherwise
//     limit + 1 keys are fetched in key order (for `more`);
//   * sort_order NONE with sort_target != KEY sorts ASCEND by the target
//     (after the limit + 1 fetch, as etcd does);
//   * ties keep ascending key order (etcd's sort is unstable; clients must
//     not depend on tie order).
// Thread safety: pure function of its inputs.

#include <functional>

#include "base/status.h"
#include "mvcc/kv_view.h"
#include "mvcc/types.h"

namespace tidemark::mvcc {

// Enumerates the live KVs of the request's range in ascending key order.
using RangeSource = std::function<Status(KvView::Mode, const KvView::Visitor&)>;

// Fills kvs, more and count (not `revision`).
Result<RangeResult> ExecuteRange(const RangeRequest& req, const RangeSource& source);

}  // namespace tidemark::mvcc
