// The lab's attack scenarios against the real kernel: forged RSTs (exact, exact but unsigned in a
// TCP-MD5 session, in the window, out of the window), a blind sweep through the window, a Great Firewall style burst and a spoofed SYN flood.
// The analyzer must call every injected RST forged, never a genuine one, and find the patterns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "lab/lab.hpp"

namespace rstscope::lab {
namespace {

std::string fmt_evidence(const Finding& finding) {
  std::string text = "evidence:";
  for (const std::string& line : finding.evidence) text += "\n  " + line;
  return text;
}

const std::vector<std::string>& attack_scenarios() {
  static const std::vector<std::string> names = {"forged_exact", "forged_unsigned", "forged_in_window",
                                                 "forged_out_of_window", "blind_sweep", "rst_burst",
                                                 "syn_flood"};
  return names;
}

class LabAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!lab_supported(skip_reason_)) return;
    LabOptions options;
    options.names = attack_scenarios();
    run_ = run_lab(options);
    if (run_->setup_error.empty()) print_table();
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

  static const ScenarioResult& result(const std::string& name) {
    static const ScenarioResult none;
    for (const ScenarioResult& r : run_->results)
      if (r.name == name) return r;
    ADD_FAILURE() << "scenario " << name << " did not run";
    return none;
  }
  static std::vector<const Comparison*> rows(const ScenarioResult& r, const std::string& origin) {
    std::vector<const Comparison*> out;
    for (const Comparison& row : r.comparisons)
      if (row.truth.origin == origin) out.push_back(&row);
    return out;
  }
  static size_t patterns_of(const ScenarioResult& r, const std::string& type, const std::string& pcap) {
    return static_cast<size_t>(std::count_if(r.patterns.begin(), r.patterns.end(), [&](const FoundPattern& p) {
      return p.pattern.type == type && (pcap.empty() || p.pcap == pcap);
    }));
  }

  // One line per scenario: injected RSTs on the wire and how many the analyzer called forged,
  // genuine RSTs and how many it (wrongly) called forged, the patterns found.
  static void print_table() {
    std::printf("%-22s %9s %7s %8s %15s  %s\n", "scenario", "injected", "forged", "genuine",
                "genuine-forged", "patterns (capture)");
    for (const ScenarioResult& r : run_->results) {
      size_t injected = 0, forged = 0, genuine = 0, genuine_forged = 0;
      for (const Comparison& row : r.comparisons) {
        if (!row.found) continue;
        const bool called_forged = row.finding.cause == Cause::forged;
        if (row.truth.origin == "forger") {
          ++injected;
          forged += called_forged ? 1 : 0;
        } else {
          ++genuine;
          genuine_forged += called_forged ? 1 : 0;
        }
      }
      std::map<std::string, size_t> counts;
      for (const FoundPattern& p : r.patterns)
        ++counts[p.pattern.type + " (" + std::filesystem::path(p.pcap).filename().string() + ")"];
      std::string patterns;
      for (const auto& [what, count] : counts) patterns += (patterns.empty() ? "" : ", ") + std::to_string(count) + "x " + what;
      std::printf("%-22s %9zu %7zu %8zu %15zu  %s\n", r.name.c_str(), injected, forged, genuine, genuine_forged,
                  patterns.empty() ? "-" : patterns.c_str());
    }
    std::printf("%s", format_table(run_->results).c_str());
  }

  static std::optional<LabRun> run_;
  static std::string skip_reason_;
};
std::optional<LabRun> LabAttackTest::run_;
std::string LabAttackTest::skip_reason_;

TEST_F(LabAttackTest, EveryAttackScenarioRunsAndAgrees) {
  ASSERT_EQ(run_->results.size(), attack_scenarios().size());
  for (const ScenarioResult& r : run_->results) {
    EXPECT_EQ(r.error, "") << r.name;
    EXPECT_TRUE(std::filesystem::exists(r.pcap)) << r.pcap;
    EXPECT_TRUE(r.agrees()) << format_result(r);
  }
}

// Every injected RST reached the capture and is called forged; no genuine RST is.
TEST_F(LabAttackTest, InjectedResetsAreForgedAndGenuineOnesAreNot) {
  const std::map<std::string, size_t> injected = {{"forged_exact", 1}, {"forged_unsigned", 1}, {"forged_in_window", 1},
                                                  {"forged_out_of_window", 1}, {"blind_sweep", 40},
                                                  {"rst_burst", 3}};
  for (const auto& [name, count] : injected) {
    const ScenarioResult& r = result(name);
    const auto forger = rows(r, "forger");
    EXPECT_EQ(forger.size(), count) << name;
    for (const Comparison* row : forger) {
      ASSERT_TRUE(row->found) << name << ": an injected RST is missing from the capture\n" << format_result(r);
      EXPECT_EQ(row->finding.cause, Cause::forged) << name << " frame " << row->finding.frame;
      EXPECT_EQ(row->finding.sender, Sender::offpath) << name << " frame " << row->finding.frame;
    }
    for (const Comparison* row : rows(r, "kernel")) {
      if (!row->found) continue;
      EXPECT_NE(row->finding.cause, Cause::forged)
          << name << ": the server's own RST (" << row->truth.record.reason << ") called forged";
      EXPECT_EQ(row->finding.cause, Cause::half_open) << name;
    }
  }
  // The accepted forgeries leave the server without the connection; its kernel then resets the client.
  for (const char* name : {"forged_exact", "rst_burst"}) EXPECT_FALSE(rows(result(name), "kernel").empty()) << name;
  // The connection survives the others (RFC 5961; RFC 2385 for the unsigned one): no genuine RST at all.
  for (const char* name : {"forged_unsigned", "forged_in_window", "forged_out_of_window", "blind_sweep"})
    EXPECT_TRUE(rows(result(name), "kernel").empty()) << name << "\n" << format_result(result(name));
}

