// Readers for validated JSON documents (policies, seccomp profiles). Each names the JSON path of
// what it rejects, so a user can find the line: "limits.memory_mb: must be a positive integer".
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace mcpx::jail {

// "base.key" ("key" at the top level) and "base[i]": the paths that errors name.
std::string Field(const std::string& base, std::string_view key);
std::string Item(const std::string& base, size_t i);
// A short rendering of a bad value for error messages ("got -1").
std::string Got(const nlohmann::json& v);
// InvalidArgument "path: message" ("(top level)" for the empty path).
Status Error(const std::string& path, const std::string& message);

// Objects must be objects, and every key must be known: a typo must not silently fall back to a
// default ("limits.memroy_mb: unknown field (did you mean 'memory_mb'?)").
Status CheckObject(const nlohmann::json& v, const std::string& path,
                   std::span<const std::string_view> known);
Status CheckObject(const nlohmann::json& v, const std::string& path,
                   std::initializer_list<std::string_view> known);

// An integer in [min, max] (unit only names the range in the message); min > 0 also rejects 0.
Result<uint64_t> ReadUint(const nlohmann::json& v, const std::string& path, uint64_t min,
                          uint64_t max, std::string_view unit = "");
Result<std::string> ReadString(const nlohmann::json& v, const std::string& path,
                               bool allow_empty = false);
Result<bool> ReadBool(const nlohmann::json& v, const std::string& path);
Result<std::vector<std::string>> ReadStringList(const nlohmann::json& v, const std::string& path);

// An unsigned field of struct S as a policy file writes it: read in `unit` within [min, max]
// and stored times `scale` (bytes for the _mb and _kb keys). The jail's limits and the session's
// settings are tables of these, which parsing, the key check and `policy show` all walk.
template <class S>
struct UintField {
  std::variant<uint64_t S::*, uint32_t S::*> member;
  uint64_t min = 0;
  uint64_t max = 0;
  std::string_view unit = "";
  uint64_t scale = 1;

  Status Read(const nlohmann::json& v, const std::string& path, S& s) const {
    ASSIGN_OR_RETURN(const uint64_t n, ReadUint(v, path, min, max, unit));
    std::visit(
        [&](auto m) { s.*m = static_cast<std::remove_reference_t<decltype(s.*m)>>(n * scale); },
        member);
    return Status::Ok();
  }
  // The value in `unit`, as the file writes it.
  uint64_t Shown(const S& s) const {
    return std::visit([&](auto m) -> uint64_t { return s.*m / scale; }, member);
  }
};

// Reads and parses a JSON file; duplicate keys are an error (nlohmann would keep the last).
Result<nlohmann::json> ReadJsonFile(const std::string& path);

}  // namespace mcpx::jail
