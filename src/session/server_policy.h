// A policy as the server uses it: the jail's part (jail/policy.h) and the session layer's
// settings from the same file (timeouts, output and image caps, sessions, the workspace budget,
// preload modules).
//
// The jail reads its fields and hands the rest on (jail::Policy::others); this file reads the
// session's, and refuses any key neither layer knows, naming its JSON path with a suggestion
// from every known key ("limits.ouput_kb: unknown field (did you mean 'output_kb'?)").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jail/policy.h"
#include "util/status.h"

namespace mcpx::session {

struct SessionSettings {
  uint32_t timeout_default_s = 60;      // execute_python wall clock default
  uint32_t timeout_max_s = 600;         // cap for timeout_seconds
  uint32_t interrupt_grace_ms = 2000;   // SIGINT to kill escalation
  uint64_t output_bytes = 8ull << 10;   // per stream per reply; beyond: head + tail, full saved
  uint64_t image_bytes = 300ull << 10;  // per image; larger ones are downscaled
  uint32_t image_px = 1568;             // longest side of an image; larger ones are downscaled
  uint32_t max_images = 5;              // per reply; the rest saved to the workspace
  // `.mcp-executor/outputs/` (long output saved whole, images past max_images): the oldest files
  // are removed past either cap (session/saved_outputs.h).
  uint64_t saved_outputs_session_bytes = 32ull << 20;
  uint64_t saved_outputs_bytes = 128ull << 20;
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
  std::vector<std::string> preload;  // modules imported by warm kernels before use
  // The package installer (packages/installer.h): its wall clock, and whether pip may build
  // source distributions (which runs their build code while the proxy is open).
  uint32_t install_timeout_s = 300;
  bool allow_sdist = false;
  // Each session's cells and outputs go to .mcp-executor/notebooks/<session>.ipynb
  // (notebook_recorder.h), for a person to review or rerun.
  bool record_notebook = true;
  // New kernels are forked from a zygote that imported the preloads once (session/zygote.h);
  // false: each kernel is a cold start of its own interpreter.
  bool zygote = true;
};

struct ServerPolicy {
  jail::PolicyPtr sandbox;  // what the jail enforces, seccomp compiled
  SessionSettings settings;
  const std::string& name() const { return sandbox->name; }
  const jail::Limits& limits() const { return sandbox->limits; }
};
using ServerPolicyPtr = std::shared_ptr<const ServerPolicy>;

// NAME (policies_dir/NAME.json) or a path to a .json file.
Result<ServerPolicyPtr> LoadServerPolicy(const std::string& name_or_path,
                                         const std::string& policies_dir);
// Parses and validates a whole policy document; seccomp_dir resolves its "seccomp_profile".
Result<ServerPolicyPtr> ParseServerPolicy(const nlohmann::json& doc, const std::string& seccomp_dir,
                                          const std::string& source_path);

// Worst-case size of one execute_python reply under these settings (stdout and stderr each
// twice: text block and structuredContent; images base64-encoded). Validation keeps it under
// kMaxReplyBytes so a reply fits the 10 MB a TypeScript SDK client accepts.
uint64_t WorstCaseReplyBytes(const SessionSettings& settings);
inline constexpr uint64_t kMaxReplyBytes = 8ull << 20;

// The effective policy as JSON (`policy show`): the jail's fields and the session's.
nlohmann::json ServerPolicyToJson(const ServerPolicy& policy);

}  // namespace mcpx::session
