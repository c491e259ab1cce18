// doctor's package section: the overlay (where, what it holds), where install_package gets
// packages, and whether the server reaches each host the installer's proxy may connect to.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/options.h"

namespace mcpx::cli {

struct PackageHostCheck {
  std::string host;    // host:port
  bool reachable = false;
  std::string detail;  // "connected in 12 ms", "no address (Name or service not known)", ...
};

struct PackagesReport {
  std::string overlay;               // <state>/packages
  bool ready = false;                // its pyvenv.cfg exists (made at the first serve)
  std::vector<std::string> holds;    // "name version" of what install_package put there
  std::string sources;               // DescribeSources
  std::string config_error;          // the flags do not validate
  nlohmann::json index;              // IndexConfigToJson
  std::vector<PackageHostCheck> hosts;  // empty when offline
};

PackagesReport ProbePackages(const Options& opts);
nlohmann::json PackagesReportToJson(const PackagesReport& r);
std::string PackagesReportText(const PackagesReport& r);

}  // namespace mcpx::cli
