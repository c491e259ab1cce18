// The OCI runtime-spec (config-linux.md) seccomp profile: its parsed form, the parser that
// validates it (unknown syscall names, actions and Docker-only fields are errors) and the export
// back to pure OCI JSON. seccomp_compiler.h turns a profile into BPF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace mcpx::jail {

// One argument condition of an OCI seccomp rule. op is one of SCMP_CMP_{NE,LT,LE,EQ,GE,GT,
// MASKED_EQ}; for MASKED_EQ, value is the mask and value_two the datum.
struct SeccompArg {
  unsigned index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;
  bool operator==(const SeccompArg&) const = default;
};

struct SeccompRule {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...
  int errno_ret = -1;  // for SCMP_ACT_ERRNO (TRACE: message); -1 = use default_errno_ret.
                       // Parsed profiles store EPERM when errnoRet is absent (OCI default).
  std::vector<SeccompArg> args;
  bool operator==(const SeccompRule&) const = default;
};

// The OCI runtime-spec (config-linux.md) seccomp object.
struct SeccompProfile {
  std::string default_action = "SCMP_ACT_ERRNO";
  int default_errno_ret = 38;              // ENOSYS: friendlier to libc fallbacks than EPERM
  std::vector<std::string> architectures;  // SCMP_ARCH_X86_64, ...
  std::vector<std::string> flags;
  std::vector<SeccompRule> syscalls;
  bool operator==(const SeccompProfile&) const = default;
};

// Parses and validates an OCI seccomp profile (unknown syscall names are an error). `path` is
// where doc sits in an enclosing document ("seccomp_profile"), for the error messages.
Result<SeccompProfile> ParseSeccompProfile(const nlohmann::json& doc, const std::string& path = "");

// Pure OCI runtime-spec seccomp JSON (`policy export --format oci`): no Docker-only fields.
nlohmann::json SeccompToOci(const SeccompProfile& profile);

}  // namespace mcpx::jail
