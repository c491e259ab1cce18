// SessionManager over a fake kernel: the session state machine (queueing, ready, timeouts,
// interrupts and kills, cancellation, reset, shutdown, limits, long output) and the warm pool,
// driven by a real EventLoop and a real Workspace on a temp dir. No Python, no jail.
#include "session/manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "session/execution.h"
#include "session/kernel.h"
#include "session/kernel_frame.h"
#include "session/notebook_recorder.h"
#include "session/package_port.h"
#include "util/event_loop.h"
#include "workspace/workspace.h"

namespace mcpx::session {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// What the test sees of one fake kernel; outlives the kernel (the manager destroys kernels).
struct KernelState {
  uint64_t serial = 0;
  bool ready = false;
  bool alive = true;
  bool exit_posted = false;  // Kill() posted the exit
  bool destroyed = false;
  std::string protocol_error;
  std::optional<jail::CgroupUsage> usage;  // set: the kernel has a cgroup reporting this
  bool fail_send = false;
  std::vector<json> sent;
  int interrupts = 0;
  int kills = 0;
  Kernel::Callbacks cb;
};

// Ends the kernel as the real one does: alive() false first, then on_exit once.
void DeliverExit(KernelState& k, jail::ExitStatus exit) {
  if (!k.alive) return;
  k.alive = false;
  auto on_exit = k.cb.on_exit;  // a copy: the callback may replace or destroy the kernel
  if (on_exit) on_exit(exit);
}

class FakeKernel : public Kernel {
 public:
  FakeKernel(EventLoop* loop, std::shared_ptr<KernelState> s) : loop_(loop), s_(std::move(s)) {}
  ~FakeKernel() override {
    s_->cb = {};
    s_->alive = false;
    s_->destroyed = true;
  }

  void set_callbacks(Callbacks cb) override { s_->cb = std::move(cb); }
  bool ready() const override { return s_->ready; }
  bool alive() const override { return s_->alive; }
  const std::string& protocol_error() const override { return s_->protocol_error; }
  std::string StartFailure(const jail::ExitStatus& exit) const override {
    if (s_->ready) return "";
    return "it exited with status " + std::to_string(exit.ShellCode()) + " before it was ready";
  }
  uint64_t serial() const override { return s_->serial; }
  Status Send(const json& message) override {
    if (!s_->alive) return Status(Code::kUnavailable, "the kernel is not running");
    if (s_->fail_send) return Status(Code::kUnavailable, "the control socket is gone");
    s_->sent.push_back(message);
    return Status::Ok();
  }
  Status Interrupt() override {
    ++s_->interrupts;
    return Status::Ok();
  }
  void Kill() override {
    ++s_->kills;
    if (!s_->alive || s_->exit_posted) return;
    s_->exit_posted = true;
    loop_->Post([s = s_] { DeliverExit(*s, jail::ExitStatus{0, SIGKILL, false}); });
  }
  void DrainOutput() override {}
  Result<jail::CgroupUsage> Usage() const override {
    if (!s_->usage) return FailedPrecondition("the fake kernel has no cgroup");
    return *s_->usage;
  }
  bool has_cgroup() const override { return s_->usage.has_value(); }

 private:
  EventLoop* loop_;
  std::shared_ptr<KernelState> s_;
};

// Shared between the factory (owned by the manager) and the test.
struct FactoryLog {
  std::vector<std::shared_ptr<KernelState>> kernels;  // every kernel started, in order
  std::optional<Status> fail_start;                   // the next Start() fails with this
  int start_calls = 0;
};

class FakeKernelFactory : public KernelFactory {
 public:
  FakeKernelFactory(EventLoop* loop, std::shared_ptr<FactoryLog> log)
      : loop_(loop), log_(std::move(log)) {}
  Result<std::unique_ptr<Kernel>> Start(uint64_t serial) override {
    ++log_->start_calls;
    if (log_->fail_start) return *std::exchange(log_->fail_start, std::nullopt);
    auto s = std::make_shared<KernelState>();
    s->serial = serial;
    log_->kernels.push_back(s);
    return std::unique_ptr<Kernel>(std::make_unique<FakeKernel>(loop_, s));
  }

