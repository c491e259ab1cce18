#include "tools/args.h"

#include <gtest/gtest.h>

namespace mcpx::tools {
namespace {

using nlohmann::json;

TEST(ArgsTest, UnknownArgumentIsNamed) {
  const json in = {{"pth", "x"}};
  auto a = Args::Parse(in, {"path"});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("unknown argument 'pth'"), std::string::npos);
  EXPECT_NE(a.status().message().find("accepted: path"), std::string::npos);
}

TEST(ArgsTest, WrongTypesNameTheArgument) {
  const json in = {{"path", 5}, {"recursive", "yes"}};
  auto a = Args::Parse(in, {"path", "recursive"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->RequiredString("path").status().message(),
            "argument 'path' must be a string, got number");
  EXPECT_EQ(a->OptionalBool("recursive").status().message(),
            "argument 'recursive' must be a boolean, got string");
}

TEST(ArgsTest, MissingRequiredAndNonObject) {
  const json empty = json::object(), array = json::array(), null = nullptr;
  auto a = Args::Parse(empty, {"code"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->RequiredString("code").status().message(), "missing required argument 'code'");
  EXPECT_FALSE(Args::Parse(array, {}).ok());
  EXPECT_TRUE(Args::Parse(null, {}).ok());
}

TEST(ArgsTest, UnsignedAcceptsSignedAndWholeFloats) {
  const json in = {{"a", int64_t{5}}, {"b", 7.0}, {"c", -1}, {"d", 1.5}};
  auto a = Args::Parse(in, {"a", "b", "c", "d"});
  ASSERT_TRUE(a.ok());
  const auto ra = a->OptionalUint("a");
  const auto rb = a->OptionalUint("b");
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->value(), 5u);
  EXPECT_EQ(rb->value(), 7u);
  EXPECT_FALSE(a->OptionalUint("c").ok());
  EXPECT_FALSE(a->OptionalUint("d").ok());
}

TEST(ArgsTest, NumbersMustBeFinite) {
  const json in = {{"t", 2.5}};
  auto a = Args::Parse(in, {"t"});
  ASSERT_TRUE(a.ok());
  const auto t = a->OptionalNumber("t");
  ASSERT_TRUE(t.ok());
  EXPECT_DOUBLE_EQ(t->value(), 2.5);
}

}  // namespace
}  // namespace mcpx::tools