// Each forged verdict rests on the signature the scenario was built to show.
TEST_F(LabAttackTest, ForgedEvidenceNamesTheSignature) {
  const auto evidence_has = [](const Finding& finding, const std::string& words) {
    return std::any_of(finding.evidence.begin(), finding.evidence.end(),
                       [&](const std::string& line) { return line.find(words) != std::string::npos; });
  };
  const auto first_forged = [&](const std::string& name) -> const Finding* {
    for (const Comparison* row : rows(result(name), "forger"))
      if (row->found) return &row->finding;
    return nullptr;
  };
  const Finding* in_window = first_forged("forged_in_window");
  ASSERT_NE(in_window, nullptr);
  EXPECT_EQ(in_window->seq_check, SeqCheck::in_window);
  EXPECT_TRUE(evidence_has(*in_window, "challenge ACK")) << fmt_evidence(*in_window);

  const Finding* out_of_window = first_forged("forged_out_of_window");
  ASSERT_NE(out_of_window, nullptr);
  EXPECT_EQ(out_of_window->seq_check, SeqCheck::out_of_window);
  EXPECT_TRUE(evidence_has(*out_of_window, "outside the receiver's window")) << fmt_evidence(*out_of_window);

  const Finding* exact = first_forged("forged_exact");
  ASSERT_NE(exact, nullptr);
  EXPECT_EQ(exact->seq_check, SeqCheck::exact);
  EXPECT_TRUE(evidence_has(*exact, "kept sending its own stream")) << fmt_evidence(*exact);

  // The kernel signed the session's segments with TCP-MD5; the forger's exact RST was not.
  const Finding* unsigned_rst = first_forged("forged_unsigned");
  ASSERT_NE(unsigned_rst, nullptr);
  EXPECT_EQ(unsigned_rst->seq_check, SeqCheck::exact);
  EXPECT_TRUE(evidence_has(*unsigned_rst, "were signed (TCP-MD5 or TCP-AO) and this RST is not"))
      << fmt_evidence(*unsigned_rst);
  EXPECT_NE(unsigned_rst->explanation.find("unsigned RST"), std::string::npos) << unsigned_rst->explanation;

  // The burst's first RST (the one whose window the next two step from) names the injector.
  // Taken from all findings: the truth file's times come from the injector, and may sit
  // closer to the second RST of the burst than to the first.
  const Finding* burst = nullptr;
  for (const Finding& finding : result("rst_burst").findings)
    if (finding.cause == Cause::forged && (burst == nullptr || finding.frame < burst->frame)) burst = &finding;
  ASSERT_NE(burst, nullptr);
  EXPECT_NE(burst->injector.find("Great Firewall"), std::string::npos) << burst->injector;
  EXPECT_TRUE(evidence_has(*burst, "windows 2051, 2052, 2053")) << fmt_evidence(*burst);
}

TEST_F(LabAttackTest, BlindSweepIsOneAttackNotSeveral) {
  const ScenarioResult& sweep = result("blind_sweep");
  EXPECT_EQ(patterns_of(sweep, "blind_reset_attack", sweep.pcap), 1u) << format_result(sweep);
  // A single forged RST or a three-RST burst is below blind_reset_min (8).
  for (const char* name : {"forged_exact", "forged_unsigned", "forged_in_window", "forged_out_of_window", "rst_burst"})
    EXPECT_EQ(patterns_of(result(name), "blind_reset_attack", ""), 0u) << name;
}

// The victim's link shows the half-open pile (syn_flood); the spoofed addresses' link shows the
// SYN/ACKs they never asked for (backscatter, one finding per spoofed address: 8 x 50).
TEST_F(LabAttackTest, SynFloodAndItsBackscatter) {
  const ScenarioResult& flood = result("syn_flood");
  ASSERT_EQ(flood.extra_pcaps.size(), 1u);
  const std::string& telescope = flood.extra_pcaps.front();
  EXPECT_EQ(patterns_of(flood, "syn_flood", flood.pcap), 1u) << format_result(flood);
  EXPECT_EQ(patterns_of(flood, "backscatter", telescope), 8u) << format_result(flood);
  for (const FoundPattern& p : flood.patterns) {
    if (p.pattern.type == "syn_flood") {
      EXPECT_GE(p.pattern.count, 100u);
      EXPECT_NE(p.pattern.parties.find("203.0.113."), std::string::npos) << p.pattern.parties;
    }
    if (p.pattern.type == "backscatter") {
      EXPECT_EQ(p.pattern.subject.rfind("203.0.113.", 0), 0u);
    }
  }
  // Where the spoofed SYNs are on the wire, the analyzer does not call their SYN/ACKs backscatter:
  // it defines backscatter as SYN/ACKs toward an address whose SYN the capture never showed.
  EXPECT_EQ(patterns_of(flood, "backscatter", flood.pcap), 0u);
  // No RST at all in a SYN flood toward a listening service.
  EXPECT_TRUE(flood.comparisons.empty()) << format_result(flood);
}

}  // namespace
}  // namespace rstscope::lab
