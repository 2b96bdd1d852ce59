// Each cause's signature, built packet by packet, and the near misses that must not get it.
#include <gtest/gtest.h>

#include <algorithm>

#include "scenario.hpp"

namespace rstscope::testing {
namespace {

bool lists(const Finding& finding, Cause cause) {
  return std::find(finding.alternatives.begin(), finding.alternatives.end(), cause) != finding.alternatives.end();
}

const Finding& only_reset(const Collected& collected, uint64_t frame) {
  const Finding* finding = collected.at_frame(frame);
  EXPECT_NE(finding, nullptr) << "no finding for frame " << frame;
  static const Finding none;
  return finding != nullptr ? *finding : none;
}

TEST(Refused, RstAckAnswersSyn) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 2106);
  const uint64_t syn = c.client.syn();
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, c.client.next(), 64);
  const Collected out = scenario.run();
  const Finding& finding = only_reset(out, rst);
  EXPECT_EQ(finding.cause, Cause::refused);
  EXPECT_EQ(finding.seq_check, SeqCheck::exact);
  EXPECT_EQ(finding.sender, Sender::endpoint);
  EXPECT_NE(std::find(finding.frames.begin(), finding.frames.end(), syn), finding.frames.end());
  ASSERT_FALSE(finding.evidence.empty());
  EXPECT_NE(finding.evidence.front().find("answers SYN in frame 1 (ack = SYN seq + 1)"), std::string::npos);
}

// A flood of bare RSTs before the real answer: more than a 16-bit count holds. The receiver is
// still in SYN-SENT, so the refusal that follows is judged the same as without the flood.
TEST(Refused, AfterMoreRstsThanASixteenBitCountHolds) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 2106);
  c.client.syn();
  for (uint32_t i = 0; i < 65'536; ++i) c.server.rst(7 + i * 1000);
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, c.client.next(), 64);
  const Collected out = scenario.run();
  const Finding& finding = only_reset(out, rst);
  EXPECT_EQ(finding.seq_check, SeqCheck::exact);
  EXPECT_EQ(finding.cause, Cause::refused);
}

TEST(Refused, NearMissAckNotCoveringSynIsNotRefused) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 2106);
  c.client.syn();
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, c.client.next() + 5000, 64);
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::refused);
  EXPECT_EQ(only_reset(out, rst).seq_check, SeqCheck::out_of_window);
}

TEST(RefusedWrongAddress, SamePortAcceptsOnNeighbourAddress) {
  // Both addresses belong to one server behind one router: same link-layer sender, same TTL.
  Scenario scenario;
  auto& good = scenario.connect("192.0.2.10", 40000, "198.51.100.2", 2106);
  good.server.behind(0x020000000001);
  good.client.syn();
  good.server.synack();
  good.client.ack();
  auto& bad = scenario.connect("192.0.2.10", 40001, "198.51.100.3", 2106);
  bad.server.behind(0x020000000001);
  bad.client.syn();
  const uint64_t rst = bad.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, bad.client.next(), 64);
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::refused_wrong_address);
  EXPECT_TRUE(lists(only_reset(out, rst), Cause::refused));
}

TEST(RefusedWrongAddress, NearMissAnotherMachineOnTheLanIsPlainRefused) {
  // The neighbour that accepts is a different machine: its frames come from another MAC.
  Scenario scenario;
  auto& good = scenario.connect("192.0.2.10", 40000, "198.51.100.2", 2106);
  good.client.syn();
  good.server.synack();
  good.client.ack();
  auto& bad = scenario.connect("192.0.2.10", 40001, "198.51.100.3", 2106);
  bad.client.syn();
  const uint64_t rst = bad.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, bad.client.next(), 64);
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::refused);
}

TEST(Abort, RstAckFromSynchronizedEndpoint) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(50);  // the sender's own data is the last thing on the connection
  c.server.ack();
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  const Finding& finding = only_reset(out, rst);
  EXPECT_EQ(finding.cause, Cause::abort);
  EXPECT_EQ(finding.seq_check, SeqCheck::exact);
  EXPECT_TRUE(finding.from_originator);
  EXPECT_TRUE(lists(finding, Cause::abort_unread_data));
}

TEST(Abort, UnreadDataIsTheLastThingReceived) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(500);
  const uint64_t rst = c.server.rst_ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::abort_unread_data);
  EXPECT_TRUE(lists(only_reset(out, rst), Cause::abort));
}

TEST(Abort, RetransmittedRstIsLinkedNotForged) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t first = c.client.rst_ack();
  const uint64_t again = c.client.rst_ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, again).duplicate_of, first);
  EXPECT_EQ(only_reset(out, again).cause, only_reset(out, first).cause);
  EXPECT_NE(only_reset(out, again).cause, Cause::forged);
}

