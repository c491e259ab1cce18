#include "tools/package_tools.h"

#include <string>
#include <utility>

#include "mcp/tool.h"
#include "tools/annotations.h"
#include "tools/args.h"

namespace mcpx::tools {
namespace {

using json = nlohmann::json;
using mcp::ErrorResult;
using mcp::StructuredResult;
using mcp::Tool;
using mcp::ToolCallPtr;

json InstallJson(const session::InstallOutcome& out) {
  json j = {{"status", session::InstallStatusName(out.status)}, {"requirement", out.requirement}};
  if (!out.ok()) {
    j["error"] = out.error;
    return j;
  }
  json installed = json::array();
  for (const auto& d : out.installed) {
    json item = {{"name", d.name}, {"version", d.version}};
    if (!d.replaced.empty()) item["replaced"] = d.replaced;
    installed.push_back(std::move(item));
  }
  j["installed"] = std::move(installed);
  if (!out.satisfied.empty()) j["satisfied"] = out.satisfied;
  j["reset_needed"] = out.reset_needed;
  j["duration_ms"] = out.duration_ms;
  return j;
}

class InstallPackageTool : public Tool {
 public:
  InstallPackageTool(std::shared_ptr<session::SessionManager> manager, std::string sources)
      : manager_(std::move(manager)), sources_(std::move(sources)) {}

  json Definition() const override {
    return {
        {"name", "install_package"},
        {"title", "Install a Python package"},
        {"description",
         "Installs one Python package (a PEP 508 requirement such as \"seaborn\", "
         "\"requests==2.31.0\" or \"pandas[excel]>=2\") from the package index the operator "
         "configured (" +
             sources_ +
             "), as binary wheels. It is importable at once in every session; a session that "
             "had already imported an older version keeps it until reset_session. numpy, pandas "
             "and matplotlib are preinstalled and reused. In code, `%pip install NAME` does the "
             "same."},
        {"inputSchema",
         {{"type", "object"},
          {"properties",
           {{"package",
             {{"type", "string"},
              {"description",
               "One PEP 508 requirement: a name, optional [extras], version specifiers and a ; "
               "marker. No options, URLs or paths."}}}}},
          {"required", {"package"}},
          {"additionalProperties", false}}},
        {"outputSchema",
         {{"type", "object"},
          {"properties",
           {{"status",
             {{"type", "string"},
              {"enum",
               {"installed", "already_satisfied", "refused", "error", "timeout", "cancelled"}}}},
            {"requirement", {{"type", "string"}}},
            {"installed",
             {{"type", "array"},
              {"items",
               {{"type", "object"},
                {"properties",
                 {{"name", {{"type", "string"}}},
                  {"version", {{"type", "string"}}},
                  {"replaced", {{"type", "string"}}}}},
                {"required", {"name", "version"}}}}}},
            {"satisfied", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"reset_needed", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"duration_ms", {{"type", "integer"}}},
            {"error", {{"type", "string"}}}}},
          {"required", {"status", "requirement"}}}},
        {"annotations",
         Annotations("Install a Python package", {.idempotent = true, .open_world = true})}};
  }

  bool supports_tasks() const override { return true; }

  void Call(ToolCallPtr call) override {
    auto args = Args::Parse(call->arguments(), {"package"});
    if (!args.ok()) return call->Finish(ErrorResult(args.status().message()));
    auto package = args->RequiredString("package");
    if (!package.ok()) return call->Finish(ErrorResult(package.status().message()));
    auto steps = std::make_shared<double>(0);
    const uint64_t id = manager_->Install(
        session::InstallRequest{*package, false, ""},
        session::InstallCallbacks{.done =
                                      [call](session::InstallOutcome out) {
                                        call->Finish(StructuredResult(InstallJson(out),
                                                                      out.Summary(), !out.ok()));
                                      },
                                  .progress =
                                      [call, steps](const std::string& line) {
                                        if (call->wants_progress())
                                          call->Progress(++*steps, std::nullopt, line);
                                      }});
    std::weak_ptr<session::SessionManager> manager = manager_;
    call->OnCancel([manager, id] {
      if (auto m = manager.lock()) m->CancelInstall(id);
    });
  }

 private:
  std::shared_ptr<session::SessionManager> manager_;
  std::string sources_;
};

}  // namespace

void AddPackageTools(mcp::ToolRegistry& registry, std::shared_ptr<session::SessionManager> manager,
                     std::string sources) {
  registry.Add(std::make_unique<InstallPackageTool>(std::move(manager), std::move(sources)));
}

}  // namespace mcpx::tools
