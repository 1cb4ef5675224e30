#pragma once
// Factories for the gRPC services (etcdserverpb.KV, Maintenance, Cluster),
// all on gRPC's callback API: handlers validate and either answer at once
// (reads) or hand the request to the commit pipeline and finish the reactor
// from the apply thread. Handlers never block on I/O.

#include <memory>

#include <grpcpp/impl/codegen/service_type.h>

#include "base/status.h"

namespace tidemark::server {

struct Core;

std::unique_ptr<grpc::Service> NewKvService(Core* core);
std::unique_ptr<grpc::Service> NewMaintenanceService(Core* core);
std::unique_ptr<grpc::Service> NewClusterService(Core* core);
// etcdserverpb.Lease (server/lease_service.cc). Needs core->lessor.
std::unique_ptr<grpc::Service> NewLeaseService(Core* core);
// Starts core->lessor's expiry thread; each expired lease becomes a
// lease_expire proposal through core->pipeline (call after the pipeline
// started; stop with core->lessor->Stop() before stopping the pipeline).
void StartLeaseExpiry(Core* core);
// etcdserverpb.Watch (server/watch_service.cc). Needs core->watch_hub.
std::unique_ptr<grpc::Service> NewWatchService(Core* core);
// Creates core->watch_hub, hooks it to the pipeline's applied events and
// starts its thread. Call BEFORE core->pipeline->Start().
Status StartWatchHub(Core* core);
// Stops the hub and ends every watch stream (before the gRPC shutdown).
void StopWatchHub(Core* core);
// Sets the etcd_debugging_mvcc_watch* gauges from the hub.
void RefreshWatchGauges(Core* core);

}  // namespace tidemark::server
