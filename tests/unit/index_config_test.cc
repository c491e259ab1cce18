// Package sources from the operator's flags: URL and flag checks, whether pip goes online, the
// proxy's allow-list, pip's source arguments and how the sources are described.
#include "packages/index_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mcpx::packages {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Args = std::vector<std::string>;

TEST(ParseIndexUrlTest, HttpAndHttpsWithDefaultOrExplicitPorts) {
  auto u = ParseIndexUrl("https://pypi.org/simple");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "pypi.org");
  EXPECT_EQ(u->port, 443);
  EXPECT_FALSE(u->explicit_port);

  u = ParseIndexUrl("HTTP://Mirror.Example.COM:8080/simple/?x=1#f");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "mirror.example.com");
  EXPECT_EQ(u->port, 8080);
  EXPECT_TRUE(u->explicit_port);

  u = ParseIndexUrl("http://127.0.0.1");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->port, 80);

  u = ParseIndexUrl("http://[::1]:3141/root/pypi/+simple/");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 3141);

  u = ParseIndexUrl("https://[FE80::1]/simple");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->host, "fe80::1");
  EXPECT_EQ(u->port, 443);

  u = ParseIndexUrl("https://h:65535");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->port, 65535);
}

TEST(ParseIndexUrlTest, RefusesWhatIsNotAPlainHttpIndexSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "the index URL is empty"},
      {"pypi.org/simple", "is not a URL"},
      {"ftp://pypi.org/simple", "has the scheme \"ftp\": index URLs are http:// or https://"},
      {"file:///srv/simple", "has the scheme \"file\""},
      {"https://user:pw@pypi.org/simple", "credentials in index URLs are not supported"},
      {"https://token@pypi.org/simple", "credentials in index URLs are not supported"},
      {"https:///simple", "has no host"},
      {"https://:8080/simple", "has no host"},
      {"https://pypi.org:0/simple", "port \"0\" is not a number from 1 to 65535"},
      {"https://pypi.org:65536/simple", "port \"65536\""},
      {"https://pypi.org:/simple", "port \"\""},
      {"https://pypi.org:x/simple", "port \"x\""},
      {"https://pypi.org:+80/simple", "port \"+80\""},
      {"https://::1/simple", "IPv6 addresses go in brackets"},
      {"https://[::1/simple", "has '[' without ']'"},
      {"https://[nothex]/simple", "\"nothex\" in brackets is not an IPv6 address"},
      {"https://[::1]x/simple", "has \"x\" after ']'"},
      {"https://py pi.org/simple", "holds whitespace"},
      {"https://pypi.org/simple\n", "holds whitespace, a control character"},
      {"https://pypi.org/s\x01", "control character"},
      {"https://pyp\xc3\xa9.org/", "non-ASCII"},
      {"https://pypi!.org/", "\"pypi!.org\" is not a host name"},
      {"https://a..b/", "is not a host name"},
  };
  for (const auto& [url, why] : cases) {
    auto u = ParseIndexUrl(url);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.status().code(), Code::kInvalidArgument) << url;
    EXPECT_THAT(u.status().message(), HasSubstr(why)) << url;
  }
}

class ValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/index_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    file_ = dir_ + "/file";
    std::ofstream(file_) << "x";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string file_;
};

TEST_F(ValidateTest, DefaultAndFullConfigsPass) {
  EXPECT_TRUE(ValidateIndexConfig({}).ok());
  IndexConfig c;
  c.index_url = "http://127.0.0.1:8080/simple";
  c.extra_index_urls = {"https://pypi.org/simple"};
  c.find_links = {dir_};
  c.allow_hosts = {"files.example.com", "h:8443", "[::1]", "[::1]:9000", "10.0.0.1:80"};
  Status st = ValidateIndexConfig(c);
  EXPECT_TRUE(st.ok()) << st.message();
  IndexConfig offline;
  offline.no_index = true;
  offline.find_links = {dir_};
  st = ValidateIndexConfig(offline);
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST_F(ValidateTest, BadUrlsNameTheFlag) {
  IndexConfig c;
  c.index_url = "ftp://x/simple";
  Status st = ValidateIndexConfig(c);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--index-url: index URL \"ftp://x/simple\" has the scheme"));
  c = {};
  c.extra_index_urls = {"https://pypi.org/simple", "https://u:p@x/simple"};
  st = ValidateIndexConfig(c);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--extra-index-url: index URL \"https://u:p@x/simple\""));
  EXPECT_THAT(st.message(), HasSubstr("credentials in index URLs are not supported"));
}

