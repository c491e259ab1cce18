#include "session/execution.h"

namespace mcpx::session {

Status ValidateSessionName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgument("argument 'session' must be 1 to 64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) {
      return InvalidArgument(
          "argument 'session' may only contain letters, digits, '_', '-' and '.', got '" + name +
          "'");
    }
  }
  return Status::Ok();
}

std::string_view ExecStatusName(ExecStatus status) {
  switch (status) {
    case ExecStatus::kOk:
      return "ok";
    case ExecStatus::kError:
      return "error";
    case ExecStatus::kTimeout:
      return "timeout";
    case ExecStatus::kCancelled:
      return "cancelled";
    case ExecStatus::kKilled:
      break;
  }
  return "killed";
}

}  // namespace mcpx::session
