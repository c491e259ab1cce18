// The install_package argument check: one PEP 508 requirement by name is accepted; anything that
// names a source, holds several requirements or shell syntax is refused with a message that says
// why and ends with the hint.
#include "packages/requirement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace mcpx::packages {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

struct Accepted {
  std::string text;
  std::string name;
  std::string normalized;
};

void PrintTo(const Accepted& a, std::ostream* os) { *os << a.text; }

class AcceptedTest : public ::testing::TestWithParam<Accepted> {};

TEST_P(AcceptedTest, ParsesNameAndKeepsTrimmedText) {
  const Accepted& a = GetParam();
  auto r = ParseRequirement(a.text);
  ASSERT_TRUE(r.ok()) << a.text << ": " << r.status().message();
  EXPECT_EQ(r->name, a.name);
  EXPECT_EQ(r->normalized, a.normalized);
  std::string trimmed = a.text;
  trimmed.erase(0, trimmed.find_first_not_of(" \t"));
  trimmed.erase(trimmed.find_last_not_of(" \t") + 1);
  EXPECT_EQ(r->text, trimmed);
}

INSTANTIATE_TEST_SUITE_P(
    Requirements, AcceptedTest,
    ::testing::Values(Accepted{"numpy", "numpy", "numpy"}, Accepted{"Numpy", "Numpy", "numpy"},
                      Accepted{"requests==2.31.0", "requests", "requests"},
                      Accepted{"pandas[excel]>=2.0", "pandas", "pandas"},
                      Accepted{"a.b-c_d", "a.b-c_d", "a-b-c-d"}, Accepted{"x>=1,<2", "x", "x"},
                      Accepted{"x (>=1.0)", "x", "x"}, Accepted{"x==1.*", "x", "x"},
                      Accepted{"x!=1.2.*", "x", "x"},
                      Accepted{"x; python_version>='3.8'", "x", "x"},
                      Accepted{"x[a,b]~=1.4 ; sys_platform == \"linux\"", "x", "x"},
                      Accepted{"  seaborn  ", "seaborn", "seaborn"},
                      Accepted{"\tseaborn\t", "seaborn", "seaborn"}, Accepted{"x[]", "x", "x"},
                      Accepted{"x[ a , b ] >= 1 , < 2", "x", "x"},
                      Accepted{"torch==2.1.0+cpu", "torch", "torch"},
                      Accepted{"x===1.0-weird", "x", "x"}, Accepted{"x>=1!2.0", "x", "x"},
                      Accepted{"x>=v1.0", "x", "x"}, Accepted{"x==1.0rc1.post2.dev3", "x", "x"},
                      Accepted{"x ( >= 1.0 , < 2 ) ; python_version < '3.12'", "x", "x"},
                      Accepted{"x; (python_version >= '3.8' and sys_platform == 'linux') or "
                               "platform_machine in 'x86_64 aarch64'",
                               "x", "x"},
                      Accepted{"x; extra == 'test' and os_name not in 'nt'", "x", "x"},
                      Accepted{"x;python_version>\"3\"", "x", "x"},
                      Accepted{"Zope.Interface", "Zope.Interface", "zope-interface"},
                      Accepted{"7z", "7z", "7z"}));

struct Refused {
  std::string text;
  std::string reason;  // a part of the message
};

void PrintTo(const Refused& r, std::ostream* os) { *os << r.text; }

class RefusedTest : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedTest, SaysWhyAndEndsWithTheHint) {
  const Refused& c = GetParam();
  auto r = ParseRequirement(c.text);
  ASSERT_FALSE(r.ok()) << c.text << " was accepted as " << r->name;
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(c.reason)) << c.text;
  EXPECT_THAT(r.status().message(), EndsWith(std::string(kRequirementHint))) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Empty, RefusedTest,
    ::testing::Values(Refused{"", "the requirement is empty"},
                      Refused{"   ", "the requirement is empty"},
                      Refused{std::string(201, 'a'), "201 characters long, more than 200"},
                      Refused{std::string(5000, 'a'), "5000 characters long, more than 200"}));

INSTANTIATE_TEST_SUITE_P(
    Options, RefusedTest,
    ::testing::Values(
        Refused{"-r requirements.txt",
                "starts with '-': options are not accepted: the operator chooses the package "
                "sources"},
        Refused{"--index-url=http://evil/simple", "options are not accepted"},
        Refused{"-e .", "options are not accepted"}));

INSTANTIATE_TEST_SUITE_P(
    Sources, RefusedTest,
    ::testing::Values(
        Refused{"https://example.com/x-1.0.whl", "is a URL"},
        Refused{"HTTP://example.com/simple", "is a URL"}, Refused{"file:///tmp/x", "is a URL"},
        Refused{"x @ https://example.com/x.whl", "is a direct reference (name @ URL)"},
        Refused{"x[a]@file:///tmp/x", "is a direct reference"},
        Refused{"git+https://github.com/a/b", "is a version-control link (git+)"},
        Refused{"x @ git+https://github.com/a/b", "version-control link (git+)"},
        Refused{"HG+https://x/y", "version-control link (hg+)"},
        Refused{"svn+ssh://x/y", "version-control link (svn+)"},
        Refused{"bzr+lp:x", "version-control link (bzr+)"}, Refused{"./pkg", "is a path"},
        Refused{"../pkg", "is a path"}, Refused{"/tmp/pkg", "is a path"},
        Refused{"~/pkg", "is a path"}, Refused{"pkg/sub", "is a path"},
        Refused{"C:\\pkg", "is a path"}, Refused{".", "is a path"},
        Refused{"x-1.0-py3-none-any.whl", "is an archive file name (.whl)"},
        Refused{"x-1.0.tar.gz", "archive file name (.tar.gz)"},
        Refused{"x-1.0.TGZ", "archive file name (.tgz)"},
        Refused{"x.zip", "archive file name (.zip)"}));

