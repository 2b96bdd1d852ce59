// Tracker::update() takes a short way through the usual segment (an in-order ACK, with or
// without data, of a synchronized connection with nothing rare about it). It must leave every
// connection byte for byte as the long way does: on every shared capture, and on a stream of
// segments that wanders in and out of the usual on purpose.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support.hpp"
#include "track/tracker.hpp"

namespace rstscope::testing {
namespace {

// Every connection the tracker reports, whole: when it ends, and as each RST saw it.
class Keep final : public TrackerSink {
 public:
  std::vector<ConnectionRecord> ended_connections;
  std::vector<ConnectionRecord> reset_snapshots;
  std::vector<std::string> judged;

  void host_packet(const Address&, uint8_t) override {}
  void service_accepted(const Segment&) override {}
  void ended(const Connection& connection) override { ended_connections.emplace_back(connection); }
  bool wants(const Connection&) const override { return true; }
  void judge(ResetContext& context) override {
    reset_snapshots.push_back(context.connection);
    const AfterReset& after = context.after();
    std::string line = std::to_string(context.rst.frame) + " " + std::to_string(after.sender_segments) + " " +
                       std::to_string(after.receiver_segments) + " " + std::to_string(after.challenge_ack) + " " +
                       std::to_string(context.expected_seq) + " " + std::to_string(context.receive_window);
    // The connection's rare part, as the RST saw it.
    for (const EndpointRare* side : {&context.rare().originator, &context.rare().responder}) {
      line += " " + std::to_string(side->keepalives) + "/" + std::to_string(side->stalled_retransmissions) + "/" +
              std::to_string(side->retransmissions) + "/" + std::to_string(side->zero_windows);
    }
    judged.push_back(line);
  }
};

bool same_bytes(const ConnectionRecord& a, const ConnectionRecord& b) {
  return std::memcmp(static_cast<const void*>(&a), static_cast<const void*>(&b), sizeof(ConnectionRecord)) == 0;
}

void expect_same(const Keep& usual, const Keep& long_way, const std::string& what) {
  ASSERT_EQ(usual.ended_connections.size(), long_way.ended_connections.size()) << what;
  for (size_t i = 0; i < usual.ended_connections.size(); ++i) {
    EXPECT_TRUE(same_bytes(usual.ended_connections[i], long_way.ended_connections[i]))
        << what << ": connection " << long_way.ended_connections[i].id();
  }
  ASSERT_EQ(usual.reset_snapshots.size(), long_way.reset_snapshots.size()) << what;
  for (size_t i = 0; i < usual.reset_snapshots.size(); ++i) {
    EXPECT_TRUE(same_bytes(usual.reset_snapshots[i], long_way.reset_snapshots[i])) << what << ": RST " << i;
  }
  EXPECT_EQ(usual.judged, long_way.judged) << what;
}

TEST(UsualPath, EveryConnectionOfEverySharedCaptureComesOutTheSame) {
  const std::vector<std::string> files = manifest_files();
  if (files.empty()) GTEST_SKIP() << "the shared capture corpus is absent";
  size_t connections = 0;
  for (const std::string& name : files) {
    Keep kept[2];
    for (const bool usual : {true, false}) {
      TrackerOptions options;
      options.usual_path = usual;
      Tracker tracker(options, kept[usual ? 0 : 1]);
      tracker.finish(track_file(corpus() / name, tracker));
    }
    expect_same(kept[0], kept[1], name);
    connections += kept[0].ended_connections.size();
  }
  EXPECT_GT(connections, 100u);
}

// Connections of both families whose segments step out of the usual now and then: data out of
// order, retransmitted or far ahead, keep-alives, zero windows, FINs, RSTs, a SYN in the middle,
// other TTLs, IP IDs and DF bits, segments without the ACK flag, handshakes with SYNs sent again
// or ACKs before the SYN/ACK; some connections seen mid-stream.
TEST(UsualPath, ConnectionsThatWanderInAndOutOfTheUsualComeOutTheSame) {
  std::mt19937_64 random(17);
  struct Side {
    uint32_t seq;
    uint16_t ip_id;
  };
  struct Flow {
    Address client, server;
    uint16_t client_port;
    Side sides[2];
    int without_ack[2] = {0, 0};  // segments each side still sends without the ACK flag
  };
  std::vector<Flow> flows(300);
  for (size_t i = 0; i < flows.size(); ++i) {
    Flow& flow = flows[i];
    if (i % 3 == 0) {
      uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
      uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
      flow.client = Address::v6(a);
      flow.server = Address::v6(b);
    } else {
      flow.client = Address::v4(0xc0000200u + static_cast<uint32_t>(i));
      flow.server = Address::v4(0xc6336401u);
    }
    flow.client_port = static_cast<uint16_t>(40000 + i);
    flow.sides[0] = {static_cast<uint32_t>(random()), static_cast<uint16_t>(random())};
    flow.sides[1] = {static_cast<uint32_t>(random()), static_cast<uint16_t>(random())};
    if (i % 7 == 0) flow.without_ack[0] = flow.without_ack[1] = 4;
  }
  std::vector<Segment> segments;
  int64_t now = 1'700'000'000'000'000'000;
  uint64_t frame = 0;
  auto push = [&](Segment segment) {
    now += static_cast<int64_t>(random() % 2'000'000);
    segment.ts_ns = now;
    segment.clock_ns = now;
    segment.frame = ++frame;
    segments.push_back(segment);
  };
  // Most flows open with a handshake first, some with their SYN sent up to three times (so that
  // the final ACK is the client's third or fourth packet); the others are seen mid-stream.
  for (size_t i = 0; i < flows.size(); ++i) {
    Flow& flow = flows[i];
    if (i % 5 == 0) continue;
    Segment syn;
    syn.src = flow.client;
    syn.dst = flow.server;
    syn.sport = flow.client_port;
    syn.dport = 443;
    syn.seq = flow.sides[0].seq;
    syn.flags = tcp_flag::syn;
    syn.window = 64240;
    syn.window_scale = 7;
    syn.ttl = 64;
    syn.ip_id = flow.sides[0].ip_id++;
    for (size_t copies = 1 + i % 3; copies > 0; --copies) push(syn);
    ++flow.sides[0].seq;
    if (i % 11 == 0) {
      // Two ACKs of nothing before the SYN/ACK shows: its final ACK then finds the client with
      // three packets and an ACK already, and still has the handshake to complete.
      Segment early = syn;
      early.seq = flow.sides[0].seq;
      early.flags = tcp_flag::ack;
      early.window_scale = 0xff;
      for (int copies = 0; copies < 2; ++copies) {
        early.ip_id = flow.sides[0].ip_id++;
        push(early);
      }
    }
    Segment synack = syn;
    std::swap(synack.src, synack.dst);
    std::swap(synack.sport, synack.dport);
    synack.seq = flow.sides[1].seq++;
    synack.ack = flow.sides[0].seq;
    synack.flags = tcp_flag::syn | tcp_flag::ack;
    synack.ttl = 57;
    synack.ip_id = flow.sides[1].ip_id++;
    push(synack);
    Segment ack = syn;
    ack.seq = flow.sides[0].seq;
    ack.ack = flow.sides[1].seq;
    ack.flags = tcp_flag::ack;
    ack.window_scale = 0xff;
    ack.window = 502;
    ack.ip_id = flow.sides[0].ip_id++;
    push(ack);
  }
  for (size_t step = 0; step < 60000; ++step) {
    Flow& flow = flows[random() % flows.size()];
    const bool from_client = random() % 2 == 0;
    Side& own = flow.sides[from_client ? 0 : 1];
    Side& peer = flow.sides[from_client ? 1 : 0];
    Segment segment;
    segment.src = from_client ? flow.client : flow.server;
    segment.dst = from_client ? flow.server : flow.client;
    segment.sport = from_client ? flow.client_port : 443;
    segment.dport = from_client ? 443 : flow.client_port;
    segment.flags = tcp_flag::ack;
    segment.seq = own.seq;
    segment.ack = peer.seq;
    segment.window = static_cast<uint16_t>(500 + random() % 100);
    segment.ttl = random() % 50 == 0 ? 200 : (from_client ? 64 : 57);
    segment.df = random() % 40 != 0;
    segment.ip_id = random() % 30 == 0 ? static_cast<uint16_t>(random()) : own.ip_id++;
    {
      const uint64_t kind = random() % 100;
      uint32_t length = kind < 45 ? 0 : static_cast<uint32_t>(1 + random() % 1448);
      if (kind < 45) {
        // A pure ACK, sometimes of an older ack.
        if (random() % 10 == 0) segment.ack = peer.seq - static_cast<uint32_t>(random() % 3000);
      } else if (kind < 85) {
        segment.flags = random() % 2 == 0 ? tcp_flag::ack : tcp_flag::ack | tcp_flag::psh;
      } else if (kind < 88) {
        segment.seq = own.seq - static_cast<uint32_t>(random() % 5000);  // retransmitted or older
      } else if (kind < 90) {
        segment.seq = own.seq + static_cast<uint32_t>(random() % 5000);  // a gap before it
      } else if (kind < 91) {
        segment.seq = own.seq + (1u << 21);  // too far ahead to be the same stream
      } else if (kind < 93) {
        segment.seq = own.seq - 1;  // a keep-alive probe
        length = random() % 2;
      } else if (kind < 95) {
        segment.window = 0;
      } else if (kind < 96) {
        segment.flags = tcp_flag::fin | tcp_flag::ack;
      } else if (kind < 97) {
        segment.flags = random() % 2 == 0 ? tcp_flag::rst : tcp_flag::rst | tcp_flag::ack;
        length = 0;
      } else if (kind < 98) {
        segment.flags = tcp_flag::syn;  // a SYN inside the connection
        length = 0;
      } else {
        segment.flags = tcp_flag::ack | tcp_flag::urg;
      }
      segment.payload_len = length;
      int& bare = flow.without_ack[from_client ? 0 : 1];
      if (bare > 0 && (segment.flags & tcp_flag::rst) == 0) {
        --bare;
        segment.flags = static_cast<uint8_t>(segment.flags & ~tcp_flag::ack);
        segment.ack = 0;
      }
    }
    if (segment.seq == own.seq) own.seq += segment.seq_len();
    push(segment);
  }
  Keep kept[2];
  for (const bool usual : {true, false}) {
    TrackerOptions options;
    options.usual_path = usual;
    options.horizon_ns = 200'000'000;
    Tracker tracker(options, kept[usual ? 0 : 1]);
    int64_t last_tick = segments.front().clock_ns;
    for (const Segment& segment : segments) {
      if (segment.clock_ns - last_tick > 100'000'000) {
        tracker.tick(segment.clock_ns);
        last_tick = segment.clock_ns;
      }
      tracker.add(segment);
    }
    tracker.finish(segments.back().clock_ns);
  }
  expect_same(kept[0], kept[1], "wandering connections");
  EXPECT_GE(kept[0].ended_connections.size(), 300u);
  EXPECT_GT(kept[0].reset_snapshots.size(), 100u);
}

}  // namespace
}  // namespace rstscope::testing
