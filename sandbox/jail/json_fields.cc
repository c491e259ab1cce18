#include "jail/json_fields.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

namespace mcpx::jail {
namespace {

using nlohmann::json;

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Tracks the keys of each open object while parsing; nlohmann keeps the last duplicate silently.
class DuplicateKeyCheck {
 public:
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_.empty()) keys_.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys_.empty() && !keys_.back().insert(parsed.get<std::string>()).second &&
            duplicate_.empty()) {
          duplicate_ = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  }
  std::vector<std::set<std::string>> keys_;
  std::string duplicate_;
};

Result<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(Code::kNotFound, "cannot read " + std::string(what) + " " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ErrnoStatus(Code::kInternal, "error reading " + path);
  return ss.str();
}

}  // namespace

std::string Field(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string Item(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

std::string Got(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return "got " + s;
}

Status Error(const std::string& path, const std::string& message) {
  return InvalidArgument((path.empty() ? std::string("(top level)") : path) + ": " + message);
}

Status CheckObject(const json& v, const std::string& path,
                   std::span<const std::string_view> known) {
  if (!v.is_object()) return Error(path, "must be an object, " + Got(v));
  for (const auto& [key, value] : v.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = "unknown field";
    for (std::string_view k : known) {
      if (EditDistance(key, k) <= 2) {
        message += " (did you mean '" + std::string(k) + "'?)";
        break;
      }
    }
    return Error(Field(path, key), message);
  }
  return Status::Ok();
}

Status CheckObject(const json& v, const std::string& path,
                   std::initializer_list<std::string_view> known) {
  return CheckObject(v, path, std::span<const std::string_view>(known.begin(), known.size()));
}

Result<uint64_t> ReadUint(const json& v, const std::string& path, uint64_t min, uint64_t max,
                          std::string_view unit) {
  const bool integer = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!integer || (min > 0 && v.get<uint64_t>() == 0)) {
    return Error(path,
                 std::string(min > 0 ? "must be a positive integer" : "must be an integer >= 0") +
                     ", " + Got(v));
  }
  const auto n = v.get<uint64_t>();
  if (n < min || n > max) {
    std::string u = unit.empty() ? "" : " " + std::string(unit);
    return Error(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           u + ", " + Got(v));
  }
  return n;
}

Result<std::string> ReadString(const json& v, const std::string& path, bool allow_empty) {
  if (!v.is_string()) return Error(path, "must be a string, " + Got(v));
  auto s = v.get<std::string>();
  if (!allow_empty && s.empty()) return Error(path, "must not be empty");
  return s;
}

Result<bool> ReadBool(const json& v, const std::string& path) {
  if (!v.is_boolean()) return Error(path, "must be true or false, " + Got(v));
  return v.get<bool>();
}

Result<std::vector<std::string>> ReadStringList(const json& v, const std::string& path) {
  if (!v.is_array()) return Error(path, "must be an array of strings, " + Got(v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    ASSIGN_OR_RETURN(std::string s, ReadString(v[i], Item(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(path, "file"));
  auto check = std::make_shared<DuplicateKeyCheck>();
  json doc;
  try {
    doc = json::parse(text,
                      [check](int d, json::parse_event_t e, json& p) { return (*check)(d, e, p); });
  } catch (const json::parse_error& e) {
    return InvalidArgument(path + ": invalid JSON: " + e.what());
  }
  if (!check->duplicate_.empty()) {
    return InvalidArgument(path + ": duplicate key \"" + check->duplicate_ + "\"");
  }
  return doc;
}

}  // namespace mcpx::jail
