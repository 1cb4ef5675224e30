#include "storage/rocks_status.h"

#include <string>

#include <fmt/format.h>

namespace tidemark::storage {

namespace {

Code MapCode(const rocksdb::Status& s) {
  if (s.IsNotFound()) {
    return Code::kNotFound;
  }
  if (s.IsCorruption()) {
    return Code::kCorruption;
  }
  if (s.IsInvalidArgument()) {
    return Code::kInvalidArgument;
  }
  if (s.IsNoSpace()) {
    return Code::kResourceExhausted;
  }
  if (s.IsIOError()) {
    return Code::kIoError;
  }
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return Code::kUnavailable;
  }
  if (s.IsShutdownInProgress() || s.IsAborted()) {
    return Code::kAborted;
  }
  if (s.IsNotSupported()) {
    return Code::kFailedPrecondition;
  }
  return Code::kInternal;
}

}  // namespace

Status FromRocks(const rocksdb::Status& s, std::string_view op, std::string_view cf,
                 std::string_view dir) {
  if (s.ok()) {
    return Status::Ok();
  }
  std::string where;
  if (!cf.empty()) {
    where = fmt::format("cf {}, ", cf);
  }
  where += fmt::format("dir {}", dir);
  return Status(MapCode(s), fmt::format("storage: {} ({}): {}", op, where, s.ToString()));
}

}  // namespace tidemark::storage
