#include "util/status.h"

#include <cstring>
#include <string>

namespace mcpx {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kNotFound:
      return "not found";
    case Code::kAlreadyExists:
      return "already exists";
    case Code::kPermissionDenied:
      return "permission denied";
    case Code::kFailedPrecondition:
      return "failed precondition";
    case Code::kResourceExhausted:
      return "resource exhausted";
    case Code::kDeadlineExceeded:
      return "deadline exceeded";
    case Code::kCancelled:
      return "cancelled";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string ErrnoName(int err) {
  // strerrorname_np is glibc >= 2.32; Debian 12 has 2.36.
  const char* name = strerrordesc_np(err) != nullptr ? strerrorname_np(err) : nullptr;
  return name != nullptr ? std::string(name) : "errno " + std::to_string(err);
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_, errno_);
}

std::string Status::ToString() const {
  if (errno_ == 0) return message_;
  return message_ + ": " + ErrnoName(errno_) + " (" + strerrordesc_np(errno_) + ")";
}

Status ErrnoStatus(Code code, std::string_view what, int err) {
  return Status(code, std::string(what), err);
}

}  // namespace mcpx