 private:
  EventLoop* loop_;
  std::shared_ptr<FactoryLog> log_;
};

// One Execute() call's done(); shared so that a done() run after the test body is harmless.
struct Call {
  std::optional<Result<ExecOutcome>> result;
  int done_calls = 0;
  ExecutionRef ref;
  bool finished() const { return done_calls > 0; }
  const ExecOutcome& outcome() const { return result->value(); }
  const Status& status() const { return result->status(); }
};

class SessionManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status().ToString();
    loop_ = std::move(loop).value();
    char tmpl[] = "/tmp/mcpx-session-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    auto ws = workspace::Workspace::Open((base_ / "ws").string());
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = *ws;
    options_.warm_kernels = 0;  // every session starts its own kernel, unless a test says so
    options_.settings.timeout_default_s = 30;
    options_.settings.timeout_max_s = 60;
    options_.settings.interrupt_grace_ms = 50;
    options_.settings.max_sessions = 4;
    options_.settings.output_bytes = 1024;
  }

  void TearDown() override {
    manager_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  SessionManager& Manager() {
    if (!manager_) {
      manager_ = std::make_unique<SessionManager>(
          loop_.get(), std::make_unique<FakeKernelFactory>(loop_.get(), log_), ws_, options_);
      manager_->Start();
    }
    return *manager_;
  }

  std::shared_ptr<Call> Execute(const std::string& session, const std::string& code,
                                std::optional<double> timeout = std::nullopt,
                                ExecuteCallbacks cb = {}) {
    auto call = std::make_shared<Call>();
    cb.done = [call](Result<ExecOutcome> r) {
      ++call->done_calls;
      call->result.emplace(std::move(r));
    };
    call->ref = Manager().Execute(ExecuteRequest{session, code, timeout}, std::move(cb));
    return call;
  }

  // Runs the loop until `done` holds; false after 5 s.
  bool RunUntil(const std::function<bool()>& done) {
    const int64_t deadline = EventLoop::NowMs() + 5000;
    while (!done()) {
      if (EventLoop::NowMs() > deadline) return false;
      loop_->RunOnce(std::chrono::milliseconds(5));
    }
    return true;
  }
  // Runs the loop for a while, so that timers that should not fire get their chance.
  void RunFor(int ms) {
    const int64_t end = EventLoop::NowMs() + ms;
    while (EventLoop::NowMs() < end) loop_->RunOnce(std::chrono::milliseconds(5));
  }

  KernelState& K(size_t i) {
    EXPECT_LT(i, log_->kernels.size()) << "no kernel #" << i << " was started";
    if (i >= log_->kernels.size()) std::abort();
    return *log_->kernels[i];
  }

  static void Ready(KernelState& k) {
    k.ready = true;
    KernelFrame f;
    f.kind = KernelFrame::Kind::kReady;
    auto on_message = k.cb.on_message;
    if (on_message) on_message(f);
  }
  static void Reply(KernelState& k, uint64_t id, KernelFrame f) {
    f.id = id;
    auto on_message = k.cb.on_message;
    ASSERT_TRUE(on_message) << "the kernel has no session";
    on_message(f);
  }
  static void ReplyOk(KernelState& k, uint64_t id, std::optional<std::string> result = {}) {
    KernelFrame f;
    f.kind = KernelFrame::Kind::kResult;
    f.status = "ok";
    f.result = std::move(result);
    Reply(k, id, std::move(f));
  }
  static void ReplyError(KernelState& k, uint64_t id, ErrorInfo error) {
    KernelFrame f;
    f.kind = KernelFrame::Kind::kResult;
    f.status = "error";
    f.error = std::move(error);
    Reply(k, id, std::move(f));
  }
  static void Output(KernelState& k, int stream, const std::string& text) {
    auto on_output = k.cb.on_output;
    ASSERT_TRUE(on_output) << "the kernel has no session";
    on_output(stream, text);
  }
  // The id of the last request sent to `k`.
  static uint64_t LastId(const KernelState& k) {
    EXPECT_FALSE(k.sent.empty());
    return k.sent.empty() ? 0 : k.sent.back().at("id").get<uint64_t>();
  }

  const SessionInfo* Info(const std::string& name) {
    report_ = Manager().ListSessions();
    for (const auto& s : report_.sessions) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }

  std::string ReadWorkspaceFile(const std::string& rel) {
    std::ifstream in(base_ / "ws" / rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::unique_ptr<EventLoop> loop_;
  fs::path base_;
  std::shared_ptr<workspace::Workspace> ws_;
  std::shared_ptr<FactoryLog> log_ = std::make_shared<FactoryLog>();
  ManagerOptions options_;
  SessionsReport report_;
  std::unique_ptr<SessionManager> manager_;  // last: destroyed before the loop and workspace
};

TEST_F(SessionManagerTest, CallReturnsItsOutputResultAndExecutionCount) {
  auto call = Execute("s", "print('hi')");
  Ready(K(0));
  ASSERT_EQ(K(0).sent.size(), 1u);
  const json& req = K(0).sent[0];
  EXPECT_EQ(req.at("op"), "execute");
  EXPECT_EQ(req.at("code"), "print('hi')");
  EXPECT_EQ(req.at("execution_count"), 1);
  Output(K(0), 1, "hi\n");
  Output(K(0), 2, "warning\n");
  ReplyOk(K(0), LastId(K(0)), "42");
  ASSERT_TRUE(call->finished());
  ASSERT_TRUE(call->result->ok()) << call->status().ToString();
  const ExecOutcome& out = call->outcome();
  EXPECT_EQ(out.status, ExecStatus::kOk);
  EXPECT_EQ(out.session, "s");
  EXPECT_EQ(out.out.full.head, "hi\n");
  EXPECT_EQ(out.err.full.head, "warning\n");
  EXPECT_EQ(out.result, "42");
  EXPECT_EQ(out.execution_count, 1u);
  EXPECT_FALSE(out.truncated);
  EXPECT_TRUE(out.kill_reason.empty());
  EXPECT_EQ(out.timeout_s, 30);  // the policy's default

  auto second = Execute("s", "1");
  ASSERT_TRUE(RunUntil([&] { return K(0).sent.size() == 2; }));
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(second->finished());
  EXPECT_EQ(second->outcome().execution_count, 2u);
  EXPECT_TRUE(second->outcome().out.full.head.empty());  // the first call's output is not repeated
}

TEST_F(SessionManagerTest, ErrorReplyGivesStatusErrorWithTheException) {
  auto call = Execute("s", "1/0");
  Ready(K(0));
  ReplyError(K(0), LastId(K(0)),
             ErrorInfo{"ZeroDivisionError", "division by zero", "Traceback ..."});
  ASSERT_TRUE(call->finished());
  const ExecOutcome& out = call->outcome();
  EXPECT_EQ(out.status, ExecStatus::kError);
  ASSERT_TRUE(out.error.has_value());
  EXPECT_EQ(out.error->type, "ZeroDivisionError");
  EXPECT_EQ(out.error->message, "division by zero");
  EXPECT_EQ(out.error->traceback, "Traceback ...");
}

TEST_F(SessionManagerTest, ReplyWithAnotherIdDoesNotEndTheCall) {
  auto call = Execute("s", "x");
  Ready(K(0));
  ReplyOk(K(0), LastId(K(0)) + 100);
  EXPECT_FALSE(call->finished());
  ReplyOk(K(0), LastId(K(0)));
  EXPECT_TRUE(call->finished());
}

TEST_F(SessionManagerTest, CallsInOneSessionRunInOrder) {
  auto first = Execute("s", "first");
  auto second = Execute("s", "second");  // queued before the kernel is ready
  Ready(K(0));
  auto third = Execute("s", "third");  // queued while the first runs
  RunFor(20);
  ASSERT_EQ(K(0).sent.size(), 1u) << "a call was sent before the first replied";
  EXPECT_EQ(K(0).sent[0].at("code"), "first");
  EXPECT_EQ(Info("s")->queued, 2u);
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(first->finished());
  EXPECT_FALSE(second->finished());
  ASSERT_TRUE(RunUntil([&] { return K(0).sent.size() == 2; }));
  RunFor(20);
  ASSERT_EQ(K(0).sent.size(), 2u) << "the third call was sent before the second replied";
  EXPECT_EQ(K(0).sent[1].at("code"), "second");
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(second->finished());
  ASSERT_TRUE(RunUntil([&] { return K(0).sent.size() == 3; }));
  EXPECT_EQ(K(0).sent[2].at("code"), "third");
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(third->finished());
  EXPECT_EQ(first->outcome().execution_count, 1u);
  EXPECT_EQ(second->outcome().execution_count, 2u);
  EXPECT_EQ(third->outcome().execution_count, 3u);
  EXPECT_EQ(log_->kernels.size(), 1u);  // one kernel for the session
}

TEST_F(SessionManagerTest, TwoSessionsRunAtOnce) {
  auto a = Execute("a", "in a");
  auto b = Execute("b", "in b");
  ASSERT_EQ(log_->kernels.size(), 2u);
  Ready(K(0));
  Ready(K(1));
  // Both are sent before either replies.
  ASSERT_EQ(K(0).sent.size(), 1u);
  ASSERT_EQ(K(1).sent.size(), 1u);
  EXPECT_EQ(K(0).sent[0].at("code"), "in a");
  EXPECT_EQ(K(1).sent[0].at("code"), "in b");
  EXPECT_EQ(Info("a")->state, "busy");
  EXPECT_EQ(Info("b")->state, "busy");
  ReplyOk(K(1), LastId(K(1)), "'b'");
  ReplyOk(K(0), LastId(K(0)), "'a'");
  ASSERT_TRUE(a->finished() && b->finished());
  EXPECT_EQ(a->outcome().result, "'a'");
  EXPECT_EQ(b->outcome().result, "'b'");
}

TEST_F(SessionManagerTest, FirstCallWaitsForReady) {
  auto call = Execute("s", "x");
  RunFor(20);
  EXPECT_TRUE(K(0).sent.empty()) << "code was sent to a kernel that is not ready";
  EXPECT_EQ(Info("s")->state, "starting");
  Ready(K(0));
  EXPECT_EQ(K(0).sent.size(), 1u);
  EXPECT_FALSE(call->finished());
}

TEST_F(SessionManagerTest, TimeoutInterruptsAndALateReplyIsTimeout) {
  auto call = Execute("s", "while True: pass", 0.05);
  Ready(K(0));
  ASSERT_TRUE(RunUntil([&] { return K(0).interrupts > 0; }));
  EXPECT_FALSE(call->finished());
  Output(K(0), 2, "KeyboardInterrupt\n");
  ReplyError(K(0), LastId(K(0)), ErrorInfo{"KeyboardInterrupt", "", ""});
  ASSERT_TRUE(call->finished());
  const ExecOutcome& out = call->outcome();
  EXPECT_EQ(out.status, ExecStatus::kTimeout);
  EXPECT_DOUBLE_EQ(out.timeout_s, 0.05);
  EXPECT_EQ(out.err.full.head, "KeyboardInterrupt\n");
  EXPECT_TRUE(out.kill_reason.empty());
  RunFor(150);  // past the grace period: the grace timer must be gone
  EXPECT_EQ(K(0).kills, 0);
  EXPECT_TRUE(K(0).alive);
  EXPECT_EQ(Info("s")->kernel_restarts, 0u);
}

TEST_F(SessionManagerTest, IgnoredInterruptIsKilledAfterGraceAndTheNextCallGetsAFreshKernel) {
  auto call = Execute("s", "time.sleep(100)", 0.05);
  Ready(K(0));
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  EXPECT_EQ(K(0).interrupts, 1);
  EXPECT_GE(K(0).kills, 1);
  const ExecOutcome& out = call->outcome();
  EXPECT_EQ(out.status, ExecStatus::kKilled);
  EXPECT_THAT(out.kill_reason, HasSubstr("did not stop within 50 ms of the interrupt"));
  EXPECT_THAT(out.kill_reason, HasSubstr("timeout"));

  auto next = Execute("s", "x");
  ASSERT_EQ(log_->kernels.size(), 2u) << "the next call did not get a new kernel";
  Ready(K(1));
  ASSERT_EQ(K(1).sent.size(), 1u);
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(next->finished());
  EXPECT_EQ(next->outcome().status, ExecStatus::kOk);
  ASSERT_EQ(next->outcome().notes.size(), 1u);
  EXPECT_THAT(next->outcome().notes[0],
              HasSubstr("previous Python kernel of this session was lost"));
  EXPECT_THAT(next->outcome().notes[0], HasSubstr("did not stop within 50 ms"));
  EXPECT_EQ(Info("s")->kernel_restarts, 1u);
  // The notice is given once.
  auto third = Execute("s", "y");
  ASSERT_TRUE(RunUntil([&] { return K(1).sent.size() == 2; }));
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(third->finished());
  EXPECT_THAT(third->outcome().notes, IsEmpty());
}

TEST_F(SessionManagerTest, CancelOfAQueuedCallSendsNothing) {
  auto first = Execute("s", "first");
  auto second = Execute("s", "second");
  Manager().Cancel(second->ref);
  ASSERT_TRUE(second->finished());
  EXPECT_EQ(second->status().code(), Code::kCancelled);
  Ready(K(0));
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(first->finished());
  RunFor(20);
  ASSERT_EQ(K(0).sent.size(), 1u);
  EXPECT_EQ(K(0).sent[0].at("code"), "first");
  EXPECT_EQ(K(0).interrupts, 0);
  EXPECT_EQ(second->done_calls, 1);
}

TEST_F(SessionManagerTest, CancelOfTheRunningCallInterruptsIt) {
  auto call = Execute("s", "x");
  Ready(K(0));
  Manager().Cancel(call->ref);
  EXPECT_EQ(K(0).interrupts, 1);
  EXPECT_FALSE(call->finished());
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kCancelled);
  RunFor(100);
  EXPECT_EQ(K(0).kills, 0);
}

TEST_F(SessionManagerTest, CancelOfTheRunningCallThatIgnoresTheInterruptKillsIt) {
  auto call = Execute("s", "x");
  Ready(K(0));
  Manager().Cancel(call->ref);
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  EXPECT_EQ(call->outcome().status, ExecStatus::kKilled);
  EXPECT_THAT(call->outcome().kill_reason, HasSubstr("interrupt sent on cancellation"));
}

TEST_F(SessionManagerTest, KernelExitWhileRunningIsKilledWithTheReason) {
  auto call = Execute("s", "ctypes.string_at(0)");
  auto queued = Execute("s", "after");
  Ready(K(0));
  Output(K(0), 1, "before the crash\n");
  DeliverExit(K(0), jail::ExitStatus{0, SIGSEGV, false});
  ASSERT_TRUE(call->finished());
  const ExecOutcome& out = call->outcome();
  EXPECT_EQ(out.status, ExecStatus::kKilled);
  EXPECT_THAT(out.kill_reason, HasSubstr("killed by SIGSEGV"));
  EXPECT_THAT(out.kill_reason, HasSubstr("a crash"));
  EXPECT_EQ(out.out.full.head, "before the crash\n");
  // The queued call goes on in a fresh kernel, told of the loss.
  ASSERT_EQ(log_->kernels.size(), 2u);
  Ready(K(1));
  ASSERT_TRUE(RunUntil([&] { return K(1).sent.size() == 1; }));
  EXPECT_EQ(K(1).sent[0].at("code"), "after");
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(queued->finished());
  EXPECT_THAT(queued->outcome().notes, Contains(HasSubstr("SIGSEGV")));
}

TEST_F(SessionManagerTest, KernelThatExitsBeforeReadyFailsTheQueuedCallsAndTheNewSessionGoes) {
  auto a = Execute("s", "a");
  auto b = Execute("s", "b");
  ASSERT_NE(Info("s"), nullptr);
  DeliverExit(K(0), jail::ExitStatus{1, 0, false});
  ASSERT_TRUE(a->finished() && b->finished());
  for (const auto& call : {a, b}) {
    ASSERT_FALSE(call->result->ok());
    EXPECT_EQ(call->status().code(), Code::kUnavailable);
    EXPECT_THAT(call->status().message(), HasSubstr("cannot start a Python kernel"));
    EXPECT_THAT(call->status().message(), HasSubstr("exited with status 1 before it was ready"));
  }
  EXPECT_TRUE(K(0).sent.empty());
  EXPECT_EQ(Info("s"), nullptr);
  EXPECT_THAT(report_.sessions, IsEmpty());
}

TEST_F(SessionManagerTest, FactoryStartFailureIsReportedAndLeavesNoSession) {
  log_->fail_start = Status(Code::kResourceExhausted, "no cgroup left");
  auto call = Execute("s", "x");
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->status().code(), Code::kResourceExhausted);
  EXPECT_THAT(call->status().message(), HasSubstr("cannot start a Python kernel"));
  EXPECT_THAT(call->status().message(), HasSubstr("no cgroup left"));
  EXPECT_EQ(call->ref.id, 0u);
  EXPECT_EQ(Info("s"), nullptr);
  EXPECT_THAT(report_.sessions, IsEmpty());
  // The next call tries again.
  auto again = Execute("s", "x");
  EXPECT_FALSE(again->finished());
  EXPECT_EQ(log_->kernels.size(), 1u);
}

