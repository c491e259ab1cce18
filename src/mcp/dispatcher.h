// JSON-RPC 2.0 routing: validates each incoming line, routes requests and notifications by method
// to typed handlers, enforces the "initialize first" rule and turns every failure (including
// exceptions) into a JSON-RPC error. It knows nothing about MCP's methods (server.h registers
// them) and writes only through a MessageSink, so tests drive it with a fake one.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "mcp/jsonrpc.h"

namespace mcpx::mcp {

// A handler that answers later (tools/call) returns Deferred and sends the response itself.
struct Deferred {};
using Outcome = std::variant<json, RpcError, Deferred>;

struct Request {
  json id;  // string or number, echoed exactly
  std::string method;
};

enum class Gate {
  kAnyTime,  // initialize, ping
  kAfterInitialize,
};

// Reads `params` with errors that name the field ("params.uri must be a string, got number").
class ParamReader {
 public:
  explicit ParamReader(const json& params) : params_(params) {}

  RpcOr<std::string> RequiredString(std::string_view name) const;
  RpcOr<std::optional<std::string>> OptionalString(std::string_view name) const;
  // Absent or null reads as an empty object.
  RpcOr<json> OptionalObject(std::string_view name) const;

 private:
  const json* Find(std::string_view name) const;
  const json& params_;
};

class Dispatcher {
 public:
  static constexpr size_t kMaxNesting = 256;

  using RequestFn = std::function<Outcome(const json& params, const Request& request)>;
  using NotificationFn = std::function<void(const json& params)>;

  explicit Dispatcher(MessageSink& sink) : sink_(sink) {}

  // `parse` turns the params object into P or an -32602 error; `handle` then gets P.
  template <typename P>
  void AddRequest(std::string method, Gate gate, RpcOr<P> (*parse)(const json&),
                  std::function<Outcome(P, const Request&)> handle) {
    AddRawRequest(
        std::move(method), gate,
        [parse, handle = std::move(handle)](const json& params, const Request& request) -> Outcome {
          RpcOr<P> p = parse(params);
          if (!p.ok()) return p.error();
          return handle(std::move(p).value(), request);
        });
  }
  void AddRawRequest(std::string method, Gate gate, RequestFn fn);
  void AddNotification(std::string method, NotificationFn fn);

  // One incoming line (without its newline).
  void HandleLine(std::string_view line);
  // The transport dropped a line longer than `limit` bytes.
  void HandleOversized(size_t limit);

  void set_initialized() { initialized_ = true; }
  bool initialized() const { return initialized_; }

  // Sends through the sink; exceptions from the sink are logged, never propagated.
  void Send(const json& message);

 private:
  void HandleMessage(json message);
  void Reply(const json& id, Outcome outcome);

  struct Route {
    Gate gate;
    RequestFn fn;
  };

  MessageSink& sink_;
  std::map<std::string, Route, std::less<>> requests_;
  std::map<std::string, NotificationFn, std::less<>> notifications_;
  bool initialized_ = false;
};

}  // namespace mcpx::mcp