TEST(DataAfterClose, DataArrivesAfterSendersFin) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.fin();
  c.server.data(200);
  const uint64_t rst = c.client.rst(c.client.next());
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::data_after_close);
  EXPECT_NE(only_reset(out, rst).cause, Cause::forged);
}

TEST(DataAfterClose, NearMissNoDataAfterFinIsNotDataAfterClose) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.fin();
  c.server.ack();
  const uint64_t rst = c.server.rst_ack();
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::data_after_close);
  EXPECT_EQ(only_reset(out, rst).cause, Cause::abort);
}

TEST(HalfOpen, BareRstAnswersDataWithItsAck) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(100);
  const uint64_t rst = c.server.rst_answer();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::half_open);
  EXPECT_EQ(only_reset(out, rst).seq_check, SeqCheck::exact);
}

TEST(HalfOpen, RestartedClientSynDrawsChallengeAck) {
  // RFC 5961 §4: SYN on a synchronized connection -> ACK -> RST(seq = that ack).
  Scenario scenario;
  auto& c = established(scenario);
  c.client.restart(77777);
  c.client.syn();
  c.server.ack();
  const uint64_t rst = c.client.rst_answer();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::half_open);
  EXPECT_EQ(only_reset(out, rst).confidence, Confidence::high);
}

TEST(HalfOpen, NearMissRstAckWithOwnSeqIsAbort) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(100);
  c.server.ack();
  const uint64_t rst = c.server.rst_ack();
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::half_open);
}

TEST(ListenOverflow, BareRstAnswersFinalHandshakeAck) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 8080);
  c.client.syn();
  c.server.synack();
  c.client.ack();
  c.server.restart(c.server.next() - 1);
  c.server.synack();  // retransmitted SYN/ACK: the listener never took it
  c.client.ack();
  const uint64_t rst = c.server.rst(c.server.next());
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::listen_overflow);
  EXPECT_EQ(only_reset(out, rst).confidence, Confidence::high);
}

TEST(ListenOverflow, NearMissAfterServerDataIsNot) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(10);
  const uint64_t rst = c.server.rst_answer();
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::listen_overflow);
}

TEST(TimeWaitAssassination, LateSegmentAckThenRstFromClosedSide) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.fin();
  c.server.ack();
  c.server.fin();
  c.client.ack();
  scenario.wait(5);
  c.server.retransmit(300);  // an old duplicate reaches the TIME-WAIT side
  c.client.ack();            // which ACKs it once more
  const uint64_t rst = c.server.rst_answer();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::time_wait_assassination);
}

TEST(TimeWaitAssassination, NearMissRstAckFromActiveCloserIsNot) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.fin();
  c.server.fin();
  c.client.ack();
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::time_wait_assassination);
}

TEST(Middlebox, TtlUnlikeTheSendersOwn) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(100);
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, c.server.next(), c.client.next(), 250);
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::middlebox);
  EXPECT_EQ(only_reset(out, rst).sender, Sender::path);
}

TEST(Middlebox, NearMissSameTtlIsTheEndpoint) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, c.server.next(), c.client.next(), 64);
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::middlebox);
  EXPECT_EQ(only_reset(out, rst).sender, Sender::endpoint);
}

TEST(IdleTimeout, PathResetsFirstSegmentAfterLongSilence) {
  Scenario scenario;
  auto& c = established(scenario);
  scenario.wait(200);
  c.client.data(50);
  const uint64_t rst = c.server.spoof(tcp_flag::rst, c.server.next(), 0, 200);
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::idle_timeout);
  EXPECT_EQ(only_reset(out, rst).sender, Sender::path);
  EXPECT_TRUE(lists(only_reset(out, rst), Cause::middlebox));
}

TEST(BufferOverflow, ZeroWindowThenReset) {
  Scenario scenario;
  auto& c = established(scenario);
  c.client.data(1000);
  c.server.window(0);
  c.client.keepalive();
  c.server.window(0);
  const uint64_t rst = c.server.rst_ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::buffer_overflow);
}

TEST(KeepaliveTimeout, UnansweredProbesThenReset) {
  Scenario scenario;
  auto& c = established(scenario);
  for (int i = 0; i < 3; ++i) {
    scenario.wait(75);
    c.client.keepalive();
  }
  scenario.wait(75);
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::keepalive_timeout);
}

TEST(KeepaliveTimeout, NearMissAnsweredProbesAreNot) {
  Scenario scenario;
  auto& c = established(scenario);
  for (int i = 0; i < 3; ++i) {
    c.client.keepalive();
    c.server.ack();
  }
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  EXPECT_NE(only_reset(out, rst).cause, Cause::keepalive_timeout);
}

