#pragma once
// ProposeUnary: the one shape every unary write RPC has -- admit, propose
// through the commit pipeline, and answer from the applied response.
//
//   check   the request's own validation result (Ok to go on)
//   ir      the InternalRequest carrying it
//   part    InternalResponse* -> this RPC's response message inside it
//   on_ok   called with the filled response once applied (metrics)
//
// The reactor is finished exactly once: with the error of `check` or of
// admission (nothing proposed), or from the apply thread with the applied
// result. Thread-safety: as Pipeline::Propose. `core` must outlive the call.

#include <utility>

#include <grpcpp/grpcpp.h>

#include "base/status.h"
#include "server/core.h"
#include "server/grpc_errors.h"

namespace tidemark::server {

template <typename Resp, typename Part, typename OnOk>
grpc::ServerUnaryReactor* ProposeUnary(Core* core, grpc::CallbackServerContext* ctx, Status check,
                                       internal::InternalRequest ir, bool needs_space,
                                       Resp* resp, Part part, OnOk on_ok) {
  auto* reactor = ctx->DefaultReactor();
  if (check.ok()) check = core->AdmitWrite(ir.ByteSizeLong(), needs_space);
  if (!check.ok()) {
    reactor->Finish(ToGrpcStatus(check));
    return reactor;
  }
  core->pipeline->Propose(
      std::move(ir), [core, reactor, resp, part = std::move(part), on_ok = std::move(on_ok)](
                         const Status& st, internal::InternalResponse* r) {
        if (st.ok()) {
          resp->Swap(part(r));
          core->FillHeader(resp->mutable_header(), resp->header().revision());
          on_ok(*resp);
        }
        reactor->Finish(ToGrpcStatus(st));
      });
  return reactor;
}

}  // namespace tidemark::server