TEST_F(ValidateTest, WheelhousesMustBeAbsoluteExistingDirectories) {
  IndexConfig c;
  c.find_links = {dir_ + "/missing"};
  Status st = ValidateIndexConfig(c);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "--find-links " + dir_ + "/missing: no such directory");
  c.find_links = {file_};
  st = ValidateIndexConfig(c);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--find-links " + file_ + " is not a directory"));
  c.find_links = {file_ + "/below"};
  EXPECT_EQ(ValidateIndexConfig(c).code(), Code::kNotFound);
  c.find_links = {"wheels"};
  st = ValidateIndexConfig(c);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--find-links \"wheels\" is not an absolute path"));
}

TEST_F(ValidateTest, AllowHostsAreHostOrHostPort) {
  for (const char* bad : {"", "h:", "h:0", "h:70000", "::1", "[::1", "[::1]:", "[x]", "a/b",
                          "https://h", "h h", "[::1]x"}) {
    IndexConfig c;
    c.allow_hosts = {bad};
    Status st = ValidateIndexConfig(c);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), HasSubstr(std::string("--allow-host \"") + bad + "\": ")) << bad;
    EXPECT_THAT(st.message(), HasSubstr("(HOST, HOST:PORT, [IPV6] or [IPV6]:PORT)")) << bad;
  }
}

TEST_F(ValidateTest, NoIndexConflictsWithIndexFlagsAndNeedsAWheelhouse) {
  IndexConfig c;
  c.no_index = true;
  c.find_links = {dir_};
  c.index_url = "https://pypi.org/simple";
  EXPECT_THAT(ValidateIndexConfig(c).message(),
              HasSubstr("--no-index conflicts with --index-url:"));
  c.extra_index_urls = {"https://x/simple"};
  EXPECT_THAT(ValidateIndexConfig(c).message(),
              HasSubstr("--no-index conflicts with --index-url and --extra-index-url:"));
  c.index_url.clear();
  EXPECT_THAT(ValidateIndexConfig(c).message(),
              HasSubstr("--no-index conflicts with --extra-index-url:"));
  IndexConfig alone;
  alone.no_index = true;
  Status st = ValidateIndexConfig(alone);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--no-index needs --find-links DIR"));
}

TEST(UsesNetworkTest, OfflineWithNoIndexOrAWheelhouseAlone) {
  EXPECT_TRUE(UsesNetwork({}));
  IndexConfig c;
  c.find_links = {"/srv/wheels"};
  EXPECT_FALSE(UsesNetwork(c));
  c.index_url = "https://pypi.org/simple";
  EXPECT_TRUE(UsesNetwork(c));
  c.index_url.clear();
  c.extra_index_urls = {"https://x/simple"};
  EXPECT_TRUE(UsesNetwork(c));
  IndexConfig off;
  off.no_index = true;
  off.find_links = {"/srv/wheels"};
  EXPECT_FALSE(UsesNetwork(off));
}

TEST(ProxyRulesTest, DefaultIsPyPiWithoutPrivateAddresses) {
  const ProxyRules r = ProxyRulesFor({});
  ASSERT_EQ(r.hosts.size(), 2u);
  EXPECT_EQ(r.hosts[0].host, "pypi.org");
  EXPECT_THAT(r.hosts[0].ports, ElementsAre(443));
  EXPECT_FALSE(r.hosts[0].private_ok);
  EXPECT_EQ(r.hosts[1].host, "files.pythonhosted.org");
  EXPECT_THAT(r.hosts[1].ports, ElementsAre(443));
  EXPECT_FALSE(r.hosts[1].private_ok);
}

