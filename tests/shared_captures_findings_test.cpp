// Every real capture in the shared corpus, analysed whole: one finding per RST that tshark
// counts, plausible verdicts where the capture's origin says what happened, and no false alarms.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "decode/decode.hpp"
#include "scenario.hpp"
#include "support.hpp"

namespace rstscope::testing {
namespace {

namespace fs = std::filesystem;

using testing::corpus;

std::vector<std::string> capture_names() { return manifest_files(); }

std::vector<uint64_t> tshark_rst_frames(const std::string& name) {
  std::vector<uint64_t> frames;
  std::ifstream tsv(corpus() / (name + ".tshark-rst.tsv"));
  std::string line;
  std::getline(tsv, line);
  while (std::getline(tsv, line)) {
    if (!line.empty()) frames.push_back(std::stoull(line.substr(0, line.find('\t'))));
  }
  return frames;
}

Collected analyze(const fs::path& path, RunStats* stats = nullptr) {
  CaptureSet capture;
  capture.add_path(path.string());
  Collected collected;
  const RunStats run = analyze_capture(capture, {}, collected);
  if (stats != nullptr) *stats = run;
  return collected;
}

class SharedCaptureFindings : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(corpus() / "MANIFEST.tsv")) GTEST_SKIP() << "the shared capture corpus is not beside the project";
  }
};

TEST_F(SharedCaptureFindings, OneFindingPerTsharkRstAndNoInputErrors) {
  const auto names = capture_names();
  ASSERT_GE(names.size(), 30u);
  uint64_t total = 0;
  for (const std::string& name : names) {
    RunStats stats;
    const Collected out = analyze(corpus() / name, &stats);
    EXPECT_TRUE(stats.capture.errors.empty()) << name << ": " << stats.capture.errors.front().message;
    std::vector<uint64_t> frames;
    for (const Finding& finding : out.resets) {
      frames.push_back(finding.frame);
      EXPECT_FALSE(finding.explanation.empty()) << name << " frame " << finding.frame;
      EXPECT_FALSE(finding.evidence.empty()) << name << " frame " << finding.frame;
      EXPECT_FALSE(finding.history.empty()) << name << " frame " << finding.frame;
    }
    EXPECT_TRUE(std::is_sorted(frames.begin(), frames.end())) << name << ": findings out of time order";
    EXPECT_EQ(frames, tshark_rst_frames(name)) << name;
    total += frames.size();
  }
  std::printf("shared corpus: %zu captures, %llu RST findings, all matching tshark\n", names.size(),
              static_cast<unsigned long long>(total));
}

struct Expected {
  const char* capture;
  uint64_t frame;  // 0: every RST in the capture
  Cause cause;
};

// What each capture's origin (MANIFEST notes, the peers' baselines) says these RSTs are.
const Expected expected_verdicts[] = {
    {"zeek__pop3.pcap", 0, Cause::refused},
    {"zeek__attr.pcap", 0, Cause::refused},
    {"zeek__http-desync-request-response-5.pcap", 2, Cause::refused},
    {"tcpdump__of13_ericsson.pcapng", 14, Cause::refused},
    {"tcpdump__of13_ericsson.pcapng", 26, Cause::data_after_close},
    {"zeek__rst-inject-rae.pcap", 2, Cause::forged},
    {"suricata-verify__bug-3286-02-linux-evasion__with_evasion_linux.pcap", 2, Cause::forged},
    {"tcpdump__tcp_rst_data.pcap", 1, Cause::middlebox},
    {"suricata-verify__bug-2769__issue_no_icmp.pcap", 31, Cause::middlebox},
    {"suricata-verify__bug-2769__issue_no_icmp.pcap", 34, Cause::middlebox},
    {"suricata-verify__tls-certs-alert__input.pcap", 0, Cause::data_after_close},
    {"zeek__ipv6-violation.pcap", 0, Cause::data_after_close},
    {"zeek__irc-starttls.pcap", 0, Cause::data_after_close},
    {"zeek__qi_internet_SYNACK_curl_jsonip.pcap", 0, Cause::data_after_close},
    {"zeek__syn-then-ack-then-rst.pcap", 3, Cause::half_open},
    {"zeek__206_example_b.pcap", 1302, Cause::abort},
    {"zeek__single-rst.pcap", 1, Cause::unexplained},
    {"zeek__Teredo.pcap", 51, Cause::middlebox},
};

TEST_F(SharedCaptureFindings, VerdictsMatchWhatTheCapturesAreKnownToShow) {
  std::map<std::string, Collected> cache;
  for (const Expected& expected : expected_verdicts) {
    auto entry = cache.find(expected.capture);
    if (entry == cache.end()) entry = cache.emplace(expected.capture, analyze(corpus() / expected.capture)).first;
    const Collected& out = entry->second;
    size_t checked = 0;
    for (const Finding& finding : out.resets) {
      if (expected.frame != 0 && finding.frame != expected.frame) continue;
      ++checked;
      EXPECT_EQ(to_string(finding.cause), to_string(expected.cause))
          << expected.capture << " frame " << finding.frame << ": " << finding.explanation;
    }
    EXPECT_GT(checked, 0u) << expected.capture << " frame " << expected.frame;
  }
}

