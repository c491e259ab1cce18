#include "tools/args.h"

#include <cmath>
#include <string>

namespace mcpx::tools {
namespace {

const nlohmann::json kEmpty = nlohmann::json::object();

std::string TypeOf(const nlohmann::json& v) {
  if (v.is_number()) return "number";
  return v.type_name();
}

Status WrongType(std::string_view name, std::string_view want, const nlohmann::json& got) {
  return InvalidArgument("argument '" + std::string(name) + "' must be " + std::string(want) +
                         ", got " + TypeOf(got));
}

}  // namespace

Result<Args> Args::Parse(const nlohmann::json& args,
                         std::initializer_list<std::string_view> allowed) {
  if (args.is_null()) return Args(&kEmpty);
  if (!args.is_object()) {
    return InvalidArgument("arguments must be an object, got " + TypeOf(args));
  }
  for (const auto& [key, value] : args.items()) {
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return InvalidArgument("unknown argument '" + key +
                             "' (accepted: " + (list.empty() ? std::string("none") : list) + ")");
    }
  }
  return Args(&args);
}

const nlohmann::json* Args::Find(std::string_view name) const {
  auto it = obj_->find(std::string(name));
  if (it == obj_->end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::string> Args::RequiredString(std::string_view name) const {
  const auto* v = Find(name);
  if (v == nullptr) return InvalidArgument("missing required argument '" + std::string(name) + "'");
  if (!v->is_string()) return WrongType(name, "a string", *v);
  return v->get<std::string>();
}

Result<std::optional<std::string>> Args::OptionalString(std::string_view name) const {
  const auto* v = Find(name);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return WrongType(name, "a string", *v);
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<bool>> Args::OptionalBool(std::string_view name) const {
  const auto* v = Find(name);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return WrongType(name, "a boolean", *v);
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<uint64_t>> Args::OptionalUint(std::string_view name) const {
  const auto* v = Find(name);
  if (v == nullptr) return std::optional<uint64_t>();
  if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
  if (v->is_number_integer()) {
    const int64_t i = v->get<int64_t>();
    if (i < 0) return InvalidArgument("argument '" + std::string(name) + "' must not be negative");
    return std::optional<uint64_t>(static_cast<uint64_t>(i));
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d < 0) return InvalidArgument("argument '" + std::string(name) + "' must not be negative");
    if (std::floor(d) != d || d > 9.0e15) {
      return InvalidArgument("argument '" + std::string(name) + "' must be a whole number");
    }
    return std::optional<uint64_t>(static_cast<uint64_t>(d));
  }
  return WrongType(name, "a non-negative integer", *v);
}

Result<std::optional<double>> Args::OptionalNumber(std::string_view name) const {
  const auto* v = Find(name);
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) return WrongType(name, "a number", *v);
  const double d = v->get<double>();
  if (!std::isfinite(d))
    return InvalidArgument("argument '" + std::string(name) + "' must be finite");
  return std::optional<double>(d);
}

}  // namespace mcpx::tools
