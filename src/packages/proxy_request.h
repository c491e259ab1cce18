// The pure half of the package proxy: parsing a client's request head and building the proxy's
// own answers. No sockets, no loop; proxy.cc decides what to do with the result.
//
// Accepted heads: `CONNECT host:port HTTP/1.x` (also `[v6]:port`) and absolute-form
// `GET|HEAD http://host[:port]/path HTTP/1.x`, which is rewritten to origin form for the upstream
// with the proxy's and connection's own headers dropped and `Connection: close` added (one request
// per client connection). Anything else is a refusal with an HTTP status (400, 405).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace mcpx::packages {

struct Authority {
  std::string host;   // lower-case name, or IP literal (IPv6 without brackets)
  std::string shown;  // the host as the client wrote it (brackets kept), printable and capped
  uint16_t port = 0;
  bool ip_literal = false;
};

struct ProxyRequest {
  bool connect = false;  // CONNECT (a tunnel); otherwise a plain-HTTP GET or HEAD
  Authority target;
  std::string forward_head;  // GET/HEAD only: the head to send upstream, origin form
};

struct HeadRefusal {
  int code = 400;
  std::string message;  // one line for the response body, without the newline
};

// Length of the head in `buf` including its terminating blank line, or nullopt if not complete.
std::optional<size_t> FindHeadEnd(std::string_view buf);

// `text` is `host:port`, `[v6]:port`, or without the port when `default_port` is given.
std::optional<Authority> ParseAuthority(std::string_view text,
                                        std::optional<uint16_t> default_port);

// `head` is a complete head as FindHeadEnd measured it.
std::variant<ProxyRequest, HeadRefusal> ParseRequestHead(std::string_view head);

// Untrusted text made fit for a log line or a response body: printable ASCII, at most ~100 chars.
std::string Printable(std::string_view text);

// A complete `Connection: close` response with a text/plain body.
std::string ProxyResponse(int code, std::string_view reason, std::string_view body);
// The standard reason phrase for the codes the proxy answers with.
std::string_view ReasonPhrase(int code);

}  // namespace mcpx::packages