TEST_F(SessionManagerTest, SessionLimitIsNamed) {
  options_.settings.max_sessions = 2;
  auto a = Execute("a", "x");
  auto b = Execute("b", "x");
  auto c = Execute("c", "x");
  ASSERT_TRUE(c->finished());
  EXPECT_EQ(c->status().code(), Code::kResourceExhausted);
  EXPECT_THAT(c->status().message(), HasSubstr("2 sessions are open"));
  EXPECT_THAT(c->status().message(), HasSubstr("max_sessions"));
  EXPECT_EQ(log_->start_calls, 2);
  EXPECT_EQ(Info("c"), nullptr);
  // An existing session still takes calls.
  auto a2 = Execute("a", "y");
  EXPECT_FALSE(a2->finished());
}

TEST_F(SessionManagerTest, InvalidArgumentsNeverTouchAKernel) {
  const std::vector<std::pair<ExecuteRequest, std::string>> cases = {
      {{"", "x", std::nullopt}, "'session'"},
      {{std::string(65, 'a'), "x", std::nullopt}, "'session'"},
      {{"a/b", "x", std::nullopt}, "'session'"},
      {{"s", std::string((4u << 20) + 1, 'x'), std::nullopt}, "'code'"},
      {{"s", "x", 0.0}, "'timeout_seconds'"},
      {{"s", "x", -1.0}, "'timeout_seconds'"},
  };
  for (const auto& [request, names] : cases) {
    auto call = std::make_shared<Call>();
    ExecuteCallbacks cb;
    cb.done = [call](Result<ExecOutcome> r) {
      ++call->done_calls;
      call->result.emplace(std::move(r));
    };
    const ExecutionRef ref = Manager().Execute(request, std::move(cb));
    ASSERT_TRUE(call->finished()) << names;
    EXPECT_EQ(call->status().code(), Code::kInvalidArgument) << names;
    EXPECT_THAT(call->status().message(), HasSubstr(names));
    EXPECT_EQ(ref.id, 0u);
  }
  EXPECT_EQ(log_->start_calls, 0);
  EXPECT_THAT(Manager().ListSessions().sessions, IsEmpty());
}

