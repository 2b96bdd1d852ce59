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

std::string json_report(const fs::path& path, unsigned threads, const AnalyzerOptions& analyzer_options = {}) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* memory = open_memstream(&buffer, &size);
  {
    ReportOptions options;
    options.format = Format::json;
    options.out = memory;
    auto reporter = make_reporter(options);
    CaptureOptions capture_options;
    capture_options.read_ahead = threads > 1;  // as the command line does
    CaptureSet capture(capture_options);
    capture.add_path(path.string());
    const RunStats stats = analyze_capture(capture, analyzer_options, *reporter, {}, threads);
    reporter->finish(stats);
  }
  std::fclose(memory);
  std::string text(buffer, size);
  std::free(buffer);
  return std::regex_replace(text, std::regex("\"wall_seconds\":[0-9.e+-]+"), "\"wall_seconds\":0");
}

std::vector<fs::path> inputs() {
  std::vector<fs::path> paths = {fs::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.pcap"};
  for (const std::string& name : manifest_files()) paths.push_back(corpus() / name);
  return paths;
}

TEST(Threads, SameReportWithTwoAndThreeThreadsOnEveryCapture) {
  for (const fs::path& path : inputs()) {
    if (!fs::exists(path)) continue;
    const std::string one = json_report(path, 1);
    EXPECT_NE(one.find("\"type\":\"stats\""), std::string::npos) << path;
    EXPECT_EQ(one, json_report(path, 2)) << path;
    EXPECT_EQ(one, json_report(path, 3)) << path;
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
  fs::remove(path);
  EXPECT_GT(one.size(), 10000u);
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace rstscope::testing