TEST(ProxyRulesTest, OperatorIndexMayBePrivate) {
  IndexConfig c;
  c.index_url = "http://127.0.0.1:8080/simple";
  const ProxyRules r = ProxyRulesFor(c);
  ASSERT_EQ(r.hosts.size(), 1u);
  EXPECT_EQ(r.hosts[0].host, "127.0.0.1");
  EXPECT_THAT(r.hosts[0].ports, ElementsAre(8080));
  EXPECT_TRUE(r.hosts[0].private_ok);
}

TEST(ProxyRulesTest, ExtraIndexesAndAllowHostsMerge) {
  IndexConfig c;
  c.extra_index_urls = {"https://Mirror.example/simple", "http://mirror.example:8080/x",
                        "https://pypi.org/other"};
  c.allow_hosts = {"files.example", "mirror.example:443", "cdn.example:8443", "[::1]",
                   "[FE80::2]:9000"};
  const ProxyRules r = ProxyRulesFor(c);
  ASSERT_EQ(r.hosts.size(), 7u);
  // The default index's hosts, then the extras; pypi.org becomes private_ok because the operator
  // named it too.
  EXPECT_EQ(r.hosts[0].host, "pypi.org");
  EXPECT_THAT(r.hosts[0].ports, ElementsAre(443));
  EXPECT_TRUE(r.hosts[0].private_ok);
  EXPECT_EQ(r.hosts[1].host, "files.pythonhosted.org");
  EXPECT_FALSE(r.hosts[1].private_ok);
  EXPECT_EQ(r.hosts[2].host, "mirror.example");
  EXPECT_THAT(r.hosts[2].ports, ElementsAre(443, 8080));
  EXPECT_TRUE(r.hosts[2].private_ok);
  EXPECT_EQ(r.hosts[3].host, "files.example");
  EXPECT_THAT(r.hosts[3].ports, ElementsAre(443, 80));
  EXPECT_EQ(r.hosts[4].host, "cdn.example");
  EXPECT_THAT(r.hosts[4].ports, ElementsAre(8443));
  EXPECT_EQ(r.hosts[5].host, "::1");
  EXPECT_THAT(r.hosts[5].ports, ElementsAre(443, 80));
  EXPECT_TRUE(r.hosts[5].private_ok);
  EXPECT_EQ(r.hosts[6].host, "fe80::2");
  EXPECT_THAT(r.hosts[6].ports, ElementsAre(9000));
  IndexConfig v6;
  v6.index_url = "http://[fe80::2]:9000/simple";
  v6.allow_hosts = {"[FE80::2]:9000", "[fe80::2]:9001"};
  const ProxyRules r6 = ProxyRulesFor(v6);
  ASSERT_EQ(r6.hosts.size(), 1u);
  EXPECT_EQ(r6.hosts[0].host, "fe80::2");
  EXPECT_THAT(r6.hosts[0].ports, ElementsAre(9000, 9001));
}

TEST(ProxyRulesTest, EmptyOffline) {
  IndexConfig c;
  c.find_links = {"/srv/wheels"};
  c.allow_hosts = {"x.example"};
  EXPECT_THAT(ProxyRulesFor(c).hosts, IsEmpty());
  c.no_index = true;
  EXPECT_THAT(ProxyRulesFor(c).hosts, IsEmpty());
}

TEST(PipSourceArgsTest, DefaultIsPyPi) {
  EXPECT_EQ(PipSourceArgs({}, {}), (Args{"--index-url", "https://pypi.org/simple"}));
}

