// Network namespace: only loopback, brought up so code can use 127.0.0.1 among its own
// processes. Nothing routes out.
#pragma once

#include <cstdint>

#include "jail/child_failure.h"
#include "jail/fd_passing.h"  // kListenerNote

namespace mcpx::jail {

ChildFailure LoopbackUpInChild();

// A listening TCP socket on 127.0.0.1:`port` inside the sandbox's net namespace, sent to the
// parent over `report_fd` (SCM_RIGHTS, one byte kListenerNote: fd_passing.h) and closed here: the
// server holds the only copy, so a server-side service (the installer's proxy) listens inside the
// namespace without any helper process running there. port 0: nothing to do.
ChildFailure ListenerToParentInChild(uint16_t port, int report_fd);

}  // namespace mcpx::jail
