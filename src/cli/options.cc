#include "cli/options.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>

#ifndef MCPX_SOURCE_DIR
#define MCPX_SOURCE_DIR ""
#endif

namespace mcpx::cli {
namespace {

std::string DefaultStateDir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x == '/') {
    return std::string(x) + "/mcp-executor";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h == '/') {
    return std::string(h) + "/.local/state/mcp-executor";
  }
  return "/tmp/mcp-executor-" + std::to_string(getuid());
}

std::string DefaultDataDir() {
  if (const char* d = std::getenv("MCPX_DATA_DIR"); d != nullptr && *d != '\0') return d;
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string src = MCPX_SOURCE_DIR;
  if (!src.empty() && fs::exists(src + "/policies/default.json", ec)) return src;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path share = exe.parent_path().parent_path() / "share" / "mcp-executor";
    if (fs::exists(share / "policies", ec)) return share.string();
  }
  return src;
}

// A folder flag's value made absolute (the installer's jail mounts it by its host path).
std::string Absolute(const std::string& dir) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(dir, ec);
  if (ec) return dir;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();  // "wheels/" names "wheels"
  return out;
}

bool IsCommand(std::string_view s) {
  return s == "serve" || s == "exec" || s == "probe" || s == "doctor" || s == "policy" ||
         s == "help" || s == "version";
}

// A flag's count: decimal digits only, no more of them than `max` has, within [min, max].
Result<size_t> Count(std::string_view flag, const std::string& v, size_t min, size_t max,
                     std::string_view what) {
  const bool digits = !v.empty() && v.size() <= std::to_string(max).size() &&
                      v.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoul(v) < min || std::stoul(v) > max) {
    return InvalidArgument(std::string(flag) + " needs a number of " + std::string(what) +
                           " from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<size_t>(std::stoul(v));
}

}  // namespace

std::string Usage() {
  return "usage: mcp-executor [COMMAND] [OPTIONS]\n"
         "\n"
         "commands:\n"
         "  serve [--workspace DIR] [--policy NAME|FILE] [--state-dir DIR] [--log-level L]\n"
         "        [--warm N] [--tools-page-size N]\n"
         "        [--index-url URL] [--extra-index-url URL]... [--allow-host HOST[:PORT]]...\n"
         "        [--find-links DIR]... [--no-index]\n"
         "                     MCP over stdio (the default command); N kernels kept ready (1);\n"
         "                     tools/list pages of N tools (default: all in one page);\n"
         "                     where install_package gets packages (default: PyPI; --find-links\n"
         "                     alone: that wheelhouse only, offline)\n"
         "  exec [same options] [--audit [--json]] (-c CODE | FILE)\n"
         "                     one sandboxed Python run; --audit reports each syscall the\n"
         "                     policy denied (name, count, arguments, Python line)\n"
         "  probe [--policy P] [--json] [--only PATTERN] [--list]\n"
         "                     the escape-probe corpus inside the policy's sandbox: expected,\n"
         "                     observed, verdict; exit 0 contained, 1 escaped, 2 could not run\n"
         "  doctor [--json]                        which isolation layers this machine supports\n"
         "  policy show|export [--policy P] [--format oci]\n"
         "                                         print the policy / export its seccomp profile\n"
         "  version, help\n"
         "\n"
         "defaults: --workspace ./workspace, --policy default,\n"
         "          --state-dir $XDG_STATE_HOME/mcp-executor (or ~/.local/state/mcp-executor),\n"
         "          --log-level info (logs go to stderr only)\n";
}

Result<Options> ParseOptions(int argc, char** argv) {
  Options o;
  o.state_dir = DefaultStateDir();
  o.data_dir = DefaultDataDir();
  int i = 1;
  if (i < argc && IsCommand(argv[i])) o.command = argv[i++];
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    // --flag=value form too.
    std::optional<std::string> inline_value;
    if (a.substr(0, 2) == "--" && a.find('=') != std::string_view::npos) {
      inline_value = std::string(a.substr(a.find('=') + 1));
      a = a.substr(0, a.find('='));
    }
    bool took_value = false;
    auto value = [&](std::string_view flag) -> Result<std::string> {
      took_value = true;
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) return InvalidArgument(std::string(flag) + " needs a value");
      return std::string(argv[++i]);
    };
    // An empty source would pass unnoticed: "--index-url=" means PyPI, the default.
    auto source = [&](std::string_view flag) -> Result<std::string> {
      ASSIGN_OR_RETURN(std::string v, value(flag));
      if (v.empty()) return InvalidArgument(std::string(flag) + " needs a value");
      return v;
    };
    if (a == "--index-url") {
      ASSIGN_OR_RETURN(o.index.index_url, source(a));
    } else if (a == "--extra-index-url") {
      ASSIGN_OR_RETURN(o.index.extra_index_urls.emplace_back(), source(a));
    } else if (a == "--find-links") {
      ASSIGN_OR_RETURN(std::string dir, source(a));
      o.index.find_links.push_back(Absolute(dir));
    } else if (a == "--allow-host") {
      ASSIGN_OR_RETURN(o.index.allow_hosts.emplace_back(), source(a));
    } else if (a == "--no-index") {
      o.index.no_index = true;
    } else if (a == "--workspace") {
      ASSIGN_OR_RETURN(o.workspace, value(a));
    } else if (a == "--policy") {
      ASSIGN_OR_RETURN(o.policy, value(a));
    } else if (a == "--state-dir") {
      ASSIGN_OR_RETURN(o.state_dir, value(a));
    } else if (a == "--log-level") {
      ASSIGN_OR_RETURN(o.log_level, value(a));
    } else if (a == "--format") {
      ASSIGN_OR_RETURN(o.format, value(a));
    } else if (a == "--warm") {
      ASSIGN_OR_RETURN(std::string v, value(a));
      ASSIGN_OR_RETURN(o.warm_kernels, Count(a, v, 0, 99, "kernels"));
    } else if (a == "--tools-page-size") {
      ASSIGN_OR_RETURN(std::string v, value(a));
      ASSIGN_OR_RETURN(o.tools_page_size, Count(a, v, 1, 9999, "tools"));
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--audit") {
      o.audit = true;
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--only") {
      ASSIGN_OR_RETURN(o.only, source(a));
    } else if (a == "-c") {
      ASSIGN_OR_RETURN(o.code, value(a));
    } else if (a == "-h" || a == "--help") {
      o.command = "help";
    } else if (a == "--version") {
      o.command = "version";
    } else if (a.size() > 1 && a[0] == '-') {
      return InvalidArgument("unknown option " + std::string(a));
    } else {
      o.positional.emplace_back(a);
    }
    if (inline_value && !took_value) {
      return InvalidArgument("option " + std::string(a) + " takes no value");
    }
  }
  return o;
}

}  // namespace mcpx::cli
