// The policy's "limits" object (policy.h Limits): one table of its keys, which parsing, the key
// check, `policy show` and a zygote's session plan (session_fork.h) all walk.
#include <algorithm>
#include <cmath>
#include <string_view>
#include <variant>

#include "jail/json_fields.h"
#include "jail/policy.h"

namespace mcpx::jail {
namespace {

using nlohmann::json;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kKiB = 1ull << 10;

// One entry per key of "limits": parsing, the key check and `policy show` all walk this table.
// cpus is a number of cores, checked on its own; the others are UintFields (json_fields.h).
struct LimitSpec {
  std::string_view name;
  std::variant<UintField<Limits>, double Limits::*> field;
};
using U = UintField<Limits>;

const LimitSpec kLimitSpecs[] = {
    // Below 32 MiB the interpreter itself does not start; numpy needs about 40.
    {"memory_mb", U{&Limits::memory_bytes, 32, 1ull << 20, "MiB", kMiB}},
    // Python plus a BLAS thread pool and one subprocess.
    {"pids", U{&Limits::pids, 4, 1ull << 22}},
    {"cpus", &Limits::cpus},
    {"tmp_mb", U{&Limits::tmp_bytes, 1, 1ull << 20, "MiB", kMiB}},
    {"shm_mb", U{&Limits::shm_bytes, 1, 1ull << 20, "MiB", kMiB}},
    // Python needs a few dozen fds; the kernel's nr_open default caps the top.
    {"nofile", U{&Limits::nofile, 64, 1ull << 20}},
    {"fsize_mb", U{&Limits::fsize_bytes, 1, 1ull << 30, "MiB", kMiB}},
    {"nproc", U{&Limits::nproc, 4, 1ull << 22}},
    // Kernel-generated signals (SIGCHLD, timers, faults) are never refused; this bounds what
    // the code queues with sigqueue and friends.
    {"sigpending", U{&Limits::sigpending, 8, 1ull << 16}},
    // 0: no POSIX message queues (the shipped profiles deny mq_* anyway).
    {"msgqueue_kb", U{&Limits::msgqueue_bytes, 0, 1ull << 16, "KiB", kKiB}},
    {"inotify_instances", U{&Limits::inotify_instances, 0, 1024}},
    {"inotify_watches", U{&Limits::inotify_watches, 0, 1ull << 20}},
};

Status ReadLimit(const json& value, const std::string& path, const LimitSpec& spec, Limits& l) {
  if (const auto* field = std::get_if<UintField<Limits>>(&spec.field)) {
    return field->Read(value, path, l);
  }
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0.01 ||
      value.get<double>() > 1024) {
    return Error(path, "must be a number of cores between 0.01 and 1024, " + Got(value));
  }
  l.*std::get<double Limits::*>(spec.field) = value.get<double>();
  return Status::Ok();
}

}  // namespace

Status ParseLimits(const json& v, const std::string& path, Limits& l, json& others) {
  if (!v.is_object()) return Error(path, "must be an object, " + Got(v));
  for (const auto& item : v.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    const auto spec = std::find_if(std::begin(kLimitSpecs), std::end(kLimitSpecs),
                                   [&key](const LimitSpec& s) { return s.name == key; });
    if (spec == std::end(kLimitSpecs)) {
      others[key] = value;
      continue;
    }
    RETURN_IF_ERROR(ReadLimit(value, Field(path, key), *spec, l));
  }
  if (l.tmp_bytes + l.shm_bytes > l.memory_bytes * 4) {
    return Error(Field(path, "tmp_mb"), "tmp_mb + shm_mb may be at most 4x memory_mb");
  }
  return Status::Ok();
}

std::vector<std::string_view> LimitFields() {
  std::vector<std::string_view> names;
  for (const LimitSpec& spec : kLimitSpecs) names.push_back(spec.name);
  return names;
}

json LimitsToJson(const Limits& l) {
  json limits = json::object();
  for (const LimitSpec& spec : kLimitSpecs) {
    const auto* field = std::get_if<UintField<Limits>>(&spec.field);
    limits[std::string(spec.name)] =
        field != nullptr ? json(field->Shown(l)) : json(l.*std::get<double Limits::*>(spec.field));
  }
  return limits;
}

}  // namespace mcpx::jail
