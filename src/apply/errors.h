#pragma once
// etcd's client-visible error texts, byte-exact (etcd 3.4 rpctypes). Go
// clientv3 and npm etcd3 match on these strings, so never reword them.
// Each helper returns a Status whose Code maps 1:1 to the gRPC code etcd uses
// (server/grpc_errors.cc does the mapping).

#include "base/status.h"

namespace tidemark::apply {

inline constexpr char kErrEmptyKey[] = "etcdserver: key is not provided";
inline constexpr char kErrKeyNotFound[] = "etcdserver: key not found";
inline constexpr char kErrValueProvided[] = "etcdserver: value is provided";
inline constexpr char kErrLeaseProvided[] = "etcdserver: lease is provided";
inline constexpr char kErrTooManyOps[] = "etcdserver: too many operations in txn request";
inline constexpr char kErrDuplicateKey[] = "etcdserver: duplicate key given in txn request";
inline constexpr char kErrCompacted[] = "etcdserver: mvcc: required revision has been compacted";
inline constexpr char kErrFutureRev[] = "etcdserver: mvcc: required revision is a future revision";
inline constexpr char kErrNoSpace[] = "etcdserver: mvcc: database space exceeded";
inline constexpr char kErrLeaseNotFound[] = "etcdserver: requested lease not found";
inline constexpr char kErrLeaseExist[] = "etcdserver: lease already exists";
inline constexpr char kErrLeaseTTLTooLarge[] = "etcdserver: too large lease TTL";
inline constexpr char kErrRequestTooLarge[] = "etcdserver: request is too large";
inline constexpr char kErrTooManyRequests[] = "etcdserver: too many requests";
inline constexpr char kErrMemberNotFound[] = "etcdserver: member not found";
inline constexpr char kErrNotCapable[] = "etcdserver: not capable";
inline constexpr char kErrBadLeaderTransferee[] = "etcdserver: bad leader transferee";
inline constexpr char kErrStopped[] = "etcdserver: server stopped";
inline constexpr char kErrAuthNotEnabled[] = "etcdserver: authentication is not enabled";

inline Status EmptyKey() { return InvalidArgumentError(kErrEmptyKey); }
inline Status KeyNotFound() { return InvalidArgumentError(kErrKeyNotFound); }
inline Status ValueProvided() { return InvalidArgumentError(kErrValueProvided); }
inline Status LeaseProvided() { return InvalidArgumentError(kErrLeaseProvided); }
inline Status TooManyOps() { return InvalidArgumentError(kErrTooManyOps); }
inline Status DuplicateKey() { return InvalidArgumentError(kErrDuplicateKey); }
inline Status Compacted() { return OutOfRangeError(kErrCompacted); }
inline Status FutureRev() { return OutOfRangeError(kErrFutureRev); }
inline Status NoSpace() { return Status(Code::kResourceExhausted, kErrNoSpace); }
inline Status LeaseNotFound() { return NotFoundError(kErrLeaseNotFound); }
inline Status LeaseExists() { return FailedPreconditionError(kErrLeaseExist); }
inline Status LeaseTTLTooLarge() { return OutOfRangeError(kErrLeaseTTLTooLarge); }
inline Status RequestTooLarge() { return InvalidArgumentError(kErrRequestTooLarge); }
inline Status Stopped() { return UnavailableError(kErrStopped); }

}  // namespace tidemark::apply
