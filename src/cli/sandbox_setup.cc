#include "cli/sandbox_setup.h"

#include <filesystem>

#include <spdlog/spdlog.h>

namespace mcpx::cli {

Result<std::string> EnsureDir(const std::string& path, const char* what) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return Status(Code::kFailedPrecondition,
                  std::string("cannot create ") + what + " " + path + ": " + ec.message(),
                  ec.value());
  }
  const auto abs = std::filesystem::canonical(path, ec);
  if (ec) return Status(Code::kNotFound, std::string("cannot resolve ") + what + " " + path);
  return abs.string();
}

Result<SandboxSetup> PrepareSandbox(const Options& opts, session::ServerPolicyPtr policy,
                                    const std::string& workspace) {
  SandboxSetup s;
  s.cgroups = jail::CgroupManager::Detect();
  if (!s.cgroups->report().usable) {
    spdlog::warn("cgroup limits unavailable ({}); memory is bounded by RLIMIT_AS instead",
                 s.cgroups->report().detail);
    s.cgroups.reset();
  }
  ASSIGN_OR_RETURN(s.config, session::MakeKernelConfig(
                                 std::move(policy),
                                 {opts.rootfs_dir(), opts.kernel_dir(), opts.state_dir, workspace},
                                 s.cgroups.get()));
  return s;
}

}  // namespace mcpx::cli
