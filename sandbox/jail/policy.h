// A sandbox policy: limits, mounts, network mode, preload modules and a seccomp profile.
//
// Loaded from policies/NAME.json (or a file path), validated once, then immutable and shared.
// Validation errors name the JSON path ("limits.memory_mb: must be a positive integer").
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
  double cpus = 1.0;                   // CPU quota in cores
  uint32_t timeout_default_s = 60;     // execute_python wall clock default
  uint32_t timeout_max_s = 600;        // cap for timeout_seconds
  uint32_t interrupt_grace_ms = 2000;  // SIGINT to kill escalation
  uint64_t tmp_bytes = 256ull << 20;   // tmpfs /tmp
  uint64_t shm_bytes = 64ull << 20;    // tmpfs /dev/shm
  uint64_t nofile = 1024;
  uint64_t fsize_bytes = 1024ull << 20;
  uint64_t nproc = 256;  // RLIMIT_NPROC backstop (cgroup pids is the real limit)
  // Per-user kernel budgets, charged to the server's host user through every user namespace
  // above the sandbox (ucounts): each sandbox gets its own small share (docs/SECURITY.md
  // "Limits" has the arithmetic against the host's per-user defaults).
  uint64_t sigpending = 128;             // RLIMIT_SIGPENDING: queued signals
  uint64_t msgqueue_bytes = 0;           // RLIMIT_MSGQUEUE: POSIX message queue bytes
  uint64_t inotify_instances = 8;        // user.max_inotify_instances (and fanotify groups)
  uint64_t inotify_watches = 512;        // user.max_inotify_watches (and fanotify marks)
  uint64_t output_bytes = 100ull << 10;  // per stream per reply; beyond: head + tail, full saved
  uint64_t image_bytes = 1ull << 20;     // per image; larger ones are downscaled
  uint32_t max_images = 5;               // per reply; the rest saved to the workspace
  uint32_t max_sessions = 8;
  uint32_t idle_timeout_s = 3600;  // idle sessions are reaped after this
  uint32_t start_timeout_s = 60;   // a kernel not ready (preloads imported) by then is killed
  // The shared workspace (all sandboxes write the same folder; see src/workspace/disk_budget.h).
  // A cell that grows the workspace tree past these is killed by name; the reserve is free
  // space on its filesystem that sandboxes may not eat into, kept for the client's writes.
  uint64_t workspace_bytes = 4096ull << 20;
  uint64_t workspace_inodes = 100000;  // files, folders and links in the tree
  uint64_t workspace_reserve_bytes = 64ull << 20;
  uint64_t workspace_reserve_inodes = 256;
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
  std::vector<std::string> preload;    // modules imported by warm kernels before use
  std::vector<BindMount> extra_binds;  // beyond the rootfs manifest, read-only unless stated
  bool landlock = true;
  SeccompProfile seccomp;
  std::string seccomp_source_path;
  // Compiled once by ParsePolicy from `seccomp`, in install order: the built-in filter, then the
  // profile (seccomp_compiler.h says why). Spawn installs these bytes and never compiles; it
  // refuses a policy without them.
  std::vector<SeccompProgram> seccomp_programs;
};

using PolicyPtr = std::shared_ptr<const Policy>;

// NAME (looked up in policies_dir as NAME.json) or a path to a .json file.
Result<PolicyPtr> LoadPolicy(const std::string& name_or_path, const std::string& policies_dir);
// Parses and validates a policy document and compiles its seccomp filters; seccomp_dir resolves
// its "seccomp_profile" reference.
Result<PolicyPtr> ParsePolicy(const nlohmann::json& doc, const std::string& seccomp_dir,
                              const std::string& source_path);

// Worst-case size of one execute_python reply under these limits (stdout and stderr each twice:
// text block and structuredContent; images base64-encoded). Validation keeps it under
// kMaxReplyBytes so a reply fits the 10 MB a TypeScript SDK client accepts.
uint64_t WorstCaseReplyBytes(const Limits& limits);
inline constexpr uint64_t kMaxReplyBytes = 8ull << 20;

// The effective policy as JSON (`policy show`).
nlohmann::json PolicyToJson(const Policy& policy);

}  // namespace mcpx::jail