// Captures whose RSTs are injected or part of an attack; every other capture is benign.
const std::set<std::string> attack_captures = {
    "zeek__rst-inject-rae.pcap",
    "suricata-verify__bug-3286-02-linux-evasion__with_evasion_linux.pcap",
    "suricata-verify__security-4710-01__input.pcap",  // RST-then-data evasion test
    "stopddos__amp.TCP.reflection.SYNACK.pcap",
};

TEST_F(SharedCaptureFindings, NoForgedOrAttackFindingsOnBenignCaptures) {
  for (const std::string& name : capture_names()) {
    if (attack_captures.count(name) != 0) continue;
    const Collected out = analyze(corpus() / name);
    for (const Finding& finding : out.resets) {
      EXPECT_NE(finding.cause, Cause::forged) << name << " frame " << finding.frame << ": " << finding.explanation;
    }
    for (const PatternFinding& pattern : out.patterns) {
      EXPECT_TRUE(pattern.type == "port_scan") << name << ": " << pattern.type << " " << pattern.explanation;
    }
  }
}

TEST_F(SharedCaptureFindings, ReflectionAttackShowsBackscatterAndRstFlood) {
  const Collected out = analyze(corpus() / "stopddos__amp.TCP.reflection.SYNACK.pcap");
  EXPECT_TRUE(out.has_pattern("backscatter"));
  EXPECT_TRUE(out.has_pattern("rst_flood"));
  for (const PatternFinding& pattern : out.patterns) EXPECT_EQ(pattern.subject, "10.10.10.10");
}

// The bundled sample was captured by the lab on the real kernel; its truth file holds the
// kernel's reason for every RST. The analyzer must name that cause, or list it as an
// alternative where the truth file says the wire cannot tell them apart.
TEST(BundledSample, AgreesWithTheKernelsReasons) {
  const fs::path sample = fs::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.pcap";
  const Collected out = analyze(sample);
  std::vector<Segment> wire;  // every RST segment, straight from decode
  {
    CaptureSet capture;
    capture.add_path(sample.string());
    Packet packet;
    Segment segment;
    DecodeStats decode_stats;
    while (capture.next(packet)) {
      if (decode(packet, segment, decode_stats) == DecodeResult::tcp && segment.has(tcp_flag::rst)) {
        segment.payload = nullptr;
        wire.push_back(segment);
      }
    }
  }
  std::ifstream truth(fs::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.truth.tsv");
  std::string line;
  std::getline(truth, line);
  size_t rows = 0, agreed = 0;
  while (std::getline(truth, line)) {
    std::vector<std::string> fields;
    std::stringstream stream(line);
    for (std::string field; std::getline(stream, field, '\t');) fields.push_back(field);
    ASSERT_GE(fields.size(), 10u) << line;
    const int64_t ts_ns = std::stoll(fields[1]);
    const Address source = address(fields[2].c_str());
    const auto port = static_cast<uint16_t>(std::stoi(fields[3]));
    const auto expected = cause_from_string(fields[8]);
    ASSERT_TRUE(expected.has_value()) << fields[8];
    // The lab also records RSTs the kernel sent that its router dropped (half_open's first).
    const Address destination = address(fields[4].c_str());
    const auto destination_port = static_cast<uint16_t>(std::stoi(fields[5]));
    const bool on_wire = std::any_of(wire.begin(), wire.end(), [&](const Segment& segment) {
      return segment.src == source && segment.sport == port && std::llabs(segment.ts_ns - ts_ns) < 50'000'000 &&
             (destination_port == 0 || (segment.dst == destination && segment.dport == destination_port));
    });
    if (!on_wire) continue;
    ++rows;
    bool found = false;
    for (const Finding& finding : out.resets) {
      if (!(finding.src == source) || finding.sport != port) continue;
      if (std::llabs(finding.ts_ns - ts_ns) > 50'000'000) continue;
      const bool alternative = std::find(finding.alternatives.begin(), finding.alternatives.end(), *expected) !=
                               finding.alternatives.end();
      const bool indistinct = fields[9] != "-" && fields[9].find(to_string(finding.cause)) != std::string::npos;
      if (finding.cause == *expected || (indistinct && alternative)) found = true;
    }
    if (found) ++agreed;
    EXPECT_TRUE(found) << "no finding agrees with: " << line;
  }
  std::printf("bundled sample: %zu of %zu kernel-reported RSTs agree\n", agreed, rows);
  EXPECT_GE(rows, 20u);
}

}  // namespace
}  // namespace rstscope::testing