TEST_F(SessionManagerTest, CodeAtTheSizeLimitIsAccepted) {
  auto call = Execute("s", std::string(4u << 20, 'x'));
  EXPECT_FALSE(call->finished());
  EXPECT_EQ(log_->start_calls, 1);
}

// A NaN timeout is not positive: refused, never turned into a timer (static_cast<int64_t> of
// NaN * 1000 is undefined). JSON cannot carry NaN; C++ callers can.
TEST_F(SessionManagerTest, NanTimeoutIsInvalid) {
  auto call = Execute("s", "x", std::nan(""));
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log_->start_calls, 0);
}

TEST_F(SessionManagerTest, TimeoutAboveTheMaximumIsCappedWithANote) {
  options_.settings.timeout_max_s = 1;
  auto call = Execute("s", "x", 5.0);
  Ready(K(0));
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kOk);
  EXPECT_EQ(call->outcome().timeout_s, 1.0);
  EXPECT_THAT(call->outcome().notes, Contains(HasSubstr("capped at 1 s")));

  auto uncapped = Execute("s", "x", 0.9);
  ASSERT_TRUE(RunUntil([&] { return K(0).sent.size() == 2; }));
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(uncapped->finished());
  EXPECT_EQ(uncapped->outcome().timeout_s, 0.9);
  EXPECT_THAT(uncapped->outcome().notes, IsEmpty());
}

TEST_F(SessionManagerTest, ResetOfABusySessionKillsTheRunningCallAndFailsTheQueued) {
  auto running = Execute("s", "x");
  auto queued = Execute("s", "y");
  Ready(K(0));
  ASSERT_EQ(K(0).sent.size(), 1u);
  EXPECT_TRUE(Manager().Reset("s"));
  ASSERT_TRUE(running->finished());
  EXPECT_EQ(running->outcome().status, ExecStatus::kKilled);
  EXPECT_THAT(running->outcome().kill_reason, HasSubstr("reset"));
  ASSERT_TRUE(queued->finished());
  EXPECT_FALSE(queued->result->ok());
  EXPECT_THAT(queued->status().message(), HasSubstr("was reset before this call ran"));
  EXPECT_GE(K(0).kills, 1);
  EXPECT_EQ(Info("s"), nullptr);
  RunFor(20);
  EXPECT_EQ(K(0).sent.size(), 1u);  // the queued call was never sent
  EXPECT_TRUE(K(0).destroyed);
  EXPECT_EQ(running->done_calls, 1);
  EXPECT_EQ(queued->done_calls, 1);
}

