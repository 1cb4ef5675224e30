#pragma once
// Status and Result<T>: errors as values.
//
// Our code never throws; every fallible call returns a Status or Result<T>.
// Both types are [[nodiscard]], so an ignored error is a compiler warning
// (an error under -Werror builds). Drop one on purpose with IgnoreError()
// and a comment saying why.
//
// Codes are domain codes (compacted vs. future revision are different codes)
// and are mapped to gRPC codes and etcd's exact message strings in exactly one
// place: server/grpc_errors.cc.

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tidemark {

enum class Code : unsigned char {
  kOk = 0,
  kNotFound,
  kInvalidArgument,
  kFailedPrecondition,
  kOutOfRange,
  kResourceExhausted,
  kCorruption,
  kIoError,
  kUnavailable,
  kInternal,
  kAborted,
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status NotFoundError(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status InvalidArgumentError(std::string m) {
  return Status(Code::kInvalidArgument, std::move(m));
}
inline Status FailedPreconditionError(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}
inline Status OutOfRangeError(std::string m) { return Status(Code::kOutOfRange, std::move(m)); }
inline Status CorruptionError(std::string m) { return Status(Code::kCorruption, std::move(m)); }
inline Status IoError(std::string m) { return Status(Code::kIoError, std::move(m)); }
inline Status UnavailableError(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status InternalError(std::string m) { return Status(Code::kInternal, std::move(m)); }

// Result<T>: a T or a non-OK Status. API shaped like std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tidemark

#define TM_CONCAT_INNER_(a, b) a##b
#define TM_CONCAT_(a, b) TM_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Status); returns it from the enclosing function if not OK.
#define TM_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    ::tidemark::Status tm_status_ = (expr);            \
    if (!tm_status_.ok()) return tm_status_;           \
  } while (0)

// TM_ASSIGN_OR_RETURN(auto x, ResultExpr()): unwraps a Result or returns its Status.
#define TM_ASSIGN_OR_RETURN(lhs, expr) \
  TM_ASSIGN_OR_RETURN_IMPL_(TM_CONCAT_(tm_result_, __LINE__), lhs, expr)
#define TM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
