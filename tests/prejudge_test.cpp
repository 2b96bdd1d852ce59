// A RST's judgement in two parts: the prejudgement (the rules against the RST, its connection
// and the observations) and the rest. With several threads, the RSTs judged at the end of the
// capture are prejudged on the trackers' threads, ahead of the rest of their judgement and of the
// judgements before them. That must judge exactly as judge() does, one RST after another.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "diagnose/diagnoser.hpp"
#include "support.hpp"

namespace rstscope::testing {
namespace {

namespace fs = std::filesystem;

// Feeds a Diagnoser, but keeps the RSTs to judge for later (without ticks, the tracker judges
// every RST when it finishes, after the connections it ends then).
class KeepingSink final : public TrackerSink {
 public:
  explicit KeepingSink(Diagnoser& diagnoser) : diagnoser_(diagnoser) {}
  void host_packet(const Address& address, uint8_t ttl) override { diagnoser_.host_packet(address, ttl); }
  void service_accepted(const Segment& synack) override { diagnoser_.service_accepted(synack); }
  void ended(const Connection& connection) override { diagnoser_.ended(connection); }
  bool wants(const Connection& connection) const override { return diagnoser_.wants(connection); }
  void judge(ResetContext& context) override { kept.push_back(std::move(context)); }
  std::vector<ResetContext> kept;

 private:
  Diagnoser& diagnoser_;
};

// The JSON findings of `path` through a tracker and a Diagnoser, fed directly or with every
// judgement in two parts.
std::string findings(const fs::path& path, bool two_parts, uint64_t* judged = nullptr) {
  ReportOptions options;
  options.format = Format::json;
  return render(options, [&](Reporter& reporter) {
    const AnalyzerOptions analyzer_options;
    Diagnoser diagnoser(analyzer_options.thresholds, reporter);
    KeepingSink keeping(diagnoser);
    Tracker tracker(tracker_options(analyzer_options, 1),
                    two_parts ? static_cast<TrackerSink&>(keeping) : static_cast<TrackerSink&>(diagnoser));
    tracker.finish(track_file(path, tracker));
    // Every prejudgement first, last RST first, then the rest of each judgement in order.
    std::vector<Prejudgement> prejudged(keeping.kept.size());
    for (size_t i = keeping.kept.size(); i-- > 0;) diagnoser.prejudge(keeping.kept[i], prejudged[i]);
    for (size_t i = 0; i < keeping.kept.size(); ++i) diagnoser.judge(keeping.kept[i], prejudged[i]);
    diagnoser.finish();
    reporter.finish(RunStats{});
    if (judged != nullptr) *judged = keeping.kept.size();
  });
}

TEST(Prejudge, TwoPartJudgementIsTheSameOnEveryCapture) {
  std::vector<fs::path> paths = {fs::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.pcap"};
  for (const std::string& name : manifest_files()) paths.push_back(corpus() / name);
  uint64_t judged_in_all = 0;
  for (const fs::path& path : paths) {
    if (!fs::exists(path)) continue;
    uint64_t judged = 0;
    const std::string two_parts = findings(path, true, &judged);
    EXPECT_EQ(findings(path, false), two_parts) << path;
    judged_in_all += judged;
  }
  // The bundled sample alone has RSTs of every kind.
  EXPECT_GT(judged_in_all, 10u);
}

}  // namespace
}  // namespace rstscope::testing
