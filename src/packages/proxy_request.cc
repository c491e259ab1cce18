#include "packages/proxy_request.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "util/text.h"

namespace mcpx::packages {
namespace {

constexpr size_t kShownCap = 100;

bool IsTokenChar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (std::isalnum(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

bool IsHostName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_';
  });
}

std::vector<std::string_view> SplitLines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) {
      lines.push_back(head);
      break;
    }
    lines.push_back(head.substr(0, eol));
    head.remove_prefix(eol + 2);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// Hop-by-hop headers and the proxy's own: they describe the client's connection to us, not the
// upstream request. Host is rewritten from the URL so the upstream sees the name that was checked.
bool DroppedHeader(std::string_view name) {
  for (std::string_view h :
       {"proxy-connection", "proxy-authorization", "connection", "keep-alive", "upgrade", "host"}) {
    if (IEquals(name, h)) return true;
  }
  return false;
}

HeadRefusal Bad(std::string message) { return {400, std::move(message)}; }

}  // namespace

std::optional<size_t> FindHeadEnd(std::string_view buf) {
  const size_t at = buf.find("\r\n\r\n");
  if (at == std::string_view::npos) return std::nullopt;
  return at + 4;
}

std::optional<Authority> ParseAuthority(std::string_view text,
                                        std::optional<uint16_t> default_port) {
  Authority a;
  std::string_view host;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    a.shown = Printable(text.substr(0, close + 1));
    rest = text.substr(close + 1);
    in6_addr v6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) return std::nullopt;
    std::array<char, INET6_ADDRSTRLEN> buf{};
    inet_ntop(AF_INET6, &v6, buf.data(), buf.size());
    a.host = buf.data();
    a.ip_literal = true;
  } else {
    const size_t colon = text.find(':');
    host = text.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
    if (!IsHostName(host)) return std::nullopt;
    a.shown = Printable(host);
    a.host = AsciiLower(host);
    in_addr v4{};
    a.ip_literal = inet_pton(AF_INET, a.host.c_str(), &v4) == 1;
  }
  if (rest.empty()) {
    if (!default_port) return std::nullopt;
    a.port = *default_port;
    return a;
  }
  if (rest.front() != ':') return std::nullopt;
  const auto port = ParsePort(rest.substr(1));
  if (!port) return std::nullopt;
  a.port = *port;
  return a;
}

std::variant<ProxyRequest, HeadRefusal> ParseRequestHead(std::string_view head) {
  if (head.find('\0') != std::string_view::npos) return Bad("NUL byte in the request head");
  const std::vector<std::string_view> lines = SplitLines(head);
  if (lines.empty()) return Bad("empty request");
  for (std::string_view line : lines) {
    if (line.find_first_of("\r\n") != std::string_view::npos) {
      return Bad("bare CR or LF in the request head");
    }
  }

  const std::string_view request_line = lines.front();
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Bad("malformed request line");
  }
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!IsToken(method) || target.empty()) return Bad("malformed request line");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Bad("unsupported HTTP version");

  std::vector<std::pair<std::string_view, std::string_view>> headers;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const size_t colon = line.find(':');
    // A line starting with whitespace is an obsolete folded continuation: refused, as RFC 9112
    // allows, rather than guessing how the upstream would join it.
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Bad("malformed header line");
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    headers.emplace_back(line.substr(0, colon), value);
  }

  ProxyRequest req;
  if (method == "CONNECT") {
    auto authority = ParseAuthority(target, std::nullopt);
    if (!authority) return Bad("CONNECT needs host:port");
    req.connect = true;
    req.target = std::move(*authority);
    return req;
  }
  if (method != "GET" && method != "HEAD") {
    return HeadRefusal{405, "this proxy forwards only CONNECT, GET and HEAD"};
  }
  if (!IStartsWith(target, "http://")) {
    if (target.front() == '/' || target == "*") {
      return HeadRefusal{405, "this proxy forwards only absolute-form http:// requests"};
    }
    return Bad("only http:// URLs are forwarded (https goes through CONNECT)");
  }
  std::string_view rest = target.substr(7);
  const size_t path_at = rest.find_first_of("/?#");
  const std::string_view authority_text = rest.substr(0, path_at);
  std::string_view path = path_at == std::string_view::npos ? "" : rest.substr(path_at);
  path = path.substr(0, path.find('#'));
  auto authority = ParseAuthority(authority_text, uint16_t{80});
  if (!authority) return Bad("malformed host in the URL");
  req.target = std::move(*authority);

  std::string out;
  out.append(method).append(" ");
  if (path.empty() || path.front() != '/') out.append("/");
  out.append(path).append(" HTTP/1.1\r\nHost: ").append(authority_text).append("\r\n");
  for (const auto& [name, value] : headers) {
    if (DroppedHeader(name)) continue;
    // One request per connection, no body: anything after the head would be a second request
    // sent past the checks (smuggling), so bodies are refused outright.
    if (IEquals(name, "transfer-encoding") || (IEquals(name, "content-length") && value != "0")) {
      return Bad("request bodies are not forwarded");
    }
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out.append("Connection: close\r\n\r\n");
  req.forward_head = std::move(out);
  return req;
}

std::string Printable(std::string_view text) {
  std::string out;
  for (char ch : text.substr(0, kShownCap)) {
    out.push_back(ch > ' ' && ch < 0x7f ? ch : '?');
  }
  if (text.size() > kShownCap) out.append("...");
  return out;
}

std::string ProxyResponse(int code, std::string_view reason, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " ";
  out.append(reason).append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  out.append(std::to_string(body.size())).append("\r\nConnection: close\r\n\r\n").append(body);
  return out;
}

std::string_view ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "Connection established";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

}  // namespace mcpx::packages
