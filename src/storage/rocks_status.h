#pragma once
// Private to storage/: maps rocksdb::Status to tidemark::Status.

#include <string_view>

#include <rocksdb/status.h>

#include "base/status.h"

namespace tidemark::storage {

// "storage: <op> (cf <cf>, dir <dir>): <rocksdb message>". `cf` may be empty.
Status FromRocks(const rocksdb::Status& s, std::string_view op, std::string_view cf,
                 std::string_view dir);

}  // namespace tidemark::storage
