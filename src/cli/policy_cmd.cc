// `mcp-executor policy show|export [--policy NAME|FILE] [--format oci]`
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"
#include "jail/policy.h"
#include "session/server_policy.h"

namespace mcpx::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "mcp-executor policy: %s\n", message.c_str());
  return 2;
}

// The export must mean the same thing to us as what we compiled: parse it back and compare.
Status CheckRoundTrip(const nlohmann::json& exported) {
  auto reparsed = jail::ParseSeccompProfile(exported);
  if (!reparsed.ok()) return reparsed.status().Annotate("exported profile does not re-parse");
  if (jail::SeccompToOci(*reparsed) != exported) {
    return Internal("exported profile changes meaning when parsed back");
  }
  return Status::Ok();
}

}  // namespace

int RunPolicy(const Options& opts) {
  if (opts.positional.size() != 1 ||
      (opts.positional[0] != "show" && opts.positional[0] != "export")) {
    return Fail("expected `policy show` or `policy export [--format oci]`");
  }
  const std::string& action = opts.positional[0];
  if (action == "show" && !opts.format.empty()) {
    return Fail("--format applies to `policy export` only");
  }
  if (action == "export" && !opts.format.empty() && opts.format != "oci") {
    return Fail("unknown --format '" + opts.format + "' (supported: oci)");
  }

  auto policy = session::LoadServerPolicy(opts.policy, opts.policies_dir());
  if (!policy.ok()) return Fail(policy.status().ToString());

  if (action == "show") {
    WriteStdout(session::ServerPolicyToJson(**policy).dump(2) + "\n");
    return 0;
  }
  const nlohmann::json oci = jail::SeccompToOci((*policy)->sandbox->seccomp);
  if (Status st = CheckRoundTrip(oci); !st.ok()) return Fail(st.ToString());
  WriteStdout(oci.dump(2) + "\n");
  std::fprintf(
      stderr,
      "note: the built-in filter (foreign architectures killed, TIOCSTI/TIOCLINUX, clone "
      "namespace flags, clone3, mount/keyring/bpf/io_uring/ptrace family, personality "
      "and socket family checks, set-id mode bits on chmod/open/mknod, openat2, "
      "memfd_create without MFD_NOEXEC_SEAL) is not part of this export (most of it is not "
      "expressible in OCI); see docs/POLICIES.md\n");
  return 0;
}

}  // namespace mcpx::cli
