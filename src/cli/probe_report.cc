#include "cli/probe_report.h"

#include <algorithm>

#include "util/text.h"
#include "util/utf8.h"

namespace mcpx::cli {
namespace {

constexpr size_t kMaxField = 2000;   // a row's detail or description, in bytes
constexpr size_t kTableDetail = 90;  // detail shown per table row

bool IsOneOf(std::string_view v, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

// A field from the sandbox: a string (the JSON parser has checked its UTF-8), at most kMaxField
// bytes, one line.
Result<std::string> Field(const nlohmann::json& doc, const char* key, bool required) {
  const auto it = doc.find(key);
  if (it == doc.end()) {
    if (required) return InvalidArgument(std::string("result line has no \"") + key + "\"");
    return std::string();
  }
  if (!it->is_string()) return InvalidArgument(std::string("\"") + key + "\" is not a string");
  std::string v = it->get<std::string>();
  v.resize(Utf8SafePrefix(v, kMaxField));
  std::replace(v.begin(), v.end(), '\n', ' ');
  std::replace(v.begin(), v.end(), '\r', ' ');
  return v;
}

std::string Clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, Utf8SafePrefix(s, n - 3)) + "...";
}

}  // namespace

std::string_view Verdict(const ProbeRow& row) {
  if (row.observed == "skipped") return "skipped";
  if (row.observed == "error") return "error";
  if (row.expect == "allowed") return row.observed == "allowed" ? "pass" : "BROKEN";
  if (row.observed == "contained") return "pass";
  return "ESCAPED";  // escaped, or an attack that reports it was allowed
}

ProbeSummary Summarize(const std::vector<ProbeRow>& rows) {
  ProbeSummary s;
  for (const ProbeRow& r : rows) {
    if (r.observed.empty()) continue;
    ++s.tried;
    const std::string_view v = Verdict(r);
    if (v == "skipped") {
      ++s.skipped;
    } else if (v == "ESCAPED") {
      ++s.escaped;
    } else if (v == "error" || v == "BROKEN") {
      ++s.errors;
    } else if (r.expect == "allowed") {
      ++s.controls;
    } else {
      ++s.contained;
    }
  }
  return s;
}

int ProbeExitCode(const ProbeSummary& s, bool run_complete) {
  if (s.escaped > 0) return 1;
  if (!run_complete || s.errors > 0 || s.tried == 0) return 2;
  return 0;
}

Result<ProbeRow> ParseProbeLine(std::string_view line, long* end) {
  nlohmann::json doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return InvalidArgument("result line is not a JSON object");
  ProbeRow row;
  if (const auto it = doc.find("end"); it != doc.end()) {
    if (!it->is_number_integer() || it->get<long>() < 0) {
      return InvalidArgument("\"end\" is not a count");
    }
    *end = it->get<long>();
    return row;
  }
  ASSIGN_OR_RETURN(row.name, Field(doc, "name", true));
  ASSIGN_OR_RETURN(row.what, Field(doc, "what", true));
  ASSIGN_OR_RETURN(row.expect, Field(doc, "expect", true));
  ASSIGN_OR_RETURN(row.observed, Field(doc, "observed", false));
  ASSIGN_OR_RETURN(row.detail, Field(doc, "detail", false));
  if (row.name.empty() || row.name.size() > 80) return InvalidArgument("bad probe name");
  if (!IsOneOf(row.expect, {"contained", "allowed"})) {
    return InvalidArgument("probe " + row.name + ": unknown expect '" + row.expect + "'");
  }
  if (!IsOneOf(row.observed, {"", "contained", "escaped", "allowed", "skipped", "error"})) {
    return InvalidArgument("probe " + row.name + ": unknown outcome '" + row.observed + "'");
  }
  return row;
}

std::string RenderProbeTable(const ProbeRun& run, bool listing) {
  size_t width = 5;
  for (const ProbeRow& r : run.rows) width = std::max(width, r.name.size());
  std::string out;
  if (listing) {
    out += PadRight("probe", width) + "  expected   what\n";
    for (const ProbeRow& r : run.rows)
      out += PadRight(r.name, width) + "  " + PadRight(r.expect, 9) + "  " + r.what + "\n";
    out += std::to_string(run.rows.size()) + " probes\n";
    return out;
  }
  out += PadRight("probe", width) + "  expected   observed   verdict  detail\n";
  for (const ProbeRow& r : run.rows) {
    out += PadRight(r.name, width) + "  " + PadRight(r.expect, 9) + "  " + PadRight(r.observed, 9) +
           "  " + PadRight(std::string(Verdict(r)), 7) + "  " + Clip(r.detail, kTableDetail) + "\n";
  }
  const ProbeSummary s = Summarize(run.rows);
  out += "policy " + run.policy + ", " + run.server_user + " server: " + std::to_string(s.tried) +
         " tried, " + std::to_string(s.contained) + " contained, " + std::to_string(s.escaped) +
         " escaped, " + std::to_string(s.skipped) + " skipped, " + std::to_string(s.errors) +
         " errors, " + std::to_string(s.controls) + " controls passed\n";
  if (!run.failure.empty()) out += "run incomplete: " + run.failure + "\n";
  std::vector<std::string> escaped;
  for (const ProbeRow& r : run.rows) {
    if (Verdict(r) == "ESCAPED") escaped.push_back(r.name);
  }
  if (!escaped.empty()) out += "ESCAPED: " + Join(escaped, ", ") + "\n";
  return out;
}

nlohmann::json ProbeRunToJson(const ProbeRun& run, bool listing) {
  nlohmann::json probes = nlohmann::json::array();
  for (const ProbeRow& r : run.rows) {
    nlohmann::json p = {{"name", r.name}, {"what", r.what}, {"expect", r.expect}};
    if (!listing) {
      p["observed"] = r.observed;
      p["verdict"] = std::string(Verdict(r));
      p["detail"] = r.detail;
    }
    probes.push_back(std::move(p));
  }
  nlohmann::json out = {{"policy", run.policy}, {"server_user", run.server_user}};
  if (!listing) {
    const ProbeSummary s = Summarize(run.rows);
    out["summary"] = {{"tried", s.tried},     {"contained", s.contained}, {"escaped", s.escaped},
                      {"skipped", s.skipped}, {"errors", s.errors},       {"controls", s.controls}};
    out["complete"] = run.complete;
    if (!run.failure.empty()) out["failure"] = run.failure;
    out["exit_code"] = ProbeExitCode(s, run.complete);
  } else if (!run.failure.empty()) {
    out["failure"] = run.failure;
  }
  out["probes"] = std::move(probes);
  return out;
}

}  // namespace mcpx::cli