TEST(PipSourceArgsTest, NetworkTrustsPlainHttpHostsOnce) {
  IndexConfig c;
  c.index_url = "http://127.0.0.1:8080/simple";
  c.extra_index_urls = {"https://mirror.example/simple", "http://Plain.example/simple",
                        "http://127.0.0.1:8080/other", "http://[::1]:3141/simple"};
  c.find_links = {"/srv/a", "/srv/b"};
  EXPECT_EQ(PipSourceArgs(c, {"/wheels/0"}),
            (Args{"--index-url",       "http://127.0.0.1:8080/simple",
                  "--extra-index-url", "https://mirror.example/simple",
                  "--extra-index-url", "http://Plain.example/simple",
                  "--extra-index-url", "http://127.0.0.1:8080/other",
                  "--extra-index-url", "http://[::1]:3141/simple",
                  "--trusted-host",    "127.0.0.1:8080",
                  "--trusted-host",    "plain.example",
                  "--trusted-host",    "[::1]:3141",
                  "--find-links",      "/wheels/0",
                  "--find-links",      "/srv/b"}));
}

TEST(PipSourceArgsTest, OfflineUsesTheWheelhousesOnly) {
  IndexConfig c;
  c.find_links = {"/srv/a", "/srv/b"};
  c.allow_hosts = {"x.example"};
  EXPECT_EQ(PipSourceArgs(c, {"/w/0", "/w/1"}),
            (Args{"--no-index", "--find-links", "/w/0", "--find-links", "/w/1"}));
  c.no_index = true;
  EXPECT_EQ(PipSourceArgs(c, {}),
            (Args{"--no-index", "--find-links", "/srv/a", "--find-links", "/srv/b"}));
}

TEST(DescribeSourcesTest, OneLine) {
  EXPECT_EQ(DescribeSources({}), "index https://pypi.org/simple (default)");
  IndexConfig c;
  c.index_url = "http://127.0.0.1:8080/simple";
  c.extra_index_urls = {"https://x/simple"};
  c.find_links = {"/srv/wheels"};
  EXPECT_EQ(DescribeSources(c),
            "index http://127.0.0.1:8080/simple + 1 extra; wheelhouse /srv/wheels");
  IndexConfig off;
  off.find_links = {"/srv/wheels"};
  EXPECT_EQ(DescribeSources(off), "offline: wheelhouse /srv/wheels");
  off.find_links.push_back("/srv/more");
  off.no_index = true;
  EXPECT_EQ(DescribeSources(off), "offline: wheelhouses /srv/wheels, /srv/more");
}

TEST(IndexConfigToJsonTest, NetworkedDefault) {
  const nlohmann::json j = IndexConfigToJson({});
  EXPECT_EQ(j, nlohmann::json::parse(R"({
    "index_url": "https://pypi.org/simple", "extra_index_urls": [], "find_links": [],
    "allow_hosts": [], "no_index": false, "network": true,
    "proxy_hosts": ["pypi.org:443", "files.pythonhosted.org:443"]})"));
}

TEST(IndexConfigToJsonTest, ConfiguredAndOffline) {
  IndexConfig c;
  c.index_url = "http://[::1]:3141/simple";
  c.allow_hosts = {"cdn.example"};
  EXPECT_EQ(IndexConfigToJson(c), nlohmann::json::parse(R"({
    "index_url": "http://[::1]:3141/simple", "extra_index_urls": [], "find_links": [],
    "allow_hosts": ["cdn.example"], "no_index": false, "network": true,
    "proxy_hosts": ["[::1]:3141", "cdn.example:443", "cdn.example:80"]})"));
  IndexConfig off;
  off.no_index = true;
  off.find_links = {"/srv/wheels"};
  EXPECT_EQ(IndexConfigToJson(off), nlohmann::json::parse(R"({
    "index_url": null, "extra_index_urls": [], "find_links": ["/srv/wheels"],
    "allow_hosts": [], "no_index": true, "network": false, "proxy_hosts": []})"));
}

}  // namespace
}  // namespace mcpx::packages
