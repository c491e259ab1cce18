// A sandbox policy: what the jail enforces (limits, mounts, network mode, Landlock, a seccomp
// profile compiled once).
//
// Loaded from policies/NAME.json (or a file path), validated once, then immutable and shared.
// Validation errors name the JSON path ("limits.memory_mb: must be a positive integer").
//
// A policy file also holds settings for the layers above (the session's timeouts, output caps,
// preload modules: session/server_policy.h). The jail reads only its own fields and hands every
// other key on, in Policy::others, for those layers to read and to refuse when nobody knows it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jail/json_fields.h"  // ReadJsonFile
#include "jail/seccomp_compiler.h"
#include "jail/seccomp_profile.h"
#include "util/status.h"

namespace mcpx::jail {

struct Limits {
  uint64_t memory_bytes = 1024ull << 20;
  uint64_t pids = 128;
  double cpus = 1.0;                  // CPU quota in cores
  uint64_t tmp_bytes = 256ull << 20;  // tmpfs /tmp
  uint64_t shm_bytes = 64ull << 20;   // tmpfs /dev/shm
  uint64_t nofile = 1024;
  uint64_t fsize_bytes = 1024ull << 20;
  uint64_t nproc = 256;  // RLIMIT_NPROC backstop (cgroup pids is the real limit)
  // Per-user kernel budgets, charged to the server's host user through every user namespace
  // above the sandbox (ucounts): each sandbox gets its own small share (docs/SECURITY.md
  // "Limits" has the arithmetic against the host's per-user defaults).
  uint64_t sigpending = 128;       // RLIMIT_SIGPENDING: queued signals
  uint64_t msgqueue_bytes = 0;     // RLIMIT_MSGQUEUE: POSIX message queue bytes
  uint64_t inotify_instances = 8;  // user.max_inotify_instances (and fanotify groups)
  uint64_t inotify_watches = 512;  // user.max_inotify_watches (and fanotify marks)
};

enum class NetworkMode {
  kNone,  // new net namespace with loopback only: the only mode a sandbox gets
};

struct BindMount {
  std::string source;  // host path
  std::string target;  // path inside the sandbox
  bool writable = false;
  bool optional = false;  // skip silently when the source does not exist
  std::string reason;     // required for writable binds: why the sandbox may write there
};

struct Policy {
  std::string name;
  std::string description;
  std::string source_path;  // file it was loaded from
  Limits limits;
  NetworkMode network = NetworkMode::kNone;
  std::vector<BindMount> extra_binds;  // beyond the rootfs manifest, read-only unless stated
  bool landlock = true;
  SeccompProfile seccomp;
  std::string seccomp_source_path;
  // Compiled once by ParsePolicy from `seccomp`, in install order: the built-in filter, then the
  // profile (seccomp_compiler.h says why). Spawn installs these bytes and never compiles; it
  // refuses a policy without them.
  std::vector<SeccompProgram> seccomp_programs;
  // The document's keys the jail does not read, as an object: top-level ones, and under
  // "limits" the limits that are not the jail's ({"preload": [...], "limits": {"output_kb": 100}}).
  nlohmann::json others = nlohmann::json::object();
};

using PolicyPtr = std::shared_ptr<const Policy>;

// The keys the jail reads: at the top level of a policy document, and in its "limits".
std::vector<std::string_view> PolicyFields();
std::vector<std::string_view> LimitFields();

// A policy's "limits" object (limits.cc): reads the jail's limits into `l` and the other keys
// into `others` for the layers above; and the jail's limits in the same form (`policy show`).
Status ParseLimits(const nlohmann::json& v, const std::string& path, Limits& l,
                   nlohmann::json& others);
nlohmann::json LimitsToJson(const Limits& l);

struct PolicyFile {
  std::string path;
  nlohmann::json doc;
};
// NAME (looked up in policies_dir as NAME.json) or a path to a .json file, read and parsed.
Result<PolicyFile> ReadPolicyFile(const std::string& name_or_path, const std::string& policies_dir);

// Loads a policy file and parses its jail fields (others stay in Policy::others, unread).
Result<PolicyPtr> LoadPolicy(const std::string& name_or_path, const std::string& policies_dir);
// Parses and validates a policy document's jail fields and compiles its seccomp filters;
// seccomp_dir resolves its "seccomp_profile" reference.
Result<PolicyPtr> ParsePolicy(const nlohmann::json& doc, const std::string& seccomp_dir,
                              const std::string& source_path);

// The jail's fields of the effective policy as JSON (`policy show` adds the others).
nlohmann::json PolicyToJson(const Policy& policy);

}  // namespace mcpx::jail
