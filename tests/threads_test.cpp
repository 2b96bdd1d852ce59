// With --threads N the connections are sharded over N trackers and their reports merged back;
// the report must not change by a byte (apart from the time the run took).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "report/report.hpp"
#include "scenario.hpp"
#include "support.hpp"

namespace rstscope::testing {
namespace {

namespace fs = std::filesystem;

std::string json_report(const fs::path& path, unsigned threads, const AnalyzerOptions& analyzer_options = {},
                        RunStats* run_stats = nullptr) {
  ReportOptions options;
  options.format = Format::json;
  const std::string text = render(options, [&](Reporter& reporter) {
    CaptureOptions capture_options;
    capture_options.read_ahead = threads > 1;  // as the command line does
    CaptureSet capture(capture_options);
    capture.add_path(path.string());
    const RunStats stats = analyze_capture(capture, analyzer_options, reporter, {}, threads);
    reporter.finish(stats);
    if (run_stats != nullptr) *run_stats = stats;
  });
  return std::regex_replace(text, std::regex("\"wall_seconds\":[0-9.e+-]+"), "\"wall_seconds\":0");
}

std::vector<fs::path> inputs() {
  std::vector<fs::path> paths = {fs::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.pcap"};
  for (const std::string& name : manifest_files()) paths.push_back(corpus() / name);
  return paths;
}

// Two threads follow every connection on one tracker beside the reader; three and four split
// them into two and three shards.
TEST(Threads, SameReportWithTwoThreeAndFourThreadsOnEveryCapture) {
  for (const fs::path& path : inputs()) {
    if (!fs::exists(path)) continue;
    const std::string one = json_report(path, 1);
    EXPECT_NE(one.find("\"type\":\"stats\""), std::string::npos) << path;
    EXPECT_EQ(one, json_report(path, 2)) << path;
    EXPECT_EQ(one, json_report(path, 3)) << path;
    EXPECT_EQ(one, json_report(path, 4)) << path;
  }
}

// Many connections over many ticks, written to a temporary capture file.
class GeneratedCapture {
 public:
  explicit GeneratedCapture(const Scenario& scenario)
      : path_(fs::temp_directory_path() / ("rstscope-threads-" + std::to_string(::getpid()) + ".pcap")) {
    std::ofstream file(path_, std::ios::binary);
    file.write(reinterpret_cast<const char*>(scenario.bytes().data()),
               static_cast<std::streamsize>(scenario.bytes().size()));
  }
  ~GeneratedCapture() { fs::remove(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Connections that go idle and come back, RSTs whose horizon passes mid-capture, ports reused:
// with short timeouts, ticks end connections and judge RSTs in every shard at once, and the
// merge has to put them back in the one-thread order.
TEST(Threads, SameReportWhenTicksEndConnectionsInEveryShard) {
  Scenario scenario;
  std::vector<Scenario::Connection*> idle;
  for (int i = 0; i < 4000; ++i) {
    const bool v6 = i % 2 == 1;
    auto& c = scenario.connect(v6 ? "2001:db8::10" : "192.0.2.10", static_cast<uint16_t>(20000 + i % 1500),
                               v6 ? (i % 3 == 0 ? "2001:db8:1::20" : "2001:db8:1::21")
                                  : (i % 3 == 0 ? "198.51.100.20" : "198.51.100.21"),
                               443);
    c.client.syn();
    if (i % 11 == 0) {
      c.server.rst_ack();  // refused, and the 4-tuple comes back later
      continue;
    }
    c.server.synack();
    c.client.ack();
    c.client.data(100);
    if (i % 5 == 0) {
      idle.push_back(&c);
    } else if (i % 7 == 0) {
      c.server.rst_ack();
    } else {
      c.server.data(200);
      c.client.fin();
      c.server.fin();
      c.client.ack();
    }
  }
  for (Scenario::Connection* c : idle) {
    c->client.data(10);  // long after: their connections were ended as idle
    c->server.rst_ack();
  }
  const GeneratedCapture capture(scenario);
  AnalyzerOptions options;
  options.idle_timeout_ns = 2'000'000'000;
  options.horizon_ns = 100'000'000;
  const std::string one = json_report(capture.path(), 1, options);
  EXPECT_GT(one.size(), 10000u);
  EXPECT_EQ(one.find("\"evicted_idle\":0,"), std::string::npos) << "no connection was ended as idle";
  EXPECT_EQ(one, json_report(capture.path(), 2, options));
  EXPECT_EQ(one, json_report(capture.path(), 4, options));
}

// Every connection is reset and still in the table when the capture ends: the last tick ends
// thousands of them in each shard, more than one log holds, so each shard's log goes on in the
// next and the merge has to follow them across logs.
TEST(Threads, SameReportWhenATickEndsMoreConnectionsThanALogHolds) {
  Scenario scenario;
  for (int i = 0; i < 6000; ++i) {
    const bool v6 = i % 4 == 3;
    auto& c = scenario.connect(v6 ? "2001:db8::10" : "192.0.2.10", static_cast<uint16_t>(10000 + i),
                               v6 ? "2001:db8:1::20" : "198.51.100.20", static_cast<uint16_t>(i % 3 == 0 ? 25 : 443));
    c.client.syn();
    c.server.synack();
    c.client.ack();
    c.client.data(100);
    if (i % 2 == 0) {
      c.server.rst_ack();
    } else {
      c.client.rst_ack();
    }
  }
  const GeneratedCapture capture(scenario);
  const std::string one = json_report(capture.path(), 1);
  // One connection summary per connection, each after its reset.
  size_t summaries = 0;
  for (size_t at = one.find("\"type\":\"connection\""); at != std::string::npos;
       at = one.find("\"type\":\"connection\"", at + 1)) {
    ++summaries;
  }
  EXPECT_EQ(summaries, 6000u);
  EXPECT_EQ(one, json_report(capture.path(), 2));
  EXPECT_EQ(one, json_report(capture.path(), 3));
  EXPECT_EQ(one, json_report(capture.path(), 4));
}

TEST(Threads, SameReportOnAGeneratedCaptureLargerThanABatch) {
  Scenario scenario;
  for (int i = 0; i < 3000; ++i) {
    auto& c = scenario.connect("192.0.2.10", static_cast<uint16_t>(10000 + i), "198.51.100.20", 80);
    c.client.syn();
    c.server.synack();
    c.client.ack();
    c.client.data(100);
    if (i % 7 == 0) {
      c.server.rst_ack();
    } else {
      c.server.data(200);
      c.client.fin();
      c.server.fin();
      c.client.ack();
    }
  }
  const fs::path path = fs::temp_directory_path() / ("rstscope-threads-" + std::to_string(::getpid()) + ".pcap");
  {
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(scenario.bytes().data()), static_cast<std::streamsize>(scenario.bytes().size()));
  }
  const std::string one = json_report(path, 1);
  const std::string two = json_report(path, 2);
  const std::string three = json_report(path, 3);
  fs::remove(path);
  EXPECT_GT(one.size(), 10000u);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

// A flood of blind RSTs beside ordinary connections that are reset, some of which go on: with a
// small cap on waiting RSTs, ticks judge RSTs early in every shard, up to the same frame as one
// tracker would.
TEST(Threads, SameReportWhenTheCapOnWaitingResetsJudgesThemEarly) {
  Scenario scenario;
  for (int i = 0; i < 12000; ++i) {
    auto& blind = scenario.connect(i % 2 == 0 ? "203.0.113.9" : "2001:db8:9::9", static_cast<uint16_t>(1024 + i),
                                   i % 2 == 0 ? "198.51.100.20" : "2001:db8:1::20", 443);
    blind.client.rst(static_cast<uint32_t>(i) * 7919u);
    if (i % 40 == 0) {
      auto& c = scenario.connect("192.0.2.10", static_cast<uint16_t>(30000 + i), "198.51.100.21", 80);
      c.client.syn();
      c.server.synack();
      c.client.ack();
      c.client.data(100);
      if (i % 80 == 0) {
        c.server.rst_ack();
      } else {
        c.server.spoof(tcp_flag::rst | tcp_flag::ack, c.server.next(), c.client.next(), 64);
        c.server.data(300);  // goes on: forged, if the RST waits long enough to see it
        c.client.ack();
      }
    }
  }
  const GeneratedCapture capture(scenario);
  AnalyzerOptions options;
  options.max_waiting_resets = 500;
  RunStats stats;
  const std::string one = json_report(capture.path(), 1, options, &stats);
  EXPECT_GT(stats.track.resets_judged_early, 5000u);
  EXPECT_EQ(one, json_report(capture.path(), 2, options));
  EXPECT_EQ(one, json_report(capture.path(), 3, options));
  EXPECT_EQ(one, json_report(capture.path(), 4, options));
}

// Idle connections are kept compact and restored whole by their next packet: only memory may
// depend on it. Compacting every connection at every tick must give the same report as never.
AnalyzerOptions compaction(int64_t after_ns) {
  AnalyzerOptions options;
  options.compaction.closing_after_ns = after_ns;
  options.compaction.embryonic_after_ns = after_ns;
  options.compaction.active_after_ns = after_ns;
  return options;
}

TEST(Compaction, SameReportWhenEveryIdleConnectionIsCompactedOnEveryCapture) {
  uint64_t compacted = 0, restored = 0;
  for (const fs::path& path : inputs()) {
    if (!fs::exists(path)) continue;
    RunStats never_stats, always_stats;
    const std::string never = json_report(path, 1, compaction(-1), &never_stats);
    EXPECT_EQ(never_stats.track.compacted, 0u) << path;
    EXPECT_EQ(never, json_report(path, 1, compaction(0), &always_stats)) << path;
    EXPECT_EQ(never, json_report(path, 2, compaction(0))) << path;
    EXPECT_EQ(never, json_report(path, 3, compaction(0))) << path;
    compacted += always_stats.track.compacted;
    restored += always_stats.track.restored;
  }
  // The counts below need the shared corpus; the sample alone is too short for them (its report
  // was still compared above).
  if (manifest_files().empty()) GTEST_SKIP() << "the shared capture corpus is absent";
  // Most shared captures are short (a tick comes every 8192 segments or second of capture).
  EXPECT_GT(compacted, 300u);
  EXPECT_GT(restored, 30u) << compacted;
}

// Connections compacted while open, closed, half-open or refused, then brought back by data, a
// late RST on a closed connection, a reused port or the idle timeout; IPv4 and IPv6.
TEST(Compaction, SameReportWhenCompactConnectionsComeBackExpireAndAreReused) {
  Scenario scenario;
  std::vector<Scenario::Connection*> later;
  for (int i = 0; i < 3000; ++i) {
    const bool v6 = i % 2 == 1;
    auto& c = scenario.connect(v6 ? "2001:db8::10" : "192.0.2.10", static_cast<uint16_t>(20000 + i % 1000),
                               v6 ? "2001:db8:1::20" : "198.51.100.20", static_cast<uint16_t>(443 + i % 3));
    c.client.syn();
    if (i % 13 == 0) continue;  // half-open
    if (i % 11 == 0) {
      c.server.rst_ack();  // refused, and the 4-tuple comes back later
      continue;
    }
    c.server.synack();
    c.client.ack();
    c.client.data(100);
    if (i % 5 == 0) {
      later.push_back(&c);  // idle while open
    } else if (i % 7 == 0) {
      c.server.rst_ack();
    } else {
      c.server.data(200);
      c.client.fin();
      c.server.fin();
      c.client.ack();
      if (i % 3 == 0) later.push_back(&c);  // closed, then a late RST
    }
  }
  for (Scenario::Connection* c : later) {
    c->client.data(10);
    c->server.rst_ack();
  }
  const GeneratedCapture capture(scenario);
  for (const int64_t idle_timeout_ns : {int64_t{2'000'000'000}, int64_t{900'000'000'000}}) {
    AnalyzerOptions never = compaction(-1), always = compaction(0);
    never.idle_timeout_ns = always.idle_timeout_ns = idle_timeout_ns;
    never.horizon_ns = always.horizon_ns = 100'000'000;
    RunStats stats;
    const std::string one = json_report(capture.path(), 1, never);
    EXPECT_GT(one.size(), 10000u);
    EXPECT_EQ(one, json_report(capture.path(), 1, always, &stats));
    EXPECT_GT(stats.track.compacted, 1000u);
    EXPECT_GT(stats.track.restored, 500u);
    EXPECT_EQ(one, json_report(capture.path(), 3, always));
    AnalyzerOptions usual;  // the default compaction
    usual.idle_timeout_ns = idle_timeout_ns;
    usual.horizon_ns = never.horizon_ns;
    EXPECT_EQ(one, json_report(capture.path(), 1, usual));
  }
}

}  // namespace
}  // namespace rstscope::testing