TEST_F(SessionManagerTest, ResetOfAnUnknownSessionIsFalse) {
  EXPECT_FALSE(Manager().Reset("nope"));
  auto call = Execute("s", "x");
  Ready(K(0));
  ReplyOk(K(0), LastId(K(0)));
  EXPECT_FALSE(Manager().Reset("nope"));
  EXPECT_TRUE(Manager().Reset("s"));
  EXPECT_FALSE(Manager().Reset("s"));
}

TEST_F(SessionManagerTest, ListSessionsShowsStatesAndRestarts) {
  auto call = Execute("s", "x");
  ASSERT_NE(Info("s"), nullptr);
  EXPECT_EQ(Info("s")->state, "starting");
  EXPECT_EQ(Info("s")->queued, 1u);
  Ready(K(0));
  EXPECT_EQ(Info("s")->state, "busy");
  EXPECT_EQ(Info("s")->queued, 0u);
  ReplyOk(K(0), LastId(K(0)));
  EXPECT_EQ(Info("s")->state, "idle");
  EXPECT_EQ(Info("s")->execution_count, 1u);
  EXPECT_EQ(Info("s")->kernel_restarts, 0u);
  EXPECT_EQ(report_.max_sessions, 4u);

  DeliverExit(K(0), jail::ExitStatus{0, SIGKILL, false});  // dies while idle
  EXPECT_EQ(Info("s")->state, "stopped");
  auto next = Execute("s", "y");
  Ready(K(1));
  EXPECT_EQ(Info("s")->kernel_restarts, 1u);
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(next->finished());
  EXPECT_THAT(next->outcome().notes, Contains(HasSubstr("ended while idle")));
}

TEST_F(SessionManagerTest, ShutdownFailsEveryPendingCall) {
  auto running = Execute("a", "x");
  auto queued = Execute("a", "y");
  auto starting = Execute("b", "z");
  Ready(K(0));
  Manager().Shutdown();
  for (const auto& call : {running, queued, starting}) {
    ASSERT_TRUE(call->finished());
    EXPECT_EQ(call->done_calls, 1);
    EXPECT_EQ(call->status().code(), Code::kUnavailable);
    EXPECT_THAT(call->status().message(), HasSubstr("shutting down"));
  }
  EXPECT_TRUE(K(0).destroyed);
  EXPECT_TRUE(K(1).destroyed);
  auto after = Execute("a", "x");
  ASSERT_TRUE(after->finished());
  EXPECT_THAT(after->status().message(), HasSubstr("shutting down"));
  EXPECT_EQ(log_->start_calls, 2);
}

TEST_F(SessionManagerTest, LongOutputIsTruncatedAndSavedInTheWorkspace) {
  auto call = Execute("s", "print(...)");
  Ready(K(0));
  std::string all;
  for (int i = 0; i < 500; ++i) {
    const std::string line = "line " + std::to_string(i) + "\n";
    all += line;
    Output(K(0), 1, line);
  }
  Output(K(0), 2, "short\n");
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  const ExecOutcome& out = call->outcome();
  EXPECT_TRUE(out.truncated);
  ASSERT_TRUE(out.out.full.cut);
  EXPECT_LE(out.out.full.head.size() + out.out.full.tail.size(), 1024u);
  EXPECT_EQ(out.out.full.head.rfind("line 0\n", 0), 0u);
  EXPECT_THAT(out.out.full.tail, HasSubstr("line 499\n"));
  EXPECT_EQ(out.out.lines, 500u);
  EXPECT_EQ(out.out.bytes, all.size());
  ASSERT_TRUE(out.out.brief.cut);
  EXPECT_LE(out.out.brief.head.size() + out.out.brief.tail.size(), kBriefOutputBytes);
  EXPECT_EQ(out.err.full.head, "short\n");
  const std::string saved = ".mcp-executor/outputs/s-1-stdout.txt";
  EXPECT_EQ(out.out.saved, "/workspace/" + saved);
  EXPECT_EQ(out.out.saved_bytes, all.size());
  EXPECT_THAT(out.saved_files, Contains("/workspace/" + saved));
  EXPECT_EQ(out.saved_files.size(), 1u);  // stderr was short: not saved
  ASSERT_TRUE(fs::exists(base_ / "ws" / saved));
  EXPECT_EQ(ReadWorkspaceFile(saved), all);
}

TEST_F(SessionManagerTest, WarmPoolHandsOutAPreparedKernelAndRefills) {
  options_.warm_kernels = 1;
  Manager();  // Start() fills the pool
  ASSERT_EQ(log_->start_calls, 1);
  Ready(K(0));  // ready while warm, before any session
  EXPECT_EQ(Manager().ListSessions().warm_kernels, 1u);

  auto call = Execute("s", "x");
  // The warm kernel is already ready: the code goes out at once, to kernel #0.
  ASSERT_EQ(K(0).sent.size(), 1u);
  ASSERT_TRUE(RunUntil([&] { return log_->start_calls == 2; }));
  EXPECT_EQ(Manager().ListSessions().warm_kernels, 1u);
  EXPECT_TRUE(K(1).sent.empty());
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kOk);

  // A second session takes the refilled kernel.
  auto other = Execute("t", "y");
  EXPECT_EQ(log_->kernels.size(), 2u);
  Ready(K(1));
  EXPECT_EQ(K(1).sent.size(), 1u);
  ASSERT_TRUE(RunUntil([&] { return log_->start_calls == 3; }));
}

TEST_F(SessionManagerTest, WarmKernelThatDiesBeforeUseLeavesThePool) {
  options_.warm_kernels = 1;
  Manager();
  ASSERT_EQ(log_->kernels.size(), 1u);
  DeliverExit(K(0), jail::ExitStatus{1, 0, false});
  EXPECT_EQ(Manager().ListSessions().warm_kernels, 0u);
  auto call = Execute("s", "x");
  ASSERT_EQ(log_->kernels.size(), 2u);  // a new kernel, not the dead one
  Ready(K(1));
  EXPECT_EQ(K(1).sent.size(), 1u);
  EXPECT_TRUE(K(0).sent.empty());
}

