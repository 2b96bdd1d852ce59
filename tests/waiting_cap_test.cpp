// RSTs wait for their horizon to see what follows them. In a flood of them, the cap on waiting
// RSTs (--max-waiting-resets) judges the oldest early, so memory stays bounded even when the
// capture's clock does not move at all.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "diagnose/analyzer.hpp"
#include "scenario.hpp"

namespace rstscope::testing {
namespace {

class CountingSink final : public FindingSink {
 public:
  void reset(const Finding&) override { ++resets; }
  void connection(const ConnectionSummary&) override {}
  void pattern(const PatternFinding&) override {}
  uint64_t resets = 0;
};

// A blind RST from a spoofed source toward one service.
Segment blind_rst(uint64_t frame, int64_t ts_ns) {
  Segment segment;
  segment.frame = frame;
  segment.ts_ns = ts_ns;
  const uint32_t source = 0xcb007100u + static_cast<uint32_t>(frame % 200);  // 203.0.113.0/24
  segment.src = Address::v4(source);
  segment.dst = Address::v4(0xc6336414u);  // 198.51.100.20
  segment.sport = static_cast<uint16_t>(1024 + frame % 60000);
  segment.dport = 443;
  segment.seq = static_cast<uint32_t>(frame * 2654435761u);
  segment.flags = tcp_flag::rst;
  segment.ttl = 50;
  return segment;
}

// The cap keeps only the low 32 bits of each RST's frame: the frame it names must still be the
// whole one, across a wrap of those bits, and between RSTs far apart.
TEST(ResetCap, NamesTheFrameCapPlacesBackAcrossTheWrapOf32Bits) {
  ResetCap cap(3);
  std::vector<uint64_t> frames;
  Segment other = blind_rst(1, 0);
  other.flags = tcp_flag::ack;
  for (uint64_t frame = (uint64_t{5} << 32) - 6; frame < (uint64_t{5} << 32) + 6; frame += 1) {
    cap.seen(other);  // not a RST: not counted
    Segment rst = blind_rst(frame, 0);
    cap.seen(rst);
    frames.push_back(frame);
    EXPECT_EQ(cap.cut_frame(), frames.size() > 3 ? frames[frames.size() - 4] : 0) << frame;
  }
  // Far apart, but fewer than 2^32 frames: 4,000,000,000 frames after the last.
  const uint64_t later = frames.back() + 4'000'000'000u;
  cap.seen(blind_rst(later, 0));
  frames.push_back(later);
  EXPECT_EQ(cap.cut_frame(), frames[frames.size() - 4]);
}

// The largest cap the command line takes (2^64 - 1) never cuts, and never divides by zero.
TEST(ResetCap, TheLargestCapNeverCuts) {
  ResetCap cap(UINT64_MAX);
  for (uint64_t frame = 1; frame <= 100; ++frame) cap.seen(blind_rst(frame, 0));
  EXPECT_EQ(cap.cut_frame(), 0u);
  ResetCap none(0);  // taken as 1
  none.seen(blind_rst(7, 0));
  none.seen(blind_rst(9, 0));
  EXPECT_EQ(none.cut_frame(), 7u);
}

TEST(WaitingCap, HoldsWhenTheClockNeverMoves) {
  constexpr uint64_t cap = 1000, floods = 50'000;
  AnalyzerOptions options;
  options.max_waiting_resets = cap;
  CountingSink sink;
  Analyzer analyzer(options, sink);
  uint64_t most = 0;
  for (uint64_t frame = 1; frame <= floods; ++frame) {
    analyzer.add(blind_rst(frame, 1'700'000'000'000'000'000));
    most = std::max(most, analyzer.waiting_resets());
  }
  // Ticks come every TickSchedule::segments segments: between two, that many RSTs more.
  EXPECT_LE(most, cap + TickSchedule::segments);
  EXPECT_GT(most, cap);
  const uint64_t early = analyzer.track_stats().resets_judged_early;
  EXPECT_GE(early, floods - cap - TickSchedule::segments);
  analyzer.finish();
  EXPECT_EQ(sink.resets, floods);  // every one judged, early or at the end
  EXPECT_EQ(analyzer.track_stats().resets_judged_early, early);  // the end is not early
}

TEST(WaitingCap, NoRstIsJudgedEarlyUnderTheCap) {
  AnalyzerOptions options;
  options.max_waiting_resets = 5000;
  CountingSink sink;
  Analyzer analyzer(options, sink);
  for (uint64_t frame = 1; frame <= 5000; ++frame) analyzer.add(blind_rst(frame, 1'700'000'000'000'000'000));
  analyzer.finish();
  EXPECT_EQ(sink.resets, 5000u);
  EXPECT_EQ(analyzer.track_stats().resets_judged_early, 0u);
}

// Judged early, a RST misses what follows it: a forged RST whose connection goes on is only
// known as forged when the horizon sees the data after it. With the cap, the same RST behind a
// flood is judged without that, and the report counts it.
TEST(WaitingCap, ARstJudgedEarlyMissesWhatFollowsIt) {
  const auto forged_verdict = [](uint64_t cap, uint64_t& early) {
    Scenario scenario;
    auto& c = established(scenario);
    c.client.data(100);
    const uint64_t injected = c.server.spoof(tcp_flag::rst | tcp_flag::ack, c.server.next(), c.client.next(), 64);
    for (int i = 0; i < 3000; ++i) {
      auto& blind = scenario.connect("203.0.113.9", static_cast<uint16_t>(2000 + i), "198.51.100.20", 443);
      blind.client.rst(static_cast<uint32_t>(i) * 7919u);
      scenario.wait(-0.000999);  // packets are 1 ms apart: the flood's are 1 us apart
    }
    // 1.5 s later, within the horizon of 3 s, the server goes on: the RST was not its own. The
    // clock's move brings a tick first, where the cap judges the RSTs beyond it.
    scenario.wait(1.5);
    c.server.data(500);
    c.client.ack();
    AnalyzerOptions options;
    options.max_waiting_resets = cap;
    const Collected collected = scenario.run(options);
    early = scenario.stats().track.resets_judged_early;
    for (const Finding& finding : collected.resets) {
      if (finding.frame == injected) return finding.cause;
    }
    return Cause::unexplained;
  };
  uint64_t early = 0;
  EXPECT_EQ(forged_verdict(1u << 16, early), Cause::forged);
  EXPECT_EQ(early, 0u);
  EXPECT_NE(forged_verdict(100, early), Cause::forged);
  EXPECT_GT(early, 2000u);
}

}  // namespace
}  // namespace rstscope::testing
