#include "mcp/jsonrpc.h"

#include "util/json_shape.h"

namespace mcpx::mcp {

json MakeResult(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json MakeError(const json& id, const RpcError& error) {
  json err{{"code", error.code}, {"message", error.message}};
  if (!error.data.is_null()) err["data"] = error.data;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

json MakeNotification(std::string_view method, json params) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
}

std::string Serialize(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

size_t NestingDepth(std::string_view text) { return MeasureJson(text).depth; }

std::string TypeName(const json& value) {
  if (value.is_number()) return "number";
  return value.type_name();
}

}  // namespace mcpx::mcp
