// Network namespace: only loopback, brought up so code can use 127.0.0.1 among its own
// processes. Nothing routes out.
#pragma once

#include "jail/child_failure.h"

namespace mcpx::jail {

ChildFailure LoopbackUpInChild();

}  // namespace mcpx::jail
