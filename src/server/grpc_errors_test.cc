// The one place where domain errors become what clients see: etcd's exact
// code and text (Go clientv3 and npm etcd3 match on the strings).
#include "server/grpc_errors.h"

#include <gtest/gtest.h>

#include "apply/errors.h"
#include "mvcc/errors.h"

namespace tidemark::server {
namespace {

TEST(GrpcErrorsTest, EtcdStringsAndCodes) {
  struct Case {
    Status in;
    grpc::StatusCode code;
    const char* msg;
    int http;
  } cases[] = {
      {apply::EmptyKey(), grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key is not provided", 400},
      {apply::TooManyOps(), grpc::StatusCode::INVALID_ARGUMENT,
       "etcdserver: too many operations in txn request", 400},
      {apply::DuplicateKey(), grpc::StatusCode::INVALID_ARGUMENT,
       "etcdserver: duplicate key given in txn request", 400},
      {apply::RequestTooLarge(), grpc::StatusCode::INVALID_ARGUMENT,
       "etcdserver: request is too large", 400},
      {apply::LeaseNotFound(), grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found",
       404},
      {apply::NoSpace(), grpc::StatusCode::RESOURCE_EXHAUSTED,
       "etcdserver: mvcc: database space exceeded", 429},
      {apply::Stopped(), grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped", 503},
      // mvcc's errors get etcd's server prefix.
      {mvcc::CompactedError(), grpc::StatusCode::OUT_OF_RANGE,
       "etcdserver: mvcc: required revision has been compacted", 400},
      {mvcc::FutureRevError(), grpc::StatusCode::OUT_OF_RANGE,
       "etcdserver: mvcc: required revision is a future revision", 400},
      // Our own failures never pretend to be etcd's.
      {CorruptionError("wal: checksum mismatch in x.wal at offset 7"), grpc::StatusCode::DATA_LOSS,
       "wal: checksum mismatch in x.wal at offset 7", 500},
      {IoError("fs: write /d: EIO"), grpc::StatusCode::INTERNAL, "fs: write /d: EIO", 500},
  };
  for (const auto& c : cases) {
    grpc::Status g = ToGrpcStatus(c.in);
    EXPECT_EQ(g.error_code(), c.code) << c.msg;
    EXPECT_EQ(g.error_message(), c.msg);
    EXPECT_EQ(HttpStatusForGrpcCode(g.error_code()), c.http) << c.msg;
  }
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::OUT_OF_RANGE), "OutOfRange");
}

}  // namespace
}  // namespace tidemark::server
