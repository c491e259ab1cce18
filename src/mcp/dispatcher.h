// JSON-RPC 2.0 routing: validates each incoming line, routes requests and notifications by method
// to typed handlers, tells the two protocol eras apart (request_meta.h), enforces the "initialize
// first" rule for legacy requests and turns every failure (including exceptions) into a JSON-RPC
// error. It knows nothing about MCP's methods (server.h registers them) and writes only through
// a MessageSink, so tests drive it with a fake one.
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
#include "mcp/request_meta.h"

namespace mcpx::mcp {

// A handler that answers later (tools/call) returns Deferred and sends the response itself.
struct Deferred {};
using Outcome = std::variant<json, RpcError, Deferred>;

struct Request {
  json id;  // string or number, echoed exactly
  std::string method;
  RequestMeta meta;
};

// When a legacy request may come.
enum class Gate {
  kAnyTime,  // initialize, ping
  kAfterInitialize,
};

// Which era's requests a method serves.
enum class Era {
  kBoth,
  kHandshake,   // initialize: always legacy, whatever its _meta says
  kLegacyOnly,  // removed in 2026-07-28 (ping, logging/setLevel): -32601 for modern requests
  kModernOnly,  // server/discover: -32602 without the per-request _meta
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
  void AddRequest(std::string method, Gate gate, Era era, RpcOr<P> (*parse)(const json&),
                  std::function<Outcome(P, const Request&)> handle) {
    AddRawRequest(
        std::move(method), gate, era,
        [parse, handle = std::move(handle)](const json& params, const Request& request) -> Outcome {
          RpcOr<P> p = parse(params);
          if (!p.ok()) return p.error();
          return handle(std::move(p).value(), request);
        });
  }
  void AddRawRequest(std::string method, Gate gate, Era era, RequestFn fn);
  void AddNotification(std::string method, NotificationFn fn);

  // One incoming line (without its newline).
  void HandleLine(std::string_view line);
  // The transport dropped a line longer than `limit` bytes.
  void HandleOversized(size_t limit);

  void set_initialized() { initialized_ = true; }
  bool initialized() const { return initialized_; }

  // Sends through the sink; exceptions from the sink are logged, never propagated.
  void Send(const json& message);

  // serverInfo for the _meta of modern results.
  void set_server_info(json info) { server_info_ = std::move(info); }
  const json& server_info() const { return server_info_; }

 private:
  void HandleMessage(json message);
  void Reply(const Request& request, Outcome outcome);
  // The era gate: the request's meta, or the error to answer with.
  RpcOr<RequestMeta> Admit(const std::string& method, Gate gate, Era era, const json& params) const;

  struct Route {
    Gate gate;
    Era era;
    RequestFn fn;
  };

  MessageSink& sink_;
  std::map<std::string, Route, std::less<>> requests_;
  std::map<std::string, NotificationFn, std::less<>> notifications_;
  bool initialized_ = false;
  json server_info_ = json::object();
};

}  // namespace mcpx::mcp
