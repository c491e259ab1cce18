// User namespace: who the sandboxed code is, inside and on the host.
//
// Code always runs as uid/gid 1000 ("sandbox") inside. On the host that identity is:
//   - an unprivileged server: the server's own uid/gid (plain user namespaces, no newuidmap);
//   - a root server: the owner of the workspace when that is not root; for a root-owned
//     workspace, a dedicated unprivileged uid/gid (kDedicatedHostId) that the workspace is
//     chowned to (top folder only), so files the code creates never belong to host root.
// The parent writes the maps (UserNsFromParent); the child switches to the inside ids
// (UserNsInChild).
#pragma once

#include <sys/types.h>

#include <string>

#include "jail/child_failure.h"
#include "util/status.h"

namespace mcpx::jail {

inline constexpr uid_t kSandboxUid = 1000;
inline constexpr gid_t kSandboxGid = 1000;
// Not 65534: nobody is shared with other daemons, so files it owns are not ours alone. A fixed
// high id outside the usual range (login.defs UID_MAX 60000; subuid ranges start at 100000 per
// user, so 900000 only collides on hosts with more than eight subordinate ranges).
inline constexpr uid_t kDedicatedHostId = 900000;

struct IdMap {
  uid_t inside_uid = kSandboxUid;
  gid_t inside_gid = kSandboxGid;
  uid_t host_uid = 0;
  gid_t host_gid = 0;
  // Root parent: gid_map can be written without setgroups "deny", so the child can drop the
  // server's supplementary groups (root's group 0 would otherwise stay on the creds).
  bool drop_groups = false;
};

// Chooses the host identity for a sandbox whose writable folder is `workspace` (empty: none). May
// chown a root-owned workspace to kDedicatedHostId (root server only).
Result<IdMap> PlanIdMap(const std::string& workspace);

// Parent half: setgroups, uid_map, gid_map of the child `pid`, before the child proceeds.
Status UserNsFromParent(pid_t pid, const IdMap& ids);

// Child half: become inside_uid/inside_gid (keeping the namespace's capabilities for the
// steps that follow) and drop supplementary groups where allowed.
ChildFailure UserNsInChild(const IdMap& ids);

}  // namespace mcpx::jail
