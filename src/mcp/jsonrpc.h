// JSON-RPC 2.0 vocabulary shared by the transport, the dispatcher and the tool calls.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

namespace mcpx::mcp {

using json = nlohmann::json;

namespace rpc {
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// Server-defined range. -32002 is what MCP servers use for "resource not found", so "not
// initialized" gets its own code to keep the two apart.
inline constexpr int kNotInitialized = -32000;
inline constexpr int kResourceNotFound = -32002;
}  // namespace rpc

struct RpcError {
  int code = rpc::kInternalError;
  std::string message;
  json data = nullptr;  // omitted from the wire when null
};

// A value or the JSON-RPC error to answer with.
template <typename T>
class RpcOr {
 public:
  RpcOr(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  RpcOr(RpcError error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const RpcError& error() const { return std::get<RpcError>(v_); }

 private:
  std::variant<T, RpcError> v_;
};

inline RpcError InvalidParams(std::string message) {
  return {rpc::kInvalidParams, std::move(message)};
}

// Where outgoing messages go: the stdio transport in production, a recorder in tests.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  virtual void Send(const json& message) = 0;
};

json MakeResult(const json& id, json result);
json MakeError(const json& id, const RpcError& error);
json MakeNotification(std::string_view method, json params);

// Compact, one line, never throws: invalid UTF-8 in strings (from tool output) becomes U+FFFD.
std::string Serialize(const json& message);

// The deepest [ / { nesting in `text`, not counting brackets inside strings. Parsing is
// iterative but destroying or dumping a value recurses, so depth is checked before parsing.
size_t NestingDepth(std::string_view text);

// "string", "number", "object", ... for error messages.
std::string TypeName(const json& value);

}  // namespace mcpx::mcp
