#include "cli/exec_audit.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <tuple>

#include "util/io.h"
#include "util/text.h"

namespace mcpx::cli {
namespace {

// The page's layout, as sandbox/kernel/mcpx_audit.py writes it: kSlots slots of two
// little-endian u32, {thread id in the sandbox's PID namespace, line}, the slot chosen by
// tid % kSlots.
constexpr size_t kSlots = 2048;
constexpr size_t kSlotBytes = 8;
constexpr size_t kPageBytes = kSlots * kSlotBytes;
constexpr size_t kMaxWhere = 8;  // distinct places kept per syscall

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U  // Linux 6.3
#endif

// The memfd the sandbox maps. Sealed at its size so the code cannot shrink it under the server
// (which reads it with pread anyway), and not executable where the kernel can say so.
Result<UniqueFd> MakePage() {
  UniqueFd fd(memfd_create("mcpx-audit", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL));
  if (!fd && errno == EINVAL) fd.reset(memfd_create("mcpx-audit", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return ErrnoStatus(Code::kResourceExhausted, "exec --audit: memfd_create");
  if (ftruncate(fd.get(), kPageBytes) != 0 ||
      fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return ErrnoStatus(Code::kInternal, "exec --audit: cannot size and seal the line page");
  }
  return fd;
}

// The thread's id in the innermost PID namespace: the last field of /proc/<tid>/status's NSpid
// line (procfs escapes newlines in the process name, so the line cannot be forged). 0: unknown.
pid_t NamespaceTid(pid_t host_tid) {
  const std::string path = "/proc/" + std::to_string(host_tid) + "/status";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  char buf[4096];
  const ssize_t n = RetryEintr([&] { return read(fd.get(), buf, sizeof(buf) - 1); });
  if (n <= 0) return 0;
  const std::string_view text(buf, static_cast<size_t>(n));
  const size_t at = text.find("\nNSpid:");
  if (at == std::string_view::npos) return 0;
  std::string_view line = text.substr(at + 7);
  line = line.substr(0, line.find('\n'));
  const size_t last = line.find_last_of(" \t");
  const std::string_view field = last == std::string_view::npos ? line : line.substr(last + 1);
  long value = 0;
  for (const char c : field) {
    if (c < '0' || c > '9' || value > 1'000'000'000) return 0;
    value = value * 10 + (c - '0');
  }
  return static_cast<pid_t>(value);
}

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

Result<AuditRecorder> AuditRecorder::Create(std::string display_name, const std::string& code) {
  ASSIGN_OR_RETURN(UniqueFd page, MakePage());
  const auto lines = static_cast<uint32_t>(std::count(code.begin(), code.end(), '\n') + 1);
  return AuditRecorder(std::move(page), std::move(display_name), lines);
}

jail::SeccompAuditor::Hook AuditRecorder::Hook() {
  return [this](const jail::SeccompNotice& n, const jail::SeccompAuditor& a) { Record(n, a); };
}

uint32_t AuditRecorder::LineOf(pid_t host_tid) const {
  const pid_t tid = NamespaceTid(host_tid);
  if (tid <= 0) return 0;
  unsigned char slot[kSlotBytes];
  const auto offset = static_cast<off_t>((static_cast<size_t>(tid) % kSlots) * kSlotBytes);
  if (RetryEintr([&] { return pread(page_.get(), slot, sizeof(slot), offset); }) !=
      static_cast<ssize_t>(sizeof(slot))) {
    return 0;
  }
  uint32_t owner = 0, line = 0;
  memcpy(&owner, slot, 4);  // little endian, as the page is written (x86_64, aarch64)
  memcpy(&line, slot + 4, 4);
  if (owner != static_cast<uint32_t>(tid) || line == 0 || line > lines_) return 0;
  return line;
}

void AuditRecorder::Record(const jail::SeccompNotice& n, const jail::SeccompAuditor& auditor) {
  uint32_t line = LineOf(n.tid);
  // The thread may have died and its id been reused between the notification and the read.
  if (line != 0 && !auditor.StillWaiting(n.id)) line = 0;
  DeniedSyscall& row = denied_[{n.nr, n.err}];
  if (row.count == 0) {
    row.nr = n.nr;
    row.name = jail::SyscallName(n.nr);
    row.err = n.err;
    std::copy_n(n.args.begin(), row.args.size(), row.args.begin());
  }
  ++row.count;
  if (line == 0) return;
  std::string where = display_name_ + ":" + std::to_string(line);
  if (row.where.size() < kMaxWhere &&
      std::find(row.where.begin(), row.where.end(), where) == row.where.end()) {
    row.where.push_back(std::move(where));
  }
}

std::vector<DeniedSyscall> AuditRecorder::Denied() const {
  std::vector<DeniedSyscall> rows;
  for (const auto& [key, row] : denied_) rows.push_back(row);
  std::sort(rows.begin(), rows.end(), [](const DeniedSyscall& a, const DeniedSyscall& b) {
    return std::tie(a.name, a.err) < std::tie(b.name, b.err);
  });
  return rows;
}

std::string AuditRecorder::Report(const std::string& policy) const {
  const std::vector<DeniedSyscall> rows = Denied();
  if (rows.empty()) return "audit: policy " + policy + " denied nothing\n";
  uint64_t calls = 0;
  size_t name_width = 0, count_width = 0, errno_width = 0;
  for (const DeniedSyscall& r : rows) {
    calls += r.count;
    name_width = std::max(name_width, r.name.size());
    count_width = std::max(count_width, std::to_string(r.count).size());
    errno_width = std::max(errno_width, ErrnoName(r.err).size());
  }
  std::string out = "audit: policy " + policy + " denied " +
                    Plural(rows.size(), "syscall", "syscalls") + " (" +
                    Plural(calls, "call", "calls") + "); everything else was allowed\n";
  for (const DeniedSyscall& r : rows) {
    const std::string count = std::to_string(r.count);
    const std::string err = ErrnoName(r.err);
    out += "  " + PadRight(r.name, name_width + 2) + PadLeft(count, count_width) + "  ";
    out += PadRight(err, errno_width + 2);
    out += "args " + Hex(r.args[0]) + ", " + Hex(r.args[1]) + ", " + Hex(r.args[2]);
    for (size_t i = 0; i < r.where.size(); ++i) out += (i == 0 ? "   " : ", ") + r.where[i];
    out += "\n";
  }
  return out;
}

nlohmann::ordered_json AuditRecorder::DeniedJson() const {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const DeniedSyscall& r : Denied()) {
    nlohmann::ordered_json args = nlohmann::ordered_json::array();
    for (const uint64_t a : r.args) args.push_back(Hex(a));
    out.push_back({{"syscall", r.name},
                   {"nr", r.nr},
                   {"count", r.count},
                   {"errno", ErrnoName(r.err)},
                   {"args", std::move(args)},
                   {"where", r.where}});
  }
  return out;
}

}  // namespace mcpx::cli