TEST_F(SessionManagerTest, ProgressReportsFreshOutputWhileTheCodeRuns) {
  struct Progress {
    std::vector<double> values;
    std::vector<std::string> messages;
    double total = 0;
  };
  auto seen = std::make_shared<Progress>();
  ExecuteCallbacks cb;
  cb.progress = [seen](double progress, double total, std::string message) {
    seen->values.push_back(progress);
    seen->total = total;
    seen->messages.push_back(std::move(message));
  };
  auto call = Execute("s", "x", 20.0, std::move(cb));
  Ready(K(0));
  Output(K(0), 1, "step 1\n");
  ASSERT_TRUE(RunUntil([&] { return !seen->messages.empty(); }));
  EXPECT_EQ(seen->messages[0], "step 1\n");
  EXPECT_EQ(seen->total, 20.0);
  Output(K(0), 2, "step 2\n");
  ASSERT_TRUE(RunUntil([&] { return seen->messages.size() >= 2; }));
  EXPECT_EQ(seen->messages[1], "step 2\n");
  EXPECT_GT(seen->values[1], seen->values[0]);
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  // Progress is only reported while the call runs, and output is still whole in the outcome.
  EXPECT_EQ(call->outcome().out.full.head, "step 1\n");
  EXPECT_EQ(call->outcome().err.full.head, "step 2\n");
  const size_t reported = seen->messages.size();
  RunFor(600);
  EXPECT_EQ(seen->messages.size(), reported);
}

TEST_F(SessionManagerTest, ReplyNotesImagesAndSavedFilesReachTheOutcome) {
  auto call = Execute("s", "plot()");
  Ready(K(0));
  KernelFrame f;
  f.kind = KernelFrame::Kind::kResult;
  f.status = "ok";
  f.images.push_back(CheckedImage{"iVBORw0KGgo=", 1, 1, 8});
  f.dropped_images = 2;
  f.saved_images = {".mcp-executor/outputs/plot-1.png"};
  f.notes = {"a note from the kernel"};
  f.cpu_ms = 12.5;
  Reply(K(0), LastId(K(0)), f);
  ASSERT_TRUE(call->finished());
  const ExecOutcome& out = call->outcome();
  ASSERT_EQ(out.images.size(), 1u);
  EXPECT_EQ(out.images[0].data, "iVBORw0KGgo=");
  EXPECT_THAT(out.notes, Contains(HasSubstr("2 image(s) from the kernel were not well-formed")));
  EXPECT_THAT(out.notes, Contains("a note from the kernel"));
  EXPECT_THAT(out.saved_files, Contains(".mcp-executor/outputs/plot-1.png"));
  EXPECT_EQ(out.cpu_ms, 12.5);  // no cgroup: the kernel's own count
}

TEST_F(SessionManagerTest, SendFailureKillsTheKernelAndSaysWhy) {
  auto call = Execute("s", "x");
  K(0).fail_send = true;
  Ready(K(0));
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  EXPECT_EQ(call->outcome().status, ExecStatus::kKilled);
  EXPECT_THAT(call->outcome().kill_reason, HasSubstr("could not send the code to the kernel"));
  EXPECT_THAT(call->outcome().kill_reason, HasSubstr("the control socket is gone"));
  EXPECT_GE(K(0).kills, 1);
}

TEST_F(SessionManagerTest, ProtocolErrorIsTheKillReason) {
  auto call = Execute("s", "os.write(3, b'junk')");
  Ready(K(0));
  K(0).protocol_error = "the kernel sent a malformed frame";
  DeliverExit(K(0), jail::ExitStatus{0, SIGKILL, false});
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kKilled);
  EXPECT_EQ(call->outcome().kill_reason, "the kernel sent a malformed frame");
}

TEST_F(SessionManagerTest, OomKillDuringTheCellNamesTheMemoryLimit) {
  options_.sandbox.memory_bytes = 256ull << 20;
  auto call = Execute("s", "x = bytearray(1 << 40)");
  K(0).usage = jail::CgroupUsage{};
  K(0).usage->oom_kills = 3;  // earlier cells' OOM kills do not count
  Ready(K(0));
  K(0).usage->oom_kills = 4;
  DeliverExit(K(0), jail::ExitStatus{0, SIGKILL, false});
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kKilled);
  EXPECT_EQ(call->outcome().kill_reason, "memory limit 256 MiB exceeded");
}

TEST_F(SessionManagerTest, SigkillWithoutAnOomKillIsNotBlamedOnMemory) {
  auto call = Execute("s", "x");
  K(0).usage = jail::CgroupUsage{};
  K(0).usage->oom_kills = 3;
  Ready(K(0));
  DeliverExit(K(0), jail::ExitStatus{0, SIGKILL, false});
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().kill_reason, "the Python interpreter was killed by SIGKILL");
}

TEST_F(SessionManagerTest, CgroupUsageGivesCpuAndPeakMemoryOfTheCell) {
  auto call = Execute("s", "x");
  K(0).usage = jail::CgroupUsage{};
  K(0).usage->cpu_usec = 1000;
  Ready(K(0));
  K(0).usage->cpu_usec = 5000;
  K(0).usage->memory_peak_bytes = 7 << 20;
  K(0).usage->memory_current_bytes = 3 << 20;
  KernelFrame f;
  f.kind = KernelFrame::Kind::kResult;
  f.status = "ok";
  f.cpu_ms = 999;  // the cgroup's count wins
  Reply(K(0), LastId(K(0)), f);
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().cpu_ms, 4.0);
  EXPECT_EQ(call->outcome().peak_memory_bytes, uint64_t{7} << 20);
  const SessionInfo* info = Info("s");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->memory_bytes, uint64_t{3} << 20);
  EXPECT_EQ(info->cpu_ms, 5.0);
}

TEST_F(SessionManagerTest, ForkBombIsStoppedBeforeTheTimeout) {
  options_.sandbox.pids = 33;
  options_.sandbox.nproc = 500;
  auto call = Execute("s", "while True: os.fork()");
  K(0).usage = jail::CgroupUsage{};
  Ready(K(0));
  K(0).usage->pids_limit_hits = 1;
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  EXPECT_EQ(K(0).interrupts, 0);  // killed by the tick, not the 30 s timeout
  EXPECT_EQ(call->outcome().status, ExecStatus::kKilled);
  EXPECT_THAT(call->outcome().kill_reason, HasSubstr("process limit of 33 reached"));
}

TEST_F(SessionManagerTest, PidsLimitHitInACellThatRepliedStillKills) {
  options_.sandbox.pids = 33;
  auto call = Execute("s", "fork a lot, then return");
  K(0).usage = jail::CgroupUsage{};
  Ready(K(0));
  K(0).usage->pids_limit_hits = 2;
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kKilled);
  EXPECT_THAT(call->outcome().kill_reason, HasSubstr("process limit of 33 reached"));
  EXPECT_GE(K(0).kills, 1);
  ASSERT_TRUE(RunUntil([&] { return !K(0).alive; }));
  auto next = Execute("s", "y");
  ASSERT_EQ(log_->kernels.size(), 2u);
  Ready(K(1));
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(next->finished());
  EXPECT_THAT(next->outcome().notes, Contains(HasSubstr("was lost")));
}

