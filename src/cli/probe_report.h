// The `probe` command's report: rows parsed from the corpus runner's lines (hostile input: the
// runner lives in the sandbox), their verdicts, the summary and the exit code, as a table or JSON.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace mcpx::cli {

// One probe as sandbox/kernel/probe/mcpx_probe.py reports it. `observed` is empty in a --list
// run. Host-side checks (the canary, the host's listeners) are rows of the same shape.
struct ProbeRow {
  std::string name;      // "group.short-name"
  std::string what;      // one line: what the probe tries
  std::string expect;    // "contained" (an attack) or "allowed" (a control)
  std::string observed;  // contained | escaped | allowed | skipped | error
  std::string detail;
};

// What a row means for the run: pass, ESCAPED, skipped, error, or BROKEN (a control that did
// not get through, so the contained attacks may prove nothing).
std::string_view Verdict(const ProbeRow& row);

struct ProbeSummary {
  size_t tried = 0;  // rows with an outcome (skipped ones included)
  size_t contained = 0;
  size_t escaped = 0;
  size_t skipped = 0;
  size_t errors = 0;    // errors and broken controls
  size_t controls = 0;  // expect "allowed" rows that passed
};
ProbeSummary Summarize(const std::vector<ProbeRow>& rows);

// 0 when every attack was contained and every control passed, 1 when something escaped, 2 when
// the run could not judge (an error, a broken control, a runner that stopped early, no probes).
int ProbeExitCode(const ProbeSummary& summary, bool run_complete);

// Parses one result line. `{"end": N}` sets *end to N and returns no row (an empty name).
Result<ProbeRow> ParseProbeLine(std::string_view line, long* end);

struct ProbeRun {
  std::string policy;
  std::string server_user;  // "root" or "uid 1000"
  std::vector<ProbeRow> rows;
  bool complete = false;  // the runner's end line arrived and matched the rows
  std::string failure;    // why the run could not happen or finish ("" when it did)
};

std::string RenderProbeTable(const ProbeRun& run, bool listing);
nlohmann::json ProbeRunToJson(const ProbeRun& run, bool listing);

}  // namespace mcpx::cli
