#pragma once
// The HTTP/1.1 side of the client port: GET /health, /version, /metrics and
// etcd's JSON gateway (POST /v3/..., also /v3beta/...). Gateway requests are
// served by calling our own gRPC services over an in-process channel, so
// validation, errors and metrics are exactly those of gRPC clients.
//
// JSON follows grpc-gateway/jsonpb as etcd 3.4 uses it: proto field names,
// bytes as padded standard base64, 64-bit integers as strings, enums by
// name, zero values omitted. Errors: {"error":m,"message":m,"code":c} with
// the HTTP status of the gRPC code.

#include <memory>

#include "base/status.h"

namespace httplib {
class Server;
}

namespace tidemark::server {

struct Core;

// Registers every route on `http`. `core->grpc_server` must exist.
void RegisterHttpRoutes(Core* core, httplib::Server* http);

}  // namespace tidemark::server
