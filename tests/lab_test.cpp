// The lab against the real kernel: every scenario produces the RST it should, with the kernel's
// reason, and the analyzer explains each one from the pcap alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "lab/lab.hpp"

namespace rstscope::lab {
namespace {

// What each scenario must show: a kernel reason among its sent resets, or a RST made outside the
// kernel's sockets (the router's firewall, the forger) that reached the capture.
const std::map<std::string, std::string>& required_evidence() {
  static const std::map<std::string, std::string> table = {
      {"refused", "NO_SOCKET"},
      {"refused_wrong_address", "NO_SOCKET"},
      {"abort", "TCP_STATE"},
      {"abort_unread_data", "TCP_ABORT_ON_CLOSE"},
      {"data_after_close", "TCP_ABORT_ON_DATA"},
      {"half_open", "TCP_FLAGS"},
      {"half_open_restart", "half_open"},
      {"listen_overflow", "INVALID_SYN"},
      {"time_wait_assassination", "TCP_FLAGS"},
      {"middlebox", "firewall"},
      {"idle_timeout", "firewall"},
      {"buffer_overflow", "TCP_ABORT_ON_CLOSE"},
      {"keepalive_timeout", "TCP_KEEPALIVE_TIMEOUT"},
      {"forged", "forger"},
      {"forged_exact", "forger"},
      {"forged_unsigned", "forger"},
      {"forged_in_window", "forger"},
      {"forged_out_of_window", "forger"},
      {"blind_sweep", "forger"},
      {"rst_burst", "forger"},
      {"syn_flood", "pattern"},
  };
  return table;
}

bool has_evidence(const ScenarioResult& result, const std::string& needed) {
  if (needed == "pattern") return !result.expected_patterns.empty() && result.agrees();
  if (needed == "half_open")  // whatever the kernel calls it, its RST must be on the wire and agree
    return std::any_of(result.comparisons.begin(), result.comparisons.end(), [](const Comparison& c) {
      return c.truth.expected == Cause::half_open && c.outcome == Outcome::match;
    });
  if (needed == "firewall" || needed == "forger")
    return std::any_of(result.comparisons.begin(), result.comparisons.end(), [&](const Comparison& c) {
      return c.truth.origin == needed && c.outcome != Outcome::not_on_wire;
    });
  return std::any_of(result.kernel.begin(), result.kernel.end(), [&](const host::KernelReset& r) {
    return r.event == host::KernelReset::Event::send && r.reason == needed;
  });
}

class LabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!lab_supported(skip_reason_)) return;
    LabOptions options;
    run_ = run_lab(options);
  }
  static void TearDownTestSuite() {
    if (run_ && !run_->out_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(run_->out_dir, ec);
    }
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "lab unavailable on this machine: " << skip_reason_;
    ASSERT_TRUE(run_);
    ASSERT_EQ(run_->setup_error, "");
  }
  static std::optional<LabRun> run_;
  static std::string skip_reason_;
};
std::optional<LabRun> LabTest::run_;
std::string LabTest::skip_reason_;

TEST_F(LabTest, EveryScenarioRuns) {
  ASSERT_EQ(run_->results.size(), scenarios().size());
  for (const ScenarioResult& result : run_->results) {
    EXPECT_EQ(result.error, "") << result.name;
    EXPECT_TRUE(std::filesystem::exists(result.pcap)) << result.pcap;
    EXPECT_TRUE(std::filesystem::exists(result.truth_file)) << result.truth_file;
  }
}

// The lab is only ground truth if the kernel says what the scenario claims.
TEST_F(LabTest, KernelReasonsAreTheScenarios) {
  for (const ScenarioResult& result : run_->results) {
    const auto needed = required_evidence().find(result.name);
    ASSERT_NE(needed, required_evidence().end()) << "no expectation for " << result.name;
    EXPECT_TRUE(has_evidence(result, needed->second))
        << result.name << ": expected " << needed->second << "\n" << format_result(result);
  }
}

// For every RST on the wire the lab knows the cause of, the analyzer must name that cause, or
// name one the wire cannot tell apart and list the expected one among its alternatives.
TEST_F(LabTest, AnalyzerAgreesWithKernel) {
  for (const ScenarioResult& result : run_->results) std::printf("%s\n", format_result(result).c_str());
  std::printf("%s", format_table(run_->results).c_str());
  for (const ScenarioResult& result : run_->results) {
    for (const Comparison& row : result.comparisons) {
      if (row.outcome == Outcome::indistinct)
        std::printf("note: %s: the wire alone cannot tell %s from %s (%s); the analyzer lists %s as "
                    "an alternative\n",
                    result.name.c_str(), std::string(to_string(row.truth.expected)).c_str(),
                    std::string(to_string(row.finding.cause)).c_str(), row.truth.why_indistinct.c_str(),
                    std::string(to_string(row.truth.expected)).c_str());
      EXPECT_NE(row.outcome, Outcome::mismatch)
          << result.name << ": RST from " << row.truth.origin << " ("
          << (row.truth.record.reason.empty() ? "no kernel reason" : row.truth.record.reason)
          << ") expected " << to_string(row.truth.expected) << ", analyzer said "
          << (row.found ? std::string(to_string(row.finding.cause)) : std::string("nothing"));
    }
  }
}

// Several labs at once, three rounds with different ports and start offsets: runs must not
// disturb each other (namespaces, nft tables, trace instances are per run).
TEST(LabConcurrency, ParallelRoundsStayIndependent) {
  std::string why;
  if (!lab_supported(why)) GTEST_SKIP() << "lab unavailable on this machine: " << why;
  const std::vector<std::vector<std::string>> groups = {
      {"refused", "abort", "data_after_close", "keepalive_timeout"},
      {"refused_wrong_address", "abort_unread_data", "half_open", "time_wait_assassination"},
      {"listen_overflow", "middlebox", "forged"},
  };
  for (int round = 0; round < 3; ++round) {
    std::vector<LabRun> runs(groups.size());
    std::vector<std::thread> threads;
    for (size_t g = 0; g < groups.size(); ++g) {
      threads.emplace_back([&, g] {
        std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(g) * 70 * round));
        LabOptions options;
        options.names = groups[g];
        options.analyze = false;
        options.serial = (round + static_cast<int>(g)) % 2 == 1;
        runs[g] = run_lab(options);
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (const LabRun& run : runs) {
      EXPECT_EQ(run.setup_error, "") << "round " << round;
      for (const ScenarioResult& result : run.results) {
        EXPECT_EQ(result.error, "") << "round " << round << " " << result.name;
        EXPECT_TRUE(has_evidence(result, required_evidence().at(result.name)))
            << "round " << round << "\n" << format_result(result);
      }
      std::error_code ec;
      std::filesystem::remove_all(run.out_dir, ec);
    }
  }
}

}  // namespace
}  // namespace rstscope::lab
