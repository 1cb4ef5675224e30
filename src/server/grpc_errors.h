#pragma once
// The single mapping from tidemark::Status to the gRPC status a client sees.
//
// Rules (etcd 3.4, rpctypes): etcd-visible errors carry etcd's exact text
// (apply/errors.h); mvcc errors ("mvcc: ...") get etcd's "etcdserver: "
// prefix; codes map 1:1 (kOutOfRange -> OUT_OF_RANGE, ...). Internal errors
// (corruption, I/O) are INTERNAL or UNAVAILABLE with our message, never a
// fake etcd string.

#include <grpcpp/support/status.h>

#include "base/status.h"

namespace tidemark::server {

grpc::Status ToGrpcStatus(const Status& s);

// The HTTP status the JSON gateway answers for a gRPC code (grpc-gateway's table).
int HttpStatusForGrpcCode(grpc::StatusCode code);

// "OK", "InvalidArgument", ... as grpc-go prints codes (metric labels).
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace tidemark::server
