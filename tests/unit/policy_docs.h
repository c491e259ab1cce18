// The shipped policies and the smallest valid policy document, for the policy-loading tests of
// the jail (policy_loader_test) and of the whole file (server_policy_test).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mcpx::policy_docs {

inline const std::string kPolicies = std::string(MCPX_SOURCE_DIR) + "/policies";
inline const std::string kSeccompDir = kPolicies + "/seccomp";

inline nlohmann::json Minimal() {
  return nlohmann::json{{"name", "t"}, {"seccomp_profile", "default.json"}};
}

}  // namespace mcpx::policy_docs
