// The install_package argument check: exactly one PEP 508 requirement by name, refused before pip
// runs when it is anything else.
//
// Where packages come from is the operator's choice (index_config.h), so the model may not name a
// source: options ("-r", "--index-url"), URLs and direct references ("name @ https://..."), paths
// and archives, and VCS links are refused, each with its own message. pip is started without a
// shell, but shell metacharacters are refused anyway: a requirement never needs them, and a
// message that names the character tells the model what went wrong.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace mcpx::packages {

// Ends every refusal, so the model learns what is accepted whatever it got wrong.
inline constexpr std::string_view kRequirementHint =
    "install_package takes one PEP 508 requirement: a package name with optional [extras], "
    "version specifiers and a ; marker, e.g. \"requests==2.31.0\" or \"pandas[excel]>=2.0\"";

inline constexpr size_t kMaxRequirementLength = 200;

struct Requirement {
  std::string text;        // as given, trimmed
  std::string name;        // the project name as written
  std::string normalized;  // PEP 503: lower-case, runs of [-_.] -> '-'
};

// Code::kInvalidArgument on refusal; the message says why and ends with kRequirementHint.
Result<Requirement> ParseRequirement(std::string_view text);

// PEP 503 name normalization ("Zope.Interface" -> "zope-interface").
std::string NormalizeProjectName(std::string_view name);

}  // namespace mcpx::packages
