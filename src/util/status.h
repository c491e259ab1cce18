// Status and Result<T>: the parent-side error contract.
//
// Every fallible function outside the post-fork child returns Status or Result<T>. A Status carries
// a category (which the MCP layer maps to JSON-RPC codes or tool errors), the errno that caused it
// (0 when none), and a message a user can act on. Messages name what failed and why, e.g.
// "cannot create cgroup /sys/fs/cgroup/memory/x: EACCES (not delegated; run `mcp-executor
// doctor`)". Code never discards the cause: when wrapping, prefix context with Annotate().
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mcpx {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // caller's input is wrong (bad path, bad JSON field)
  kNotFound,         // named thing does not exist
  kAlreadyExists,
  kPermissionDenied,    // refused by confinement or policy
  kFailedPrecondition,  // the machine or state does not allow it (e.g. no userns)
  kResourceExhausted,   // a limit was hit
  kDeadlineExceeded,
  kCancelled,
  kUnavailable,
  kInternal,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, int err = 0)
      : code_(code), errno_(err), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int err() const { return errno_; }
  const std::string& message() const { return message_; }

  // "context: message" keeping code and errno.
  Status Annotate(std::string_view context) const;

  // message plus ": ENAME (strerror)" when errno is set.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

// Status from the current errno: "what: ENOENT (No such file or directory)".
Status ErrnoStatus(Code code, std::string_view what, int err = errno);
// Symbolic errno name ("EACCES"), or the number when unknown.
std::string ErrnoName(int err);

inline Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
inline Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
inline Status PermissionDenied(std::string msg) {
  return {Code::kPermissionDenied, std::move(msg)};
}
inline Status FailedPrecondition(std::string msg) {
  return {Code::kFailedPrecondition, std::move(msg)};
}
inline Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mcpx

#define MCPX_CONCAT_INNER(a, b) a##b
#define MCPX_CONCAT(a, b) MCPX_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)    \
  do {                           \
    ::mcpx::Status _st = (expr); \
    if (!_st.ok()) return _st;   \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(MCPX_CONCAT(_res_, __LINE__), lhs, expr)
