#pragma once
// Private: GrpcTarget's connections, shared with watch_client.cc.
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "etcdserverpb/rpc.grpc.pb.h"

#include "bench/grpc_target.h"

namespace tidemark::bench {

struct GrpcTarget::Rep {
  GrpcTargetOptions options;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv;
};

}  // namespace tidemark::bench
