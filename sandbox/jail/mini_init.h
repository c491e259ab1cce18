// The sandbox's PID 1: a few lines of post-fork code (no exec of its own) that starts the real
// process, forwards SIGINT/SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 to it, reaps every orphan, and exits
// with the real process's status (exit code, or 128+signal). When it exits, the kernel kills
// everything left in the PID namespace.
//
// It runs last in the child pipeline, so it is as confined as the code it starts: no
// capabilities, no_new_privs, Landlock and seccomp are already in place. After starting the real
// process it needs only clone, close_range/close, wait4, kill, exit_group.
#pragma once

#include <string>
#include <vector>

namespace mcpx::jail {

struct ExecPlan {
  std::string path;               // inside the sandbox
  std::vector<std::string> args;  // storage for argv
  std::vector<std::string> env;   // storage for envp ("K=V")
  std::vector<char*> argv;        // null-terminated, points into args
  std::vector<char*> envp;        // null-terminated, points into env
  std::string cwd;
};

// Fills argv/envp from args/env; call once, after which the storage must not change.
void FinishExecPlan(ExecPlan& plan);

// Installs the forwarding handlers, starts the real process (which execs plan.path and on
// failure reports {"execve", errno} on report_fd), then waits. Never returns.
[[noreturn]] void RunInit(const ExecPlan& plan, int report_fd);

}  // namespace mcpx::jail
