// The connection's packed state: what goes in comes back out, and the verdicts built on it hold
// for long histories, RST bursts and connections older than the finest time unit covers.
#include <gtest/gtest.h>

#include <algorithm>

#include "scenario.hpp"
#include "track/connection.hpp"

namespace rstscope::testing {
namespace {

constexpr int64_t start_ns = 1'700'000'000'123'456'789;
constexpr int64_t second = 1'000'000'000;

bool mentions(const Finding& finding, const std::string& text) {
  return std::any_of(finding.evidence.begin(), finding.evidence.end(),
                     [&](const std::string& line) { return line.find(text) != std::string::npos; });
}

TEST(History, KeepsTwentyThreeLettersInOrder) {
  History history;
  EXPECT_EQ(history.str(), "");
  for (char letter : std::string("shadfrtw")) {
    history.add(letter, true);
    history.add(letter, false);
  }
  for (int i = 0; i < 10; ++i) history.add('r', i % 2 == 0);
  EXPECT_EQ(history.str(), "SsHhAaDdFfRrTtWwRrRrRrR");
}

TEST(ConnectionTime, ExactToTheNanosecondWhileYoung) {
  Connection connection;
  connection.first_ts = start_ns;
  Stamp& stamp = connection.originator.fin_ts;
  connection.set_time(stamp, start_ns + 4 * second + 7);
  EXPECT_EQ(connection.time(stamp), start_ns + 4 * second + 7);
  EXPECT_EQ(connection.time_shift, 0);
}

TEST(ConnectionTime, MicrosecondsForSeventyMinutesThenCoarser) {
  Connection connection;
  connection.first_ts = start_ns;
  Stamp& early = connection.originator.last_data_ts;
  Stamp& late = connection.responder.fin_ts;
  Stamp& later = connection.responder.last_data_ts;
  Span& rtt = connection.handshake_rtt;
  connection.set_time(early, start_ns + 1'000'123);
  connection.set_duration(rtt, 2'000'456);
  connection.set_time(late, start_ns + 70 * 60 * second + 5'000);
  // The older times lost their nanoseconds as the unit became a microsecond; nothing else.
  EXPECT_EQ(connection.time(early), start_ns + 1'000'000);
  EXPECT_EQ(connection.duration(rtt), 2'000'000);
  EXPECT_EQ(connection.time(late), start_ns + 70 * 60 * second + 5'000);
  EXPECT_LT(early, late);
  connection.set_time(later, start_ns + 3 * 3600 * second + 3'000);
  EXPECT_EQ(connection.time(later), start_ns + 3 * 3600 * second);  // 4 us now
  EXPECT_EQ(connection.time(late), start_ns + 70 * 60 * second + 4'000);
  EXPECT_EQ(connection.time(early), start_ns + 1'000'000);
  EXPECT_LT(late, later);
}

TEST(ConnectionTime, LastPacketKeepsItsNanoseconds) {
  Connection connection;
  connection.first_ts = start_ns;
  connection.set_last_ts(true, start_ns + 60 * second + 789);
  EXPECT_EQ(connection.last_ts(), start_ns + 60 * second + 789);
  connection.set_last_ts(false, start_ns + 3 * second + 5);  // back in time: the later one counts
  EXPECT_EQ(connection.last_ts(), start_ns + 3 * second + 5);
  connection.set_last_ts(true, start_ns + 70 * 60 * second + 999);
  EXPECT_EQ(connection.last_ts(), start_ns + 70 * 60 * second + 999);
  connection.set_last_ts(false, start_ns + 3 * 3600 * second + 3'001);
  EXPECT_EQ(connection.last_ts(), start_ns + 3 * 3600 * second + 3'001);
  connection.set_time(connection.originator.fin_ts, start_ns + 400 * 24 * 3600 * second);  // coarsens again
  EXPECT_EQ(connection.last_ts(), start_ns + 3 * 3600 * second + 3'001);
}

TEST(ConnectionTime, BeforeTheFirstPacketCountsAsTheFirst) {
  Connection connection;
  connection.first_ts = start_ns;
  Stamp& stamp = connection.originator.fin_ts;
  connection.set_time(stamp, start_ns - 5);
  EXPECT_EQ(connection.time(stamp), start_ns);
}

TEST(ConnectionFrame, OffsetsFromTheFirstFrame) {
  Connection connection;
  connection.first_frame = 1'000;
  FrameRef ref;
  EXPECT_EQ(connection.frame(ref), 0u);
  connection.set_frame(ref, 1'000);
  EXPECT_EQ(connection.frame(ref), 1'000u);
  connection.set_frame(ref, uint64_t{1'000} + 0xfffffffeu);
  EXPECT_EQ(connection.frame(ref), uint64_t{1'000} + 0xfffffffeu);
  connection.set_frame(ref, uint64_t{1'000} + 0xffffffffu);  // too far on to tell
  EXPECT_EQ(connection.frame(ref), 0u);
}

TEST(Endpoint, WindowsAndBytesPackExactly) {
  Endpoint endpoint;
  endpoint.offer_window(65535, 0);
  endpoint.offer_window(600, 7);
  EXPECT_EQ(endpoint.max_window(), 600u << 7);
  endpoint.offer_window(65535, 0);
  EXPECT_EQ(endpoint.max_window(), 600u << 7);
  endpoint.offer_window(65535, 14);
  EXPECT_EQ(endpoint.max_window(), 65535u << 14);
  for (int i = 0; i < 3; ++i) endpoint.add_bytes(0xffffffffu);
  EXPECT_EQ(endpoint.bytes(), 3 * uint64_t{0xffffffffu});
}

TEST(ConnectionState, BurstOfRstsRepeatsTheFirstAndKeepsTheHistory) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t first = c.client.rst_ack();
  std::vector<uint64_t> repeats;
  for (int i = 0; i < 20; ++i) repeats.push_back(c.client.rst_ack());
  const Collected out = scenario.run();
  for (uint64_t repeat : repeats) {
    const Finding* finding = out.at_frame(repeat);
    ASSERT_NE(finding, nullptr);
    EXPECT_EQ(finding->duplicate_of, first) << "frame " << repeat;
  }
  ASSERT_EQ(out.connections.size(), 1u);
  EXPECT_EQ(out.connections[0].history, "ShADdRRRRRRRRRRRRRRRRRR");  // 23 letters
  EXPECT_EQ(out.connections[0].resets, 21u);
}

TEST(ConnectionState, RarePartOfAnEndedConnectionIsNotInherited) {
  Scenario scenario;
  auto& shut = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 80);
  shut.client.syn();
  shut.server.synack();
  shut.client.ack();
  shut.client.data(100);
  shut.server.window(0);  // a zero window: this connection gets a rare part
  shut.client.rst_ack();
  shut.client.restart(77777);
  shut.client.syn();  // port reuse ends it, and frees its rare part
  auto& next = scenario.connect("192.0.2.11", 40001, "198.51.100.21", 80);
  next.client.syn();
  next.server.synack();
  next.client.ack();
  next.client.data(100);
  next.client.retransmit(100);  // takes a rare part, likely the one just freed
  next.server.data(300);
  const uint64_t rst = next.server.rst_ack();
  const Collected out = scenario.run();
  const Finding* finding = out.at_frame(rst);
  ASSERT_NE(finding, nullptr);
  EXPECT_NE(finding->cause, Cause::buffer_overflow);
  EXPECT_FALSE(mentions(*finding, "zero window"));
}

TEST(ConnectionState, HoursOldConnectionIsStillJudgedOnItsOwnTimes) {
  Scenario scenario;
  auto& c = established(scenario);
  // Two hours of answered keep-alives, then a path RST answers the first data after a silence.
  for (int i = 0; i < 12; ++i) {
    scenario.wait(600);
    c.client.keepalive();
    c.server.ack();
  }
  scenario.wait(200);
  const uint64_t data = c.client.data(50);
  const uint64_t rst = c.server.spoof(tcp_flag::rst, c.server.next(), 0, 200);
  const Collected out = scenario.run();
  const Finding* finding = out.at_frame(rst);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->cause, Cause::idle_timeout);
  EXPECT_TRUE(mentions(*finding, "silent for 200.0 s before frame " + std::to_string(data)));
}

}  // namespace
}  // namespace rstscope::testing
