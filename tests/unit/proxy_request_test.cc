#include "packages/proxy_request.h"

#include <gtest/gtest.h>

#include <string>

namespace mcpx::packages {
namespace {

ProxyRequest MustParse(std::string_view head) {
  auto parsed = ParseRequestHead(head);
  if (auto* refusal = std::get_if<HeadRefusal>(&parsed)) {
    ADD_FAILURE() << head << " -> " << refusal->code << " " << refusal->message;
    return {};
  }
  return std::get<ProxyRequest>(parsed);
}

int RefusalCode(std::string_view head) {
  auto parsed = ParseRequestHead(head);
  auto* refusal = std::get_if<HeadRefusal>(&parsed);
  return refusal == nullptr ? 0 : refusal->code;
}

TEST(FindHeadEndTest, CountsTheBlankLine) {
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\n\r\nbody"), 18u);
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: x\r\n"), std::nullopt);
}

TEST(ParseAuthorityTest, NamesLiteralsAndPorts) {
  auto a = ParseAuthority("PyPI.org:443", std::nullopt);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "pypi.org");
  EXPECT_EQ(a->shown, "PyPI.org");
  EXPECT_EQ(a->port, 443);
  EXPECT_FALSE(a->ip_literal);

  a = ParseAuthority("[0:0::1]:8443", std::nullopt);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->shown, "[0:0::1]");
  EXPECT_TRUE(a->ip_literal);

  a = ParseAuthority("10.0.0.1", uint16_t{80});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, 80);
  EXPECT_TRUE(a->ip_literal);

  for (const char* bad :
       {"pypi.org", "pypi.org:", "pypi.org:0", "pypi.org:65536", "pypi.org:+1", "::1:443", "[::1",
        "[zz]:1", "[::1]x", "a b:1", "us@er:1", ":443", "[fe80::1%eth0]:443"}) {
    EXPECT_FALSE(ParseAuthority(bad, std::nullopt)) << bad;
  }
}

TEST(ParseRequestHeadTest, Connect) {
  const ProxyRequest r =
      MustParse("CONNECT files.pythonhosted.org:443 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.connect);
  EXPECT_EQ(r.target.host, "files.pythonhosted.org");
  EXPECT_EQ(r.target.port, 443);
  EXPECT_TRUE(r.forward_head.empty());
}

TEST(ParseRequestHeadTest, AbsoluteFormGetBecomesOriginForm) {
  const ProxyRequest r = MustParse(
      "GET http://mirror.local:8080/simple/x/ HTTP/1.0\r\nHost: other\r\n"
      "Proxy-Connection: keep-alive\r\nconnection: Keep-Alive\r\nKEEP-ALIVE: 5\r\n"
      "Proxy-Authorization: Basic eDp5\r\nUser-Agent:  pip/24 \r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(r.connect);
  EXPECT_EQ(r.target.host, "mirror.local");
  EXPECT_EQ(r.target.port, 8080);
  EXPECT_EQ(r.forward_head,
            "GET /simple/x/ HTTP/1.1\r\nHost: mirror.local:8080\r\nUser-Agent: pip/24\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(ParseRequestHeadTest, DefaultPortEmptyPathAndQuery) {
  ProxyRequest r = MustParse("HEAD HTTP://index.test HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.target.port, 80);
  EXPECT_EQ(r.forward_head, "HEAD / HTTP/1.1\r\nHost: index.test\r\nConnection: close\r\n\r\n");
  r = MustParse("GET http://[2001:db8::1]?q=1 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.target.host, "2001:db8::1");
  EXPECT_TRUE(r.forward_head.starts_with("GET /?q=1 HTTP/1.1\r\nHost: [2001:db8::1]\r\n"));
}

TEST(ParseRequestHeadTest, Refusals) {
  EXPECT_EQ(RefusalCode("POST http://index.test/ HTTP/1.1\r\n\r\n"), 405);
  EXPECT_EQ(RefusalCode("PUT http://index.test/ HTTP/1.1\r\n\r\n"), 405);
  EXPECT_EQ(RefusalCode("GET /simple/ HTTP/1.1\r\nHost: index.test\r\n\r\n"), 405);
  EXPECT_EQ(RefusalCode("GET https://index.test/ HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("GET http://user@index.test/ HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("GET http://index.test/ HTTP/2.0\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("GET  http://index.test/ HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("GET http://index.test/\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("CONNECT index.test HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("CONNECT index.test:443 HTTP/1.1\r\nBad header\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("CONNECT index.test:443 HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("CONNECT index.test:443 HTTP/1.1\r\nA: b\nC: d\r\n\r\n"), 400);
  constexpr char kNul[] = "GET http://a/ HTTP/1.1\r\nA: \0\r\n\r\n";
  EXPECT_EQ(RefusalCode(std::string_view(kNul, sizeof kNul - 1)), 400);
  EXPECT_EQ(RefusalCode("GET http://index.test/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), 400);
  EXPECT_EQ(RefusalCode("GET http://index.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(RefusalCode("\r\n\r\n"), 400);
}

TEST(PrintableTest, SanitizesAndCaps) {
  EXPECT_EQ(Printable("a\x1b[31mb c"), "a?[31mb?c");
  const std::string shown = Printable(std::string(300, 'x'));
  EXPECT_EQ(shown, std::string(100, 'x') + "...");
}

TEST(ProxyResponseTest, ClosesAndCountsTheBody) {
  EXPECT_EQ(ProxyResponse(403, ReasonPhrase(403), "no\n"),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
}

}  // namespace
}  // namespace mcpx::packages
