// Hands an fd from the post-fork child to the server over the setup socket (SCM_RIGHTS), with
// a one-byte note that says what it is. The sending side is allocation-free: the child may call it.
#pragma once

#include <sys/types.h>

#include <cstddef>

#include "util/unique_fd.h"

namespace mcpx::jail {

// The notes (a failure record is larger than one byte, so the parent tells them apart).
inline constexpr char kListenerNote = 'L';         // net.h: the proxy port's listening socket
inline constexpr char kSeccompListenerNote = 'S';  // seccomp_audit.h: the audit listener

// Sends `fd` with the byte `note` on `report_fd`. Returns 0 or the errno of the failed send.
// The message holds its own reference: the caller may close `fd` right after.
int SendFdToParent(int report_fd, char note, int fd);

// The parent's side: one message of up to `len` bytes into `buf`, and the fd it carries (if any)
// into *passed, CLOEXEC. `flags` go to recvmsg (e.g. MSG_DONTWAIT). Returns recvmsg's result.
ssize_t ReceiveWithFd(int sock, void* buf, size_t len, UniqueFd* passed, int flags);

}  // namespace mcpx::jail
