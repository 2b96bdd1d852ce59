// With --threads 2 the reading runs on its own thread; the report must not change by a byte
// (apart from the time the run took).
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

std::string json_report(const fs::path& path, unsigned threads) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* memory = open_memstream(&buffer, &size);
  {
    ReportOptions options;
    options.format = Format::json;
    options.out = memory;
    auto reporter = make_reporter(options);
    CaptureSet capture;
    capture.add_path(path.string());
    const RunStats stats = analyze_capture(capture, {}, *reporter, {}, threads);
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

TEST(Threads, SameReportWithTwoThreadsOnEveryCapture) {
  for (const fs::path& path : inputs()) {
    if (!fs::exists(path)) continue;
    const std::string one = json_report(path, 1);
    EXPECT_NE(one.find("\"type\":\"stats\""), std::string::npos) << path;
    EXPECT_EQ(one, json_report(path, 2)) << path;
  }
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
