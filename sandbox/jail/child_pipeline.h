// The child side of a spawn: one function that runs a fixed list of small steps, in an order
// that each step's comment explains. Everything it touches is prepared by the parent in a
// ChildPlan; after the clone the child does not allocate, throw or log. A failing step writes
// {step, errno} to the CLOEXEC report socket and the child _exit()s; the parent turns that into
// a Status.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "jail/child_failure.h"
#include "jail/child_steps.h"
#include "jail/landlock.h"
#include "jail/mini_init.h"
#include "jail/mounts.h"
#include "jail/rlimits.h"
#include "jail/seccomp_compiler.h"
#include "jail/userns.h"
#include "jail/userns_limits.h"

namespace mcpx::jail {

struct ChildPlan {
  IdMap ids;
  // cgroup v1: the `tasks` file of each hierarchy of our cgroup, opened by the parent; the child
  // moves itself in (see JoinCgroupInChild). Empty: the parent placed us (v2, or a fallback).
  std::vector<int> cgroup_tasks;
  bool unshare_cgroup = true;
  std::string hostname = "sandbox";
  MountPlan mounts;
  RlimitPlan rlimits;
  UserNsLimitPlan userns_limits;
  int last_cap = 40;
  LandlockPlan landlock;
  // Installed in this order. A program flagged SECCOMP_FILTER_FLAG_NEW_LISTENER (an audited
  // sandbox's profile, seccomp_audit.h) sends its listener to the parent and closes it.
  std::vector<SeccompProgram> seccomp;
  std::vector<FdMapping> fds;   // sorted by child_fd, child_fd unique
  std::vector<int> fd_scratch;  // fds.size() slots for the child's temporary copies
  AddressRange server_args;     // the server's argv strings, wiped so /proc/1/cmdline shows none
  uint16_t listen_port = 0;     // ListenerToParentInChild (net.h); 0: none
  ExecPlan exec;
  InitWatch init;  // init.note_fd: a parent fd, moved next to the sync fd by MapFds
};

// Runs the pipeline in the freshly cloned child. The child is a raw clone of a threaded server:
// glibc still lists the server's other threads and may hold locks they held at the clone. Every
// step makes raw syscalls only: no allocation, no stdio, no glibc wrapper that talks to other
// threads (set*id broadcasts to them and waits; see userns.cc). `sync_fd` is the child's end of the
// SOCK_SEQPACKET pair: it reads the parent's go byte, and failure records go back on it.
[[noreturn]] void RunChild(ChildPlan& plan, int sync_fd);

}  // namespace mcpx::jail
