// `exec --audit`: what the policy's seccomp profile denied while the code ran, and where.
//
// The jail answers each denied call with the profile's errno (jail/seccomp_audit.h) and calls
// AuditRecorder::Record first. The Python line comes from a page the sandboxed code writes
// (sandbox/kernel/mcpx_audit.py): hostile input, read with bounded preads and kept only as a
// thread id that must match and a line number within the code.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "jail/seccomp_audit.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace mcpx::cli {

// The wrapper's path inside the sandbox and the fd its page arrives on.
inline constexpr const char* kAuditWrapper = "/opt/mcpx/kernel/mcpx_audit.py";
inline constexpr int kAuditPageFd = 3;

struct DeniedSyscall {
  int nr = 0;
  std::string name;
  int err = 0;
  uint64_t count = 0;
  std::array<uint64_t, 3> args{};  // of the first call
  std::vector<std::string> where;  // distinct "file:line", first seen first, capped
};

class AuditRecorder {
 public:
  // `display_name`: what the report calls the code ("<string>" for -c, else the FILE);
  // `code`: its text, for the number of lines a page entry may name.
  static Result<AuditRecorder> Create(std::string display_name, const std::string& code);

  // The shared page, to map into the sandbox at kAuditPageFd.
  int page_fd() const { return page_.get(); }
  // For SpawnRequest::audit_hook; the recorder must outlive the sandbox.
  jail::SeccompAuditor::Hook Hook();
  void Record(const jail::SeccompNotice& notice, const jail::SeccompAuditor& auditor);

  // Rows sorted by name, then errno.
  std::vector<DeniedSyscall> Denied() const;
  // "audit: policy P denied ..." and one line a syscall, each ending in '\n'.
  std::string Report(const std::string& policy) const;
  nlohmann::ordered_json DeniedJson() const;

 private:
  AuditRecorder(UniqueFd page, std::string display_name, uint32_t lines)
      : page_(std::move(page)), display_name_(std::move(display_name)), lines_(lines) {}
  // The line the thread `host_tid` is on in the user's code, or 0 when the page does not say.
  uint32_t LineOf(pid_t host_tid) const;

  UniqueFd page_;
  std::string display_name_;
  uint32_t lines_ = 0;
  std::map<std::pair<int, int>, DeniedSyscall> denied_;  // (nr, errno) -> row
};

}  // namespace mcpx::cli