// When Complete() kills a kernel for the pids limit hit during a cell that replied, the exit
// arrives with no call running; the next call's notice still says why the server stopped it.
TEST_F(SessionManagerTest, LostNoticeAfterAPidsLimitKillNamesTheProcessLimit) {
  options_.sandbox.pids = 33;
  auto call = Execute("s", "fork a lot, then return");
  K(0).usage = jail::CgroupUsage{};
  Ready(K(0));
  K(0).usage->pids_limit_hits = 2;
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(RunUntil([&] { return !K(0).alive; }));
  auto next = Execute("s", "y");
  Ready(K(1));
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(next->finished());
  EXPECT_THAT(next->outcome().notes, Contains(HasSubstr("process limit of 33 reached")));
  EXPECT_THAT(next->outcome().notes, Not(Contains(HasSubstr("ended while idle"))));
}

// done() may re-enter the manager for its own session: the outcome is delivered after the
// session is consistent. (Run under ASan: with done() called before the last use of the session,
// this was a heap-use-after-free that a plain build does not show.)
TEST_F(SessionManagerTest, DoneMayResetItsOwnSession) {
  auto call = std::make_shared<Call>();
  SessionManager* m = &Manager();
  ExecuteCallbacks cb;
  cb.done = [call, m](Result<ExecOutcome> r) {
    ++call->done_calls;
    call->result.emplace(std::move(r));
    EXPECT_TRUE(m->Reset("s"));
  };
  m->Execute(ExecuteRequest{"s", "x", std::nullopt}, std::move(cb));
  Ready(K(0));
  ReplyOk(K(0), LastId(K(0)));
  RunFor(20);
  EXPECT_EQ(call->done_calls, 1);
  EXPECT_EQ(Info("s"), nullptr);
}

// An installer that records what it is asked and finishes when the test says.
class FakeInstaller : public PackageInstaller {
 public:
  uint64_t Install(InstallRequest request, InstallCallbacks cb) override {
    requests.push_back(request);
    pending.push_back(std::move(cb));
    return requests.size();
  }
  void Cancel(uint64_t id) override { cancelled.push_back(id); }
  std::vector<InstallRequest> requests;
  std::vector<InstallCallbacks> pending;
  std::vector<uint64_t> cancelled;
};

InstallOutcome Installed(const std::string& name, const std::string& version,
                         std::vector<std::string> modules) {
  InstallOutcome out;
  out.status = InstallStatus::kInstalled;
  out.requirement = name;
  out.installed.push_back(InstalledDist{name, version, "", std::move(modules)});
  return out;
}

void ReplyWithImports(KernelState& k, uint64_t id, std::vector<std::string> imports) {
  KernelFrame f;
  f.kind = KernelFrame::Kind::kResult;
  f.status = "ok";
  f.id = id;
  f.imports = std::move(imports);
  auto on_message = k.cb.on_message;
  ASSERT_TRUE(on_message);
  on_message(f);
}

// `%pip install` in a cell: the kernel's frame reaches the installer with the session's name, and
// the outcome goes back to that kernel as an install_result while its cell keeps running.
TEST_F(SessionManagerTest, InstallFrameGoesToTheInstallerAndTheAnswerToTheKernel) {
  FakeInstaller installer;
  Manager().SetInstaller(&installer);
  auto call = Execute("s", "%pip install tinypkg");
  Ready(K(0));
  KernelFrame f;
  f.kind = KernelFrame::Kind::kInstall;
  f.requirement = "tinypkg==1.0";
  f.upgrade = true;
  K(0).cb.on_message(f);
  ASSERT_EQ(installer.requests.size(), 1u);
  EXPECT_EQ(installer.requests[0].requirement, "tinypkg==1.0");
  EXPECT_TRUE(installer.requests[0].upgrade);
  EXPECT_EQ(installer.requests[0].session, "s");
  // A second frame while the first install runs is answered at once, without the installer.
  K(0).cb.on_message(f);
  EXPECT_EQ(installer.requests.size(), 1u);
  ASSERT_EQ(K(0).sent.size(), 2u);
  EXPECT_EQ(K(0).sent[1].at("ok"), false);

  installer.pending[0].done(Installed("tinypkg", "1.0", {"tinypkg"}));
  ASSERT_EQ(K(0).sent.size(), 3u);
  const json& answer = K(0).sent[2];
  EXPECT_EQ(answer.at("op"), "install_result");
  EXPECT_EQ(answer.at("ok"), true);
  EXPECT_THAT(answer.at("text").get<std::string>(), HasSubstr("Installed tinypkg 1.0"));
  EXPECT_FALSE(call->finished());  // the cell goes on
  ReplyOk(K(0), K(0).sent[0].at("id").get<uint64_t>());
  ASSERT_TRUE(call->finished());
}

// The cell's timeout is paused while it waits for its `%pip install` (the install has its own
// bound) and runs again, with what was left, once the answer is back.
TEST_F(SessionManagerTest, CellTimeoutPausesWhileItsInstallRuns) {
  FakeInstaller installer;
  Manager().SetInstaller(&installer);
  auto call = Execute("s", "%pip install slowpkg\nwhile True: pass", 0.05);
  Ready(K(0));
  KernelFrame f;
  f.kind = KernelFrame::Kind::kInstall;
  f.requirement = "slowpkg";
  K(0).cb.on_message(f);
  ASSERT_EQ(installer.requests.size(), 1u);
  RunFor(150);  // three times the cell's timeout
  EXPECT_EQ(K(0).interrupts, 0);
  EXPECT_FALSE(call->finished());
  installer.pending[0].done(Installed("slowpkg", "1.0", {"slowpkg"}));
  ASSERT_TRUE(RunUntil([&] { return K(0).interrupts > 0; }));  // its clock runs again
  ReplyError(K(0), K(0).sent[0].at("id").get<uint64_t>(), ErrorInfo{"KeyboardInterrupt", "", ""});
  ASSERT_TRUE(call->finished());
  EXPECT_EQ(call->outcome().status, ExecStatus::kTimeout);
}

TEST_F(SessionManagerTest, InstallFrameWithoutAnInstallerIsAnsweredNo) {
  auto call = Execute("s", "%pip install x");
  Ready(K(0));
  KernelFrame f;
  f.kind = KernelFrame::Kind::kInstall;
  f.requirement = "x";
  K(0).cb.on_message(f);
  ASSERT_EQ(K(0).sent.size(), 2u);
  EXPECT_EQ(K(0).sent[1].at("ok"), false);
  EXPECT_THAT(K(0).sent[1].at("text").get<std::string>(), HasSubstr("no package installer"));
}

