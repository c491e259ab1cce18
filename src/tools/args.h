// Reads tool arguments with errors that name the argument, e.g.
// "argument 'path' must be a string, got number". Unknown arguments are an error too, so typos
// ("timeout" for "timeout_seconds") do not pass silently.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace mcpx::tools {

class Args {
 public:
  // args must be an object (or null, read as {}); allowed lists every accepted name.
  // Args keeps a pointer to `args`: it must outlive the Args (a temporary is refused).
  static Result<Args> Parse(const nlohmann::json& args,
                            std::initializer_list<std::string_view> allowed);
  static Result<Args> Parse(const nlohmann::json&& args,
                            std::initializer_list<std::string_view> allowed) = delete;

  Result<std::string> RequiredString(std::string_view name) const;
  Result<std::optional<std::string>> OptionalString(std::string_view name) const;
  Result<std::optional<bool>> OptionalBool(std::string_view name) const;
  // Non-negative integer (JSON integer, or a float with no fraction).
  Result<std::optional<uint64_t>> OptionalUint(std::string_view name) const;
  Result<std::optional<double>> OptionalNumber(std::string_view name) const;

 private:
  explicit Args(const nlohmann::json* obj) : obj_(obj) {}
  const nlohmann::json* Find(std::string_view name) const;
  const nlohmann::json* obj_;
};

}  // namespace mcpx::tools
