// A connection keeps the number of its newest waiting RST modulo 2^32 and reads it against the
// queue of waiting RSTs. Numbering that crosses the wrap must change nothing: the same RSTs are
// judged with the same followers, and connections end in the same order, as when it starts at 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "track/tracker.hpp"

namespace rstscope::testing {
namespace {

// Everything a tracker reports, in order, as text.
class Log final : public TrackerSink {
 public:
  std::vector<std::string> events;

  void host_packet(const Address&, uint8_t) override {}
  void service_accepted(const Segment&) override {}
  void ended(const Connection& connection) override {
    events.push_back("ended " + std::to_string(connection.id()) + " resets " + std::to_string(connection.resets));
  }
  bool wants(const Connection&) const override { return true; }
  void judge(ResetContext& context) override {
    const AfterReset& after = context.after();
    events.push_back("judge " + std::to_string(context.rst.frame) + " sender " +
                     std::to_string(after.sender_segments) + " receiver " + std::to_string(after.receiver_segments) +
                     " rsts " + std::to_string(after.sender_rsts.size()) + " ended " +
                     (context.ended_connection ? std::to_string(context.ended_connection->id()) : "-"));
  }
};

// Eight connections; each opens, exchanges data, then takes bursts of RSTs from both sides with
// packets in between, so several RSTs of one connection wait at once; ticks release some, and
// some connections are reopened on the same ports (ending the old one while RSTs still wait).
std::vector<std::string> run(uint64_t first_reset_number) {
  TrackerOptions options;
  options.first_reset_number = first_reset_number;
  options.horizon_ns = 50'000'000;  // 50 ms of capture time
  Log log;
  Tracker tracker(options, log);
  uint64_t frame = 0;
  int64_t now = 1'700'000'000'000'000'000;
  const auto send = [&](int index, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t length) {
    Segment segment;
    const Address client = Address::v4(0xc0000200u + static_cast<uint32_t>(index));
    const Address server = Address::v4(0xc6336401u);
    segment.src = from_client ? client : server;
    segment.dst = from_client ? server : client;
    segment.sport = from_client ? static_cast<uint16_t>(40000 + index) : 443;
    segment.dport = from_client ? 443 : static_cast<uint16_t>(40000 + index);
    segment.flags = flags;
    segment.seq = seq;
    segment.ack = ack;
    segment.payload_len = length;
    segment.ttl = 64;
    segment.window = 1000;
    segment.frame = ++frame;
    now += 3'000'000;  // 3 ms apart
    segment.ts_ns = segment.clock_ns = now;
    tracker.add(segment);
  };
  for (int round = 0; round < 3; ++round) {
    for (int index = 0; index < 8; ++index) {
      const uint32_t c = 1000u * static_cast<uint32_t>(round + 1), s = 900000u;
      send(index, true, tcp_flag::syn, c, 0, 0);
      send(index, false, tcp_flag::syn | tcp_flag::ack, s, c + 1, 0);
      send(index, true, tcp_flag::ack, c + 1, s + 1, 0);
      send(index, true, tcp_flag::ack, c + 1, s + 1, 100);
      for (int burst = 0; burst < 3; ++burst) {
        send(index, (burst + index) % 2 == 0, tcp_flag::rst | tcp_flag::ack, c + 101, s + 1, 0);
        if (index % 3 != 0) send(index, burst % 2 == 1, tcp_flag::ack, c + 101, s + 1, 0);
      }
      if (index % 4 == 1) tracker.tick(now);
    }
    tracker.tick(now);
  }
  tracker.finish(now);
  return log.events;
}

TEST(TrackerWrap, RstNumbersAcrossTwoToThe32ChangeNothing) {
  const std::vector<std::string> from_zero = run(0);
  const auto judged = std::count_if(from_zero.begin(), from_zero.end(),
                                    [](const std::string& event) { return event.rfind("judge", 0) == 0; });
  ASSERT_EQ(judged, 72);
  // Some RSTs saw what followed them, and some connections ended while their RSTs waited.
  EXPECT_TRUE(std::any_of(from_zero.begin(), from_zero.end(),
                          [](const std::string& event) { return event.find("receiver 1") != std::string::npos; }));
  EXPECT_TRUE(std::any_of(from_zero.begin(), from_zero.end(), [](const std::string& event) {
    return event.rfind("judge", 0) == 0 && event.find("ended -") == std::string::npos;
  }));
  // 3 rounds x 8 connections x 3 RSTs = 72 RSTs: start a little before the wrap so it falls mid-run,
  // and at several other places around it.
  for (uint64_t start : {(uint64_t{1} << 32) - 30, (uint64_t{1} << 32) - 1, uint64_t{1} << 32,
                         (uint64_t{1} << 33) - 5, (uint64_t{1} << 31) - 7}) {
    EXPECT_EQ(run(start), from_zero) << "first RST number " << start;
  }
}

}  // namespace
}  // namespace rstscope::testing