// An answer that arrives after the kernel was replaced goes nowhere (the new kernel did not ask).
TEST_F(SessionManagerTest, InstallAnswerAfterAResetGoesNowhere) {
  FakeInstaller installer;
  Manager().SetInstaller(&installer);
  auto call = Execute("s", "%pip install x");
  Ready(K(0));
  KernelFrame f;
  f.kind = KernelFrame::Kind::kInstall;
  f.requirement = "x";
  K(0).cb.on_message(f);
  EXPECT_TRUE(Manager().Reset("s"));
  auto next = Execute("s", "1");
  Ready(K(1));
  installer.pending[0].done(Installed("x", "1.0", {"x"}));
  ASSERT_EQ(K(1).sent.size(), 1u);  // only its own execute
}

// install_package on a manager without an installer: an error at once, not a hang.
TEST_F(SessionManagerTest, InstallWithoutAnInstallerIsAnError) {
  std::optional<InstallOutcome> seen;
  Manager().Install(InstallRequest{"x", false, ""},
                    InstallCallbacks{.done = [&](InstallOutcome o) { seen = std::move(o); },
                                     .progress = nullptr});
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(seen->ok());
  EXPECT_THAT(seen->error, HasSubstr("no package installer"));
}

// After an install: kernels are told to look for new packages (packages_generation in the next
// execute), and the sessions that imported a module of an installed distribution are named.
TEST_F(SessionManagerTest, AfterInstallNamesTheSessionsThatImportedAndBumpsTheGeneration) {
  FakeInstaller installer;
  Manager().SetInstaller(&installer);
  // What the installer reports goes back through the manager, which fills in reset_needed.
  auto install = [&](InstallOutcome reported) {
    InstallOutcome seen;
    Manager().Install(InstallRequest{reported.requirement, false, ""},
                      InstallCallbacks{.done = [&](InstallOutcome o) { seen = std::move(o); },
                                       .progress = nullptr});
    installer.pending.back().done(std::move(reported));
    return seen;
  };
  auto a = Execute("a", "import tinypkg");
  auto b = Execute("b", "import json");
  Ready(K(0));
  Ready(K(1));
  EXPECT_FALSE(K(0).sent[0].contains("packages_generation"));
  ReplyWithImports(K(0), LastId(K(0)), {"tinypkg", "json"});
  ReplyWithImports(K(1), LastId(K(1)), {"json"});
  ASSERT_TRUE(a->finished() && b->finished());

  InstallOutcome reported = Installed("tinypkg", "2.0", {"tinypkg"});
  reported.installed[0].replaced = "1.0";
  const InstallOutcome out = install(reported);
  EXPECT_EQ(out.reset_needed, std::vector<std::string>{"a"});
  EXPECT_THAT(out.Summary(), HasSubstr("Session a had already imported tinypkg"));

  auto again = Execute("b", "import tinypkg");
  ASSERT_TRUE(RunUntil([&] { return K(1).sent.size() == 2; }));
  EXPECT_EQ(K(1).sent[1].at("packages_generation"), 1);

  // A failed install changes nothing.
  InstallOutcome error;
  error.status = InstallStatus::kError;
  const InstallOutcome failed = install(error);
  EXPECT_TRUE(failed.reset_needed.empty());
  // A reset session starts with a kernel that has imported nothing.
  EXPECT_TRUE(Manager().Reset("a"));
  const InstallOutcome later = install(Installed("tinypkg", "3.0", {"tinypkg"}));
  EXPECT_TRUE(later.reset_needed.empty());
}

TEST_F(SessionManagerTest, EachCellGoesToTheSessionsNotebookAndALostKernelIsMarked) {
  const std::string path = ".mcp-executor/notebooks/s.ipynb";
  auto call = Execute("s", "print('hi')");
  Ready(K(0));
  Output(K(0), 1, "hi\n");
  ReplyOk(K(0), LastId(K(0)), "42");
  ASSERT_TRUE(call->finished());
  EXPECT_FALSE(fs::exists(base_ / "ws" / path));  // written after the reply, on the loop
  RunFor(kWriteDelayMs + 50);
  json nb = json::parse(ReadWorkspaceFile(path));
  ASSERT_EQ(nb["cells"].size(), 1u);
  EXPECT_EQ(nb["cells"][0]["source"], json({"print('hi')"}));
  EXPECT_EQ(nb["cells"][0]["outputs"][0]["text"], json({"hi\n"}));
  EXPECT_EQ(nb["cells"][0]["outputs"][1]["data"]["text/plain"], json({"42"}));

  auto crash = Execute("s", "crash()");
  ASSERT_TRUE(RunUntil([&] { return K(0).sent.size() == 2; }));
  DeliverExit(K(0), jail::ExitStatus{0, SIGSEGV, false});
  ASSERT_TRUE(crash->finished());
  RunFor(kWriteDelayMs + 50);
  nb = json::parse(ReadWorkspaceFile(path));
  ASSERT_EQ(nb["cells"].size(), 3u);
  EXPECT_EQ(nb["cells"][1]["metadata"]["mcp-executor"]["status"], "killed");
  EXPECT_EQ(nb["cells"][2]["cell_type"], "markdown");
  EXPECT_THAT(nb["cells"][2]["source"][0].get<std::string>(), HasSubstr("SIGSEGV"));

  auto next = Execute("s", "1");
  Ready(K(1));
  ASSERT_TRUE(RunUntil([&] { return K(1).sent.size() == 1; }));
  ReplyOk(K(1), LastId(K(1)));
  ASSERT_TRUE(next->finished());
  EXPECT_TRUE(Manager().Reset("s"));
  RunFor(kWriteDelayMs + 50);
  nb = json::parse(ReadWorkspaceFile(path));
  ASSERT_EQ(nb["cells"].size(), 5u);
  EXPECT_THAT(nb["cells"][4]["source"][0].get<std::string>(), HasSubstr("reset_session"));
}

TEST_F(SessionManagerTest, RecordNotebookFalseWritesNoNotebook) {
  options_.settings.record_notebook = false;
  auto call = Execute("s", "x");
  Ready(K(0));
  ReplyOk(K(0), LastId(K(0)));
  ASSERT_TRUE(call->finished());
  EXPECT_FALSE(fs::exists(base_ / "ws" / ".mcp-executor" / "notebooks"));
}

}  // namespace
}  // namespace mcpx::session