TEST(Forged, OutOfWindowInSynchronizedConnection) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t rst = c.client.spoof(tcp_flag::rst, c.client.next() + 50'000'000, 0, 64);
  c.client.data(100);
  c.server.ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::forged);
  EXPECT_EQ(only_reset(out, rst).seq_check, SeqCheck::out_of_window);
  EXPECT_EQ(only_reset(out, rst).sender, Sender::offpath);
}

TEST(Forged, RaceSenderKeepsTalkingAfterExactRst) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, c.server.next(), c.client.next(), 64);
  c.server.data(500);
  c.client.ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::forged);
}

TEST(Forged, InWindowChallengeAckWithoutExactRst) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t rst = c.client.spoof(tcp_flag::rst, c.client.next() + 1000, 0, 64);
  c.server.ack();  // challenge ACK (RFC 5961 §3.2)
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).seq_check, SeqCheck::in_window);
  EXPECT_EQ(only_reset(out, rst).cause, Cause::forged);
}

TEST(Forged, NearMissChallengeAnsweredByExactRstIsHalfOpen) {
  Scenario scenario;
  auto& c = established(scenario);
  const uint64_t rst = c.client.spoof(tcp_flag::rst, c.client.next() + 1000, 0, 64);
  c.server.ack();
  c.client.rst(c.client.next());
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::half_open);
}

// A signed connection (TCP-MD5, as BGP sessions use): both ends sign the handshake and what follows.
Scenario::Connection& signed_connection(Scenario& scenario, bool server_signs = true) {
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 179);
  c.client.sign(true);
  c.server.sign(server_signs);
  c.client.syn();
  c.server.synack();
  c.client.ack();
  c.client.data(100);
  c.server.ack();
  c.client.data(50);
  c.server.ack();
  return c;
}

TEST(Forged, UnsignedRstInSignedConnection) {
  // Exact seq, the client's own TTL, nothing after it: only the missing signature gives it away.
  Scenario scenario;
  auto& c = signed_connection(scenario);
  c.client.sign(false);
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  const Finding& finding = only_reset(out, rst);
  EXPECT_EQ(finding.cause, Cause::forged);
  EXPECT_EQ(finding.confidence, Confidence::high);
  EXPECT_EQ(finding.seq_check, SeqCheck::exact);
  EXPECT_TRUE(lists(finding, Cause::half_open));
  EXPECT_TRUE(std::any_of(finding.evidence.begin(), finding.evidence.end(),
                          [](const std::string& line) { return line.find("TCP-MD5") != std::string::npos; }));
  EXPECT_NE(finding.explanation.find("unsigned"), std::string::npos) << finding.explanation;
}

TEST(Forged, SignedRstInSignedConnectionIsTheStacks) {
  Scenario scenario;
  auto& c = signed_connection(scenario);
  const uint64_t rst = c.client.rst_ack();  // signed, as the stack signs it
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::abort);
}

TEST(Forged, UnsignedRstCountsOnlyWhenBothEndsSigned) {
  Scenario scenario;
  auto& c = signed_connection(scenario, false);  // the server never signed
  c.client.sign(false);
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::abort);
}

TEST(Forged, SignedRstInUnsignedConnectionIsNoted) {
  // An evasion trick: a RST with an MD5 option that the receiver, holding no key, drops; the
  // sender then carries on (the race), which makes it forged.
  Scenario scenario;
  auto& c = established(scenario);
  c.client.sign(true);
  const uint64_t rst = c.client.rst_ack();
  c.client.sign(false);
  c.client.data(100);
  c.server.ack();
  const Collected out = scenario.run();
  const Finding& finding = only_reset(out, rst);
  EXPECT_EQ(finding.cause, Cause::forged);
  EXPECT_TRUE(std::any_of(finding.evidence.begin(), finding.evidence.end(), [](const std::string& line) {
    return line.find("although neither SYN did") != std::string::npos;
  }));
}

TEST(Forged, StepWindowBurstNamesInjector) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 443);
  c.client.syn();
  const uint32_t ack = c.client.next();
  const uint64_t rst = c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, ack, 40, 1980);
  c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, ack, 40, 1981);
  c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, ack, 40, 1982);
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::forged);
  EXPECT_NE(only_reset(out, rst).injector.find("Great Firewall"), std::string::npos);
}

TEST(Unexplained, LoneRstSaysWhatIsMissing) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 80);
  const uint64_t rst = c.server.rst(12345);
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).cause, Cause::unexplained);
  ASSERT_FALSE(only_reset(out, rst).evidence.empty());
  EXPECT_NE(only_reset(out, rst).evidence.front().find("no other packet"), std::string::npos);
}

