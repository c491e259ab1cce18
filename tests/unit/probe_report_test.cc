// The probe report: result lines from the sandbox are parsed as hostile input, verdicts and exit
// codes follow expected vs observed, and the table and JSON say what escaped.
#include "cli/probe_report.h"

#include <gtest/gtest.h>

#include <string>

namespace mcpx::cli {
namespace {

ProbeRow Row(std::string name, std::string expect, std::string observed) {
  return {std::move(name), "what", std::move(expect), std::move(observed), "detail"};
}

TEST(ProbeReportTest, ParsesARowAndTheEndLine) {
  long end = -1;
  auto row = ParseProbeLine(
      R"({"name":"fs.write-root","group":"fs","what":"create a file in /","expect":"contained",)"
      R"("observed":"contained","detail":"EROFS: root is read-only"})",
      &end);
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->name, "fs.write-root");
  EXPECT_EQ(row->observed, "contained");
  EXPECT_EQ(end, -1);
  auto last = ParseProbeLine(R"({"end": 61})", &end);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->name.empty());
  EXPECT_EQ(end, 61);
}

TEST(ProbeReportTest, RefusesMalformedOrForgedLines) {
  long end = -1;
  for (const char* line : {"not json", "[1,2]", R"({"end": -3})", R"({"end": "7"})",
                           R"({"name":"a.b","what":"w","expect":"maybe","observed":"contained"})",
                           R"({"name":"a.b","what":"w","expect":"contained","observed":"passed"})",
                           R"({"name":"a.b","what":"w","expect":"contained","observed":7})",
                           R"({"name":"","what":"w","expect":"contained","observed":"contained"})",
                           R"({"what":"w","expect":"contained","observed":"contained"})"}) {
    EXPECT_FALSE(ParseProbeLine(line, &end).ok()) << line;
  }
  EXPECT_EQ(end, -1);
}

TEST(ProbeReportTest, LongAndMultiLineFieldsAreCut) {
  long end = -1;
  const std::string detail(10000, 'x');
  auto row = ParseProbeLine(R"({"name":"a.b","what":"one\ntwo","expect":"contained",)"
                            R"("observed":"escaped","detail":")" +
                                detail + "\"}",
                            &end);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->what, "one two");
  EXPECT_LE(row->detail.size(), 2000u);
}

TEST(ProbeReportTest, VerdictsFollowExpectedAndObserved) {
  EXPECT_EQ(Verdict(Row("a", "contained", "contained")), "pass");
  EXPECT_EQ(Verdict(Row("a", "contained", "escaped")), "ESCAPED");
  EXPECT_EQ(Verdict(Row("a", "contained", "allowed")), "ESCAPED");
  EXPECT_EQ(Verdict(Row("a", "contained", "skipped")), "skipped");
  EXPECT_EQ(Verdict(Row("a", "contained", "error")), "error");
  EXPECT_EQ(Verdict(Row("c", "allowed", "allowed")), "pass");
  EXPECT_EQ(Verdict(Row("c", "allowed", "contained")), "BROKEN");
}

TEST(ProbeReportTest, ExitCodes) {
  const std::vector<ProbeRow> clean = {Row("a", "contained", "contained"),
                                       Row("b", "contained", "skipped"),
                                       Row("c", "allowed", "allowed")};
  EXPECT_EQ(ProbeExitCode(Summarize(clean), true), 0);
  EXPECT_EQ(ProbeExitCode(Summarize(clean), false), 2);  // the runner stopped early
  auto escaped = clean;
  escaped.push_back(Row("d", "contained", "escaped"));
  EXPECT_EQ(ProbeExitCode(Summarize(escaped), true), 1);
  EXPECT_EQ(ProbeExitCode(Summarize(escaped), false), 1);  // an escape outranks the rest
  auto broken = clean;
  broken.push_back(Row("e", "allowed", "contained"));
  EXPECT_EQ(ProbeExitCode(Summarize(broken), true), 2);
  auto errored = clean;
  errored.push_back(Row("f", "contained", "error"));
  EXPECT_EQ(ProbeExitCode(Summarize(errored), true), 2);
  EXPECT_EQ(ProbeExitCode(Summarize({}), true), 2);
  const ProbeSummary s = Summarize(escaped);
  EXPECT_EQ(s.tried, 4u);
  EXPECT_EQ(s.contained, 1u);
  EXPECT_EQ(s.skipped, 1u);
  EXPECT_EQ(s.controls, 1u);
  EXPECT_EQ(s.escaped, 1u);
}

TEST(ProbeReportTest, TableAndJsonNameWhatEscaped) {
  ProbeRun run;
  run.policy = "weak";
  run.server_user = "root";
  run.complete = true;
  run.rows = {Row("fs.write-root", "contained", "contained"),
              Row("seccomp.syslog", "contained", "escaped")};
  const std::string table = RenderProbeTable(run, false);
  EXPECT_NE(table.find("seccomp.syslog"), std::string::npos);
  EXPECT_NE(table.find("ESCAPED: seccomp.syslog\n"), std::string::npos);
  EXPECT_NE(table.find("2 tried, 1 contained, 1 escaped"), std::string::npos);
  const nlohmann::json doc = ProbeRunToJson(run, false);
  EXPECT_EQ(doc["exit_code"], 1);
  EXPECT_EQ(doc["summary"]["escaped"], 1);
  EXPECT_EQ(doc["probes"][1]["verdict"], "ESCAPED");
  const nlohmann::json listing = ProbeRunToJson(run, true);
  EXPECT_FALSE(listing.contains("summary"));
  EXPECT_FALSE(listing["probes"][0].contains("observed"));
}

}  // namespace
}  // namespace mcpx::cli
