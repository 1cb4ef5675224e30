#pragma once
// MVCC error texts, byte-exact etcd 3.4 (mvcc/kvstore.go) WITHOUT the
// "etcdserver: " prefix the server adds. Both are Code::kOutOfRange; callers
// tell them apart by IsCompacted()/IsFutureRev().

#include "base/status.h"

namespace tidemark::mvcc {

inline constexpr char kErrCompacted[] = "mvcc: required revision has been compacted";
inline constexpr char kErrFutureRev[] = "mvcc: required revision is a future revision";

inline Status CompactedError() {
  return OutOfRangeError(kErrCompacted);
}
inline Status FutureRevError() {
  return OutOfRangeError(kErrFutureRev);
}

inline bool IsCompacted(const Status& s) {
  return s.code() == Code::kOutOfRange && s.message() == kErrCompacted;
}
inline bool IsFutureRev(const Status& s) {
  return s.code() == Code::kOutOfRange && s.message() == kErrFutureRev;
}

}  // namespace tidemark::mvcc