INSTANTIATE_TEST_SUITE_P(
    Several, RefusedTest,
    ::testing::Values(Refused{"numpy pandas",
                              "\"numpy pandas\" holds more than one requirement: one requirement "
                              "per call; "},
                      Refused{"numpy,pandas", "one requirement per call"},
                      Refused{"numpy, pandas", "one requirement per call"},
                      Refused{"numpy>=1, pandas", "one requirement per call"},
                      Refused{"numpy>=1 pandas", "one requirement per call"},
                      Refused{"numpy\npandas", "one requirement per call"},
                      Refused{"numpy\r\npandas", "one requirement per call"},
                      Refused{"numpy[x] scipy", "one requirement per call"}));

INSTANTIATE_TEST_SUITE_P(
    Shell, RefusedTest,
    ::testing::Values(
        Refused{"numpy|sh", "holds the shell metacharacter '|' at position 6"},
        Refused{"numpy && curl x", "shell metacharacter '&'"},
        Refused{"numpy$(id)", "shell metacharacter '$'"},
        Refused{"numpy`id`", "shell metacharacter '`'"},
        Refused{"numpy; rm -rf x", "shell metacharacter ';' followed by \"rm -rf x\""},
        Refused{"numpy; python_version > '3'; id", "';' more than once"},
        Refused{"numpy;", "ends with ';' but no environment marker follows it"},
        Refused{"numpy > out.txt", "\"out.txt\" at position 7 where a version should be"},
        Refused{"numpy < in", "where a version should be"},
        Refused{std::string("numpy\0x", 7), "holds a NUL byte"},
        Refused{"numpy\x07", "control character 0x07"},
        Refused{"num\x1bpy", "control character 0x1b at position 4"},
        Refused{"numpé", "non-ASCII byte at position 5"}));

INSTANTIATE_TEST_SUITE_P(
    Grammar, RefusedTest,
    ::testing::Values(
        Refused{"_numpy", "must start and end with a letter or digit"},
        Refused{"numpy-", "must start and end with a letter or digit"},
        Refused{"numpy 1.0", "gives the version \"1.0\" without an operator (e.g. numpy==1.0)"},
        Refused{"numpy=1.0", "uses '=', which is not a version operator"},
        Refused{"numpy==", "'==' at position 6 without a version"},
        Refused{"numpy>=1.*", "wildcards go with == and != only"},
        Refused{"numpy==1*", "a wildcard is a trailing \".*\""},
        Refused{"numpy==1.*.2", "a wildcard is a trailing \".*\""},
        Refused{"numpy (>=1.0", "where ',' or ')' should be"},
        Refused{"numpy[a b]", "in the [extras]"}, Refused{"numpy[", "ends early"},
        Refused{"numpy[,]", "where an extra's name should be"},
        Refused{"numpy[-a]", "has the name \"-a\", which must start and end"},
        Refused{"numpy#egg", "unexpected '#' at position 6"},
        Refused{"numpy; python_version >= '3.8", "unclosed ' in its marker"},
        Refused{"numpy; (python_version >= '3.8'", "where the marker's ')' should be"},
        Refused{"numpy; python_version", "where a comparison"},
        Refused{"numpy; os == 'nt'", "\"os\" in its marker, which is not a marker variable"},
        Refused{"numpy; 'a' == 'b' and", "where a variable or quoted string should be"},
        Refused{"numpy; sys_platform == 'linux' junk", "unexpected 'j'"}));

TEST(RequirementTest, LongInputIsCutInTheMessage) {
  auto r = ParseRequirement(std::string(300, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("...\" is 300 characters long"));
  EXPECT_LT(r.status().message().size(), 140 + kRequirementHint.size());
}

TEST(RequirementTest, ExactlyTheLimitIsAccepted) {
  EXPECT_TRUE(ParseRequirement(std::string(kMaxRequirementLength, 'a')).ok());
}

TEST(RequirementTest, ControlBytesAreEscapedInTheMessage) {
  auto r = ParseRequirement("a\x01");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("\"a\\x01\""));
}

TEST(NormalizeProjectNameTest, FollowsPep503) {
  EXPECT_EQ(NormalizeProjectName("Zope.Interface"), "zope-interface");
  EXPECT_EQ(NormalizeProjectName("a__b"), "a-b");
  EXPECT_EQ(NormalizeProjectName("A-_.-B"), "a-b");
  EXPECT_EQ(NormalizeProjectName("Django"), "django");
  EXPECT_EQ(NormalizeProjectName("typing_extensions"), "typing-extensions");
  EXPECT_EQ(NormalizeProjectName("ruamel.yaml.clib"), "ruamel-yaml-clib");
  EXPECT_EQ(NormalizeProjectName("abc"), "abc");
}

}  // namespace
}  // namespace mcpx::packages
