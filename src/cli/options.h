// Command-line options shared by every subcommand.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "packages/index_config.h"
#include "util/status.h"

namespace mcpx::cli {

struct Options {
  std::string command = "serve";  // serve | exec | probe | doctor | policy | help | version
  std::string workspace = "./workspace";
  std::string policy = "default";  // NAME (policies/NAME.json) or a path
  std::string state_dir;           // package overlay etc.; default from XDG_STATE_HOME
  std::string log_level = "info";
  size_t warm_kernels = 1;              // serve --warm N: kernels kept ready ahead of use
  size_t tools_page_size = 0;           // serve --tools-page-size N; 0: one page
  packages::IndexConfig index;          // serve --index-url, --find-links, ...: install_package
  std::optional<std::string> code;      // exec -c CODE
  bool json = false;                    // doctor/probe/exec --audit --json
  bool audit = false;                   // exec --audit: report the syscalls the policy denies
  std::string only;                     // probe --only PATTERN: probes whose name matches
  bool list = false;                    // probe --list: name the probes, run none
  std::string format;                   // policy export --format oci
  std::vector<std::string> positional;  // exec FILE, policy show|export

  // Where policies/, rootfs/ and sandbox/kernel/ are: $MCPX_DATA_DIR, else the source tree the
  // binary was built from, else <dir of binary>/../share/mcp-executor.
  std::string data_dir;
  std::string policies_dir() const { return data_dir + "/policies"; }
  std::string rootfs_dir() const { return data_dir + "/rootfs"; }
  std::string kernel_dir() const { return data_dir + "/sandbox/kernel"; }
};

Result<Options> ParseOptions(int argc, char** argv);
std::string Usage();

}  // namespace mcpx::cli
