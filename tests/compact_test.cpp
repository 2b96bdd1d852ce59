// An idle connection kept compact must come back byte for byte: the codec stores most fields as
// distances from what other fields predict, and a wrong prediction or a forgotten field would
// lose state silently. And it must stay small, or compacting saves nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support.hpp"

#include "capture/capture.hpp"
#include "decode/decode.hpp"
#include "track/compact.hpp"
#include "track/tracker.hpp"

namespace rstscope::testing {
namespace {

using Random = std::mt19937_64;
static_assert(sizeof(ConnectionRecord) == sizeof(Connection) + 32, "a record has no padding to compare");

bool coin(Random& random) { return (random() & 1) != 0; }

// Values that stress an encoding: zero, the ends of the type, small ones, ones just below the
// wrap, and any.
template <typename T>
T extreme(Random& random) {
  using Limits = std::numeric_limits<T>;
  switch (random() % 7) {
    case 0: return 0;
    case 1: return Limits::max();
    case 2: return Limits::min();
    case 3: return static_cast<T>(random() % 300);
    case 4: return static_cast<T>(Limits::max() - static_cast<T>(random() % 300));
    default: return static_cast<T>(random());
  }
}

// `base` give or take a little, wrapping: what the codec's predictions make small.
uint32_t near(uint32_t base, Random& random) { return base + static_cast<uint32_t>(random() % 7) - 3; }

void fill_side(Endpoint& side, Random& random) {
  side.isn = extreme<uint32_t>(random);
  side.next_seq = extreme<uint32_t>(random);
  side.max_ack = extreme<uint32_t>(random);
  side.fin_seq = extreme<uint32_t>(random);
  side.last_seq = extreme<uint32_t>(random);
  side.last_ack = extreme<uint32_t>(random);
  side.packets = extreme<uint32_t>(random);
  side.last_payload_and_flags = extreme<uint32_t>(random);
  side.last_ts.ticks = extreme<uint32_t>(random);
  side.last_data_ts.ticks = extreme<uint32_t>(random);
  side.fin_ts.ticks = extreme<uint32_t>(random);
  side.gap_before_last.ticks = extreme<uint32_t>(random);
  side.last_frame.offset = extreme<uint32_t>(random);
  side.syn_frame.offset = extreme<uint32_t>(random);
  side.fin_frame.offset = extreme<uint32_t>(random);
  side.last_data_frame.offset = extreme<uint32_t>(random);
  side.bytes_low = extreme<uint32_t>(random);
  side.bytes_high = extreme<uint16_t>(random);
  side.window = extreme<uint16_t>(random);
  side.ip_id = extreme<uint16_t>(random);
  side.resets = extreme<uint16_t>(random);
  side.max_window_raw = extreme<uint16_t>(random);
  side.ttl_min = extreme<uint8_t>(random);
  side.ttl_max = extreme<uint8_t>(random);
  side.fin_acks = extreme<uint8_t>(random);
  side.window_scale = random() & 0xf;
  side.offered_scale = random() & 0xf;
  side.max_window_shift = random() & 0xf;
  side.non_rst_packets = random() & 3;
  side.episode_resets = random() & 3;
  side.ack_known = coin(random);
  side.syn_seen = coin(random);
  side.fin_seen = coin(random);
  side.data_seen = coin(random);
  side.df_seen = coin(random);
  side.df_missing = coin(random);
  side.ip_id_incrementing = coin(random);
  side.ip_id_zero = coin(random);
}

// Makes the fields what the codec predicts from the others, give or take a little, so the
// predictions and the small distances are exercised too (with seqs near the wrap).
void relate_side(Endpoint& side, const Endpoint& peer, Random& random) {
  side.next_seq = side.isn + static_cast<uint32_t>(random() % 5000);
  side.max_ack = near(peer.next_seq, random);
  side.fin_seq = near(side.next_seq - 1, random);
  side.last_seq = near(side.next_seq - side.last_payload() - 1, random);
  side.last_ack = near(side.max_ack, random);
  side.last_data_ts.ticks = near(side.last_ts.ticks, random);
  side.fin_ts.ticks = near(side.last_ts.ticks, random);
  side.last_data_frame.offset = near(side.last_frame.offset, random);
  side.fin_frame.offset = near(side.last_frame.offset, random);
  side.max_window_raw = static_cast<uint16_t>(side.window + random() % 3);
  side.ttl_min = side.ttl_max;
  const uint64_t bytes = uint32_t{side.next_seq - side.isn - 1} + random() % 3;
  side.bytes_low = static_cast<uint32_t>(bytes);
  side.bytes_high = static_cast<uint16_t>(bytes >> 32);
}

// Every field random, through its own member (bit-fields and the history included).
void fill(ConnectionRecord& connection, Random& random) {
  connection.v4_addresses = random();
  connection.key_tail = (random() & 0xffffffff) | uint64_t{coin(random) ? 6u : 4u} << 32;
  connection.history = History();
  const size_t letters = random() % 26;  // past the 23 it keeps, too
  for (size_t i = 0; i < letters; ++i) connection.history.add("shadfrtw"[random() % 8], coin(random));
  connection.time_shift = extreme<uint8_t>(random);
  connection.handshake_seen = coin(random);
  connection.synack_seen = coin(random);
  connection.established = coin(random);
  connection.originator_known = coin(random);
  connection.originator_is_low = coin(random);
  connection.last_from_originator = coin(random);
  connection.signed_syn = coin(random);
  connection.signed_synack = coin(random);
  connection.list = extreme<uint8_t>(random);
  connection.synack_retransmissions = extreme<uint16_t>(random);
  connection.syn_retransmissions = extreme<uint16_t>(random);
  connection.last_ts_rest = extreme<uint32_t>(random);
  connection.first_ts = extreme<int64_t>(random);
  connection.first_frame = extreme<uint64_t>(random);
  connection.newest_pending = extreme<uint32_t>(random);
  connection.touched = extreme<uint32_t>(random);
  connection.resets = extreme<uint32_t>(random);
  connection.pending_resets = extreme<uint32_t>(random);
  connection.handshake_rtt.ticks = extreme<uint32_t>(random);
  connection.rare = extreme<uint32_t>(random);
  connection.older = extreme<uint32_t>(random);
  connection.newer = extreme<uint32_t>(random);
  fill_side(connection.originator, random);
  fill_side(connection.responder, random);
  for (size_t i = 0; i < 16; ++i) {
    connection.low6[i] = static_cast<uint8_t>(random());
    connection.high6[i] = static_cast<uint8_t>(random());
  }
  if (coin(random)) {
    relate_side(connection.originator, connection.responder, random);
    relate_side(connection.responder, connection.originator, random);
    connection.responder.last_ts.ticks = near(connection.originator.last_ts.ticks, random);
    connection.resets = uint32_t{connection.originator.resets} + connection.responder.resets;
  }
  // The shapes the codec shortens: a side that never spoke, none of the rarer fields set.
  if (random() % 8 == 0) connection.originator = Endpoint();
  if (random() % 8 == 0) connection.responder = Endpoint();
  if (random() % 4 == 0) {
    connection.time_shift = 0;
    connection.last_ts_rest = 0;
    connection.synack_retransmissions = connection.syn_retransmissions = 0;
    connection.newest_pending = connection.pending_resets = connection.rare = connection.resets = 0;
    connection.originator.resets = connection.responder.resets = 0;
  }
  // Times: any ticks, whole microseconds (as microsecond captures give), or all but one of them.
  const auto times = random() % 3;
  if (times != 0) {
    std::vector<uint32_t*> ticks = {&connection.handshake_rtt.ticks, &connection.last_ts_rest};
    for (Endpoint* side : {&connection.originator, &connection.responder}) {
      for (uint32_t* value : {&side->last_ts.ticks, &side->last_data_ts.ticks, &side->fin_ts.ticks,
                              &side->gap_before_last.ticks}) {
        ticks.push_back(value);
      }
    }
    for (uint32_t* value : ticks) *value = *value / 1000 * 1000;
    connection.first_ts = connection.first_ts / 1000 * 1000;
    if (times == 2) {
      const size_t odd = random() % (ticks.size() + 1);
      if (odd == ticks.size()) {
        connection.first_ts += connection.first_ts < 0 ? 1 : -1;
      } else {
        *ticks[odd] += 1;
      }
    }
  }
}

// Where two connections first differ, or -1.
std::ptrdiff_t first_difference(const ConnectionRecord& a, const ConnectionRecord& b) {
  const auto* a_bytes = reinterpret_cast<const uint8_t*>(&a);
  const auto* b_bytes = reinterpret_cast<const uint8_t*>(&b);
  for (size_t i = 0; i < sizeof(ConnectionRecord); ++i) {
    if (a_bytes[i] != b_bytes[i]) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

// Encodes `original`, decodes it over `target` (which holds other values), and checks that every
// field but the key, the idle-list fields and the IPv6 addresses came back, and those stayed.
// Returns the encoded size.
size_t expect_round_trip(const ConnectionRecord& original, ConnectionRecord target) {
  constexpr size_t guard = 16;
  uint8_t buffer[compact::max_size + guard];
  std::memset(buffer, 0xa5, sizeof(buffer));
  const size_t size = compact::encode(original, buffer);
  EXPECT_LE(size, compact::max_size);
  for (size_t i = compact::max_size; i < sizeof(buffer); ++i) EXPECT_EQ(buffer[i], 0xa5) << "written past max_size";
  // Followed by bytes that spoil whatever reads past its end.
  std::vector<uint8_t> encoding(buffer, buffer + size);
  encoding.resize(size + guard, 0xff);
  EXPECT_EQ(compact::decode_id(encoding.data()), original.first_frame);
  ConnectionRecord expected = original;
  expected.v4_addresses = target.v4_addresses;
  expected.key_tail = target.key_tail;
  expected.list = target.list;
  expected.touched = target.touched;
  expected.older = target.older;
  expected.newer = target.newer;
  expected.low6 = target.low6;
  expected.high6 = target.high6;
  compact::decode(encoding.data(), size, target);
  const std::ptrdiff_t difference = first_difference(target, expected);
  EXPECT_EQ(difference, -1) << "byte " << difference << " of the connection differs after the round trip";
  EXPECT_EQ(target.history.str(), original.history.str());
  return size;
}

TEST(Compact, RandomConnectionsComeBackByteForByte) {
  Random random(20240611);
  size_t longest = 0;
  for (int i = 0; i < 50000; ++i) {
    ConnectionRecord original, target;
    fill(original, random);
    fill(target, random);
    longest = std::max(longest, expect_round_trip(original, target));
    if (::testing::Test::HasFailure()) FAIL() << "connection " << i;
  }
  EXPECT_GT(longest, 150u);  // the extremes were reached
}

TEST(Compact, HistoryOfEveryLength) {
  Random random(11);
  for (size_t letters = 0; letters <= 24; ++letters) {
    ConnectionRecord original, target;
    fill(original, random);
    fill(target, random);
    original.history = History();
    for (size_t i = 0; i < letters; ++i) original.history.add("shadfrtw"[random() % 8], coin(random));
    expect_round_trip(original, target);
  }
}

// Changes each byte of `original` on its own, outside the fields left out, and checks that the
// round trip returns the change: a byte the codec forgot, or restores from a wrong prediction,
// fails here whatever the other bytes hold.
void expect_every_byte_kept(const ConnectionRecord& original, Random& random) {
  const auto left_out = [](size_t offset) {
    const auto within = [offset](size_t start, size_t size) { return offset >= start && offset < start + size; };
    return within(offsetof(Connection, v4_addresses), 8) || within(offsetof(Connection, key_tail), 8) ||
           within(offsetof(Connection, list), 1) || within(offsetof(Connection, touched), 4) ||
           within(offsetof(Connection, older), 4) || within(offsetof(Connection, newer), 4) ||
           within(offsetof(Connection, history), sizeof(History));  // only add() writes it (HistoryOfEveryLength)
  };
  ConnectionRecord target;
  fill(target, random);
  for (size_t offset = 0; offset < sizeof(Connection); ++offset) {
    if (left_out(offset)) continue;
    for (uint8_t bits : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0x18}}) {
      ConnectionRecord changed = original;
      reinterpret_cast<uint8_t*>(&changed)[offset] ^= bits;
      SCOPED_TRACE("byte " + std::to_string(offset));
      expect_round_trip(changed, target);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(Compact, EveryByteOfARandomConnectionIsKept) {
  Random random(5);
  for (int round = 0; round < 20; ++round) {
    ConnectionRecord original;
    fill(original, random);
    expect_every_byte_kept(original, random);
  }
}

TEST(Compact, EveryByteOfANewConnectionIsKept) {
  // Both sides silent, nothing unusual: the shortest encoding, which most fields leave.
  Random random(6);
  const ConnectionRecord fresh;
  ConnectionRecord target;
  fill(target, random);
  EXPECT_LE(expect_round_trip(fresh, target), 8u);
  expect_every_byte_kept(fresh, random);
}

// Connections as the tracker leaves them, kept when they end.
class Keep final : public TrackerSink {
 public:
  std::vector<ConnectionRecord> connections;

  void host_packet(const Address&, uint8_t) override {}
  void service_accepted(const Segment&) override {}
  void ended(const Connection& connection) override { connections.emplace_back(connection); }
  bool wants(const Connection&) const override { return true; }
  void judge(ResetContext&) override {}
};

// Typical closed IPv4 connections, many at once: a handshake with window scaling, a request, a
// response of a few segments with ACKs, and FINs both ways, timed to the microsecond.
std::vector<ConnectionRecord> typical_connections(size_t count, Random& random) {
  struct Event {
    int64_t ts_ns;
    Segment segment;
  };
  std::vector<Event> events;
  const int64_t start = 1'700'000'000'000'000'000;
  const int64_t us = 1000;
  for (size_t i = 0; i < count; ++i) {
    const Address client = Address::v4(0x0a000000u + static_cast<uint32_t>(random() % 65536));
    const Address server = Address::v4(0x5db8d800u + static_cast<uint32_t>(random() % 256));
    const auto client_port = static_cast<uint16_t>(32768 + i % 28000);
    const uint16_t server_port = 443;
    uint32_t client_seq = static_cast<uint32_t>(random()), server_seq = static_cast<uint32_t>(random());
    uint16_t client_id = static_cast<uint16_t>(random()), server_id = static_cast<uint16_t>(random());
    const int64_t rtt = (5'000 + static_cast<int64_t>(random() % 80'000)) * us;
    int64_t now = start + static_cast<int64_t>(i) * 2'000 * us + static_cast<int64_t>(random() % 1000) * us;
    const auto send = [&](bool from_client, uint8_t flags, uint32_t length, int64_t after) {
      now += after;
      Segment segment;
      segment.src = from_client ? client : server;
      segment.dst = from_client ? server : client;
      segment.sport = from_client ? client_port : server_port;
      segment.dport = from_client ? server_port : client_port;
      segment.seq = from_client ? client_seq : server_seq;
      segment.ack = (flags & tcp_flag::ack) == 0 ? 0 : from_client ? server_seq : client_seq;
      segment.flags = flags;
      segment.payload_len = length;
      segment.ttl = from_client ? 64 : 52;
      segment.df = true;
      segment.ip_id = from_client ? client_id++ : server_id++;
      const bool syn = (flags & tcp_flag::syn) != 0;
      segment.window = syn ? 64240 : from_client ? 502 : 83;
      if (syn) segment.window_scale = from_client ? 7 : 9;
      (from_client ? client_seq : server_seq) += segment.seq_len();
      events.push_back({now, segment});
    };
    send(true, tcp_flag::syn, 0, 0);
    send(false, tcp_flag::syn | tcp_flag::ack, 0, rtt);
    send(true, tcp_flag::ack, 0, 60 * us);
    send(true, tcp_flag::ack | tcp_flag::psh, 200 + static_cast<uint32_t>(random() % 500), 200 * us);
    send(false, tcp_flag::ack, 0, rtt);
    const size_t segments = 1 + random() % 12;
    for (size_t s = 0; s < segments; ++s) {
      send(false, tcp_flag::ack, s + 1 == segments ? 1 + static_cast<uint32_t>(random() % 1448) : 1448,
           static_cast<int64_t>(random() % 2000) * us);
      if (s % 2 == 1 || s + 1 == segments) send(true, tcp_flag::ack, 0, 30 * us);
    }
    const bool client_closes = coin(random);
    send(client_closes, tcp_flag::fin | tcp_flag::ack, 0, static_cast<int64_t>(random() % 500'000) * us);
    send(!client_closes, tcp_flag::fin | tcp_flag::ack, 0, rtt);
    send(client_closes, tcp_flag::ack, 0, 40 * us);
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; });
  Keep keep;
  Tracker tracker(TrackerOptions{}, keep);
  uint64_t frame = 1000;  // well into a capture
  int64_t clock = 0;
  for (Event& event : events) {
    event.segment.frame = ++frame;
    event.segment.ts_ns = event.ts_ns;
    clock = std::max(clock, event.ts_ns);
    event.segment.clock_ns = clock;
    tracker.add(event.segment);
  }
  tracker.finish(clock);
  return std::move(keep.connections);
}

TEST(Compact, TypicalClosedConnectionsAreSmall) {
  Random random(3);
  const std::vector<ConnectionRecord> connections = typical_connections(2000, random);
  ASSERT_EQ(connections.size(), 2000u);
  size_t total = 0, longest = 0;
  for (const ConnectionRecord& connection : connections) {
    ASSERT_TRUE(connection.closed());
    ASSERT_EQ(connection.history.str().substr(0, 4), "ShAD");
    ConnectionRecord target;
    fill(target, random);
    const size_t size = expect_round_trip(connection, target);
    total += size;
    longest = std::max(longest, size);
    if (::testing::Test::HasFailure()) return;
  }
  const double average = static_cast<double>(total) / static_cast<double>(connections.size());
  std::printf("typical closed connection: %.1f bytes on average, %zu at most\n", average, longest);
  // 256 bytes full. The bounds are a little above what the codec gives, to catch a regression.
  EXPECT_LT(average, 80.0);
  EXPECT_LT(longest, 90u);
  for (size_t i = 0; i < 3; ++i) expect_every_byte_kept(connections[i], random);
}

// A SYN flood or a scan leaves connections of one SYN each, whose responder never spoke.
TEST(Compact, EmbryonicConnectionsAreSmaller) {
  Random random(4);
  Keep keep;
  Tracker tracker(TrackerOptions{}, keep);
  const int64_t start = 1'700'000'000'000'000'000;
  for (uint64_t i = 0; i < 1000; ++i) {
    Segment syn;
    syn.src = Address::v4(static_cast<uint32_t>(random()));
    syn.dst = Address::v4(0xc6336401u);
    syn.sport = static_cast<uint16_t>(random());
    syn.dport = 80;
    syn.seq = static_cast<uint32_t>(random());
    syn.flags = tcp_flag::syn;
    syn.window = 64240;
    syn.ttl = static_cast<uint8_t>(random());
    syn.ip_id = static_cast<uint16_t>(random());
    syn.frame = 5000 + i * 3;
    syn.ts_ns = syn.clock_ns = start + static_cast<int64_t>(i) * 20'000;
    tracker.add(syn);
  }
  tracker.finish(start + 1'000'000'000);
  ASSERT_EQ(keep.connections.size(), 1000u);
  size_t total = 0, longest = 0;
  for (const ConnectionRecord& connection : keep.connections) {
    ConnectionRecord target;
    fill(target, random);
    const size_t size = expect_round_trip(connection, target);
    total += size;
    longest = std::max(longest, size);
    if (::testing::Test::HasFailure()) return;
  }
  const double average = static_cast<double>(total) / static_cast<double>(keep.connections.size());
  std::printf("embryonic connection: %.1f bytes on average, %zu at most\n", average, longest);
  EXPECT_LT(average, 32.0);
  EXPECT_LT(longest, 34u);
  expect_every_byte_kept(keep.connections[0], random);
}

TEST(Compact, SharedCaptureConnectionsComeBackWhole) {
  const std::vector<std::string> files = manifest_files();
  if (files.empty()) GTEST_SKIP() << "shared capture corpus not found next to the source tree";
  Random random(9);
  size_t total = 0, count = 0;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    Keep keep;
    Tracker tracker(TrackerOptions{}, keep);
    tracker.finish(track_file(corpus() / file, tracker));
    for (const ConnectionRecord& connection : keep.connections) {
      ConnectionRecord target;
      fill(target, random);
      total += expect_round_trip(connection, target);
      ++count;
      if (::testing::Test::HasFailure()) return;
    }
  }
  ASSERT_GT(count, 0u);
  std::printf("shared captures: %zu connections, %.1f bytes on average\n", count,
              static_cast<double>(total) / static_cast<double>(count));
}

}  // namespace
}  // namespace rstscope::testing
