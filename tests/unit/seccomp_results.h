// Seccomp results as the seccomp tests spell them; the tests use x86_64 syscall numbers.
#pragma once

#include <linux/seccomp.h>

#include <cstdint>

#if !defined(__x86_64__)
#error "these tests use x86_64 syscall numbers"
#endif

namespace mcpx::jail {

inline constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
inline constexpr uint32_t kKillProcess = SECCOMP_RET_KILL_PROCESS;
constexpr uint32_t Errno(int e) { return SECCOMP_RET_ERRNO | static_cast<uint32_t>(e); }

}  // namespace mcpx::jail
