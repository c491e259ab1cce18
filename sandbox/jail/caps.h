// Capabilities: every set emptied (bounding, ambient, inheritable, effective, permitted).
#pragma once

#include "jail/child_failure.h"
#include "util/status.h"

namespace mcpx::jail {

// Parent: the highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap).
Result<int> LastCapFromParent();

// Child, in two halves because Landlock and seccomp sit between them:
// the bounding and ambient sets need CAP_SETPCAP, so they go first.
ChildFailure DropBoundingAndAmbientInChild(int last_cap);
// Then the three process sets, with capset(2) directly (libcap allocates).
ChildFailure ClearCapsInChild();

}  // namespace mcpx::jail