TEST(Patterns, PortScanFromOneSource) {
  Scenario scenario;
  for (uint16_t port = 1; port <= 20; ++port) {
    auto& c = scenario.connect("192.0.2.66", 50000, "198.51.100.20", port);
    c.client.syn();
    c.server.spoof(tcp_flag::rst | tcp_flag::ack, 0, c.client.next(), 64);
  }
  const Collected out = scenario.run();
  EXPECT_TRUE(out.has_pattern("port_scan"));
  EXPECT_EQ(out.resets.size(), 20u);
}

TEST(Patterns, BackscatterOfUnsolicitedSynAcks) {
  Scenario scenario;
  for (uint16_t i = 0; i < 30; ++i) {
    auto& c = scenario.connect("192.0.2.99", static_cast<uint16_t>(1000 + i), "203.0.113.5", 80);
    c.server.synack();
  }
  const Collected out = scenario.run();
  EXPECT_TRUE(out.has_pattern("backscatter"));
}

TEST(Patterns, SynFloodLeavesHalfOpenPile) {
  Scenario scenario;
  for (int i = 0; i < 120; ++i) {
    const std::string source = "203.0.113." + std::to_string(1 + i % 200);
    auto& c = scenario.connect(source.c_str(), static_cast<uint16_t>(2000 + i), "198.51.100.20", 80);
    c.client.syn();
    c.server.synack();
  }
  const Collected out = scenario.run();
  EXPECT_TRUE(out.has_pattern("syn_flood"));
  EXPECT_FALSE(out.has_pattern("port_scan"));
}

TEST(Patterns, NearMissCompletedHandshakesAreNoFlood) {
  Scenario scenario;
  for (int i = 0; i < 120; ++i) {
    auto& c = scenario.connect("192.0.2.10", static_cast<uint16_t>(2000 + i), "198.51.100.20", 80);
    c.client.syn();
    c.server.synack();
    c.client.ack();
  }
  const Collected out = scenario.run();
  EXPECT_FALSE(out.has_pattern("syn_flood"));
}

TEST(Patterns, BlindResetSweepThroughWindow) {
  Scenario scenario;
  auto& c = established(scenario);
  for (uint32_t i = 1; i <= 10; ++i) c.client.spoof(tcp_flag::rst, c.client.next() + i * 20000, 0, 64);
  c.client.data(10);
  const Collected out = scenario.run();
  EXPECT_TRUE(out.has_pattern("blind_reset_attack"));
}

TEST(Tracking, SequenceWrapAroundKeepsExactCheck) {
  Scenario scenario;
  auto& c = scenario.connect("192.0.2.10", 40000, "198.51.100.20", 80);
  c.client.restart(0xffffff00u);
  c.client.syn();
  c.server.synack();
  c.client.ack();
  c.client.data(1000);  // crosses 2^32
  c.server.ack();
  const uint64_t rst = c.client.rst_ack();
  const Collected out = scenario.run();
  EXPECT_EQ(only_reset(out, rst).seq_check, SeqCheck::exact);
  EXPECT_EQ(only_reset(out, rst).cause, Cause::abort);
}

TEST(Tracking, EveryRstGetsExactlyOneFindingInFrameOrder) {
  Scenario scenario;
  auto& a = established(scenario, "192.0.2.10", "198.51.100.20", 80);
  auto& b = established(scenario, "192.0.2.11", "198.51.100.21", 443);
  const uint64_t first = a.client.rst_ack();
  const uint64_t second = b.server.rst_ack();
  const uint64_t third = a.client.rst_ack();
  const Collected out = scenario.run();
  ASSERT_EQ(out.resets.size(), 3u);
  EXPECT_EQ(out.resets[0].frame, first);
  EXPECT_EQ(out.resets[1].frame, second);
  EXPECT_EQ(out.resets[2].frame, third);
  EXPECT_EQ(out.connections.size(), 2u);
}

TEST(Tracking, MemoryCapEvictsOldestAndStillJudges) {
  Scenario scenario;
  for (int i = 0; i < 200; ++i) {
    auto& c = scenario.connect("203.0.113.7", static_cast<uint16_t>(3000 + i), "198.51.100.20", 80);
    c.client.syn();
  }
  auto& real = established(scenario, "192.0.2.10", "198.51.100.30", 25);
  const uint64_t rst = real.server.rst_ack();
  AnalyzerOptions options;
  options.max_connections = 32;
  const Collected out = scenario.run(options);
  EXPECT_GT(scenario.stats().track.evicted_pressure, 100u);
  EXPECT_EQ(only_reset(out, rst).cause, Cause::abort);
}

}  // namespace
}  // namespace rstscope::testing
