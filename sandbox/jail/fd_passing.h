// Hands an fd from the post-fork child to the server over the setup socket (SCM_RIGHTS), with
// a one-byte note that says what it is. Allocation-free: the child may call it.
#pragma once

namespace mcpx::jail {

// The notes (a failure record is larger than one byte, so the parent tells them apart).
inline constexpr char kListenerNote = 'L';         // net.h: the proxy port's listening socket
inline constexpr char kSeccompListenerNote = 'S';  // seccomp_audit.h: the audit listener

// Sends `fd` with the byte `note` on `report_fd`. Returns 0 or the errno of the failed send.
// The message holds its own reference: the caller may close `fd` right after.
int SendFdToParent(int report_fd, char note, int fd);

}  // namespace mcpx::jail
