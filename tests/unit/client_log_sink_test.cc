#include "mcp/client_log_sink.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace mcpx::mcp {
namespace {

struct Record {
  LogLevel level;
  std::string text;
};

std::shared_ptr<spdlog::logger> LoggerWith(std::shared_ptr<ClientLogSink> sink) {
  auto logger = std::make_shared<spdlog::logger>("client-log-sink-test", std::move(sink));
  logger->set_level(spdlog::level::trace);
  return logger;
}

TEST(ClientLogSinkTest, ForwardsRecordsWithTheirLevel) {
  std::vector<Record> got;
  auto sink = std::make_shared<ClientLogSink>([&got](LogLevel level, std::string text) {
    got.push_back({level, std::move(text)});
  });
  auto logger = LoggerWith(sink);
  logger->warn("kernel {} ended", 7);
  logger->debug("detail");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].level, LogLevel::kWarning);
  EXPECT_EQ(got[0].text, "kernel 7 ended");
  EXPECT_EQ(got[1].level, LogLevel::kDebug);
}

// The transport logs when the client stops reading, from inside the send that forwards a record.
// With a locking sink that nested call waited for its own lock forever (issue 8, finding 3); this
// test would hang then.
TEST(ClientLogSinkTest, ARecordLoggedWhileForwardingIsNotForwardedAndDoesNotWedge) {
  std::vector<std::string> got;
  std::shared_ptr<spdlog::logger> logger;
  auto sink = std::make_shared<ClientLogSink>([&](LogLevel, std::string text) {
    got.push_back(text);
    logger->warn("nested: the client is not reading");
  });
  logger = LoggerWith(sink);
  logger->warn("outer");
  logger->warn("second");
  EXPECT_EQ(got, (std::vector<std::string>{"outer", "second"}));
}

TEST(ClientLogSinkTest, RecordsFromOtherThreadsAreNotForwarded) {
  int calls = 0;
  auto sink = std::make_shared<ClientLogSink>([&calls](LogLevel, std::string) { ++calls; });
  auto logger = LoggerWith(sink);
  std::thread([&logger] { logger->error("from a worker"); }).join();
  EXPECT_EQ(calls, 0);
  logger->error("from the owner");
  EXPECT_EQ(calls, 1);
}

TEST(ClientLogSinkTest, LongRecordsAreCappedAtACharacterBoundary) {
  std::string got;
  auto sink = std::make_shared<ClientLogSink>([&got](LogLevel, std::string t) { got = t; });
  auto logger = LoggerWith(sink);
  std::string euros;
  for (int i = 0; i < 10000; ++i) euros += "\xe2\x82\xac";  // U+20AC, 3 bytes
  logger->warn("{}", euros);
  EXPECT_LT(got.size(), ClientLogSink::kMaxRecordBytes + 64);
  EXPECT_NE(got.find("bytes omitted]"), std::string::npos);
  const std::string head = got.substr(0, got.find("..."));
  EXPECT_EQ(head.size() % 3, 0u) << "cut inside a character";
}

TEST(ClientLogSinkTest, AThrowingForwardDoesNotReachTheCaller) {
  auto sink = std::make_shared<ClientLogSink>(
      [](LogLevel, std::string) { throw std::runtime_error("transport gone"); });
  auto logger = LoggerWith(sink);
  EXPECT_NO_THROW(logger->warn("x"));
}

}  // namespace
}  // namespace mcpx::mcp
