// Micro-benchmarks of the hot path: decode of typical frames, connection lookup through
// Analyzer::add, the judgement of each RST, and the compact form of idle connections.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "decode/decode.hpp"
#include "diagnose/analyzer.hpp"
#include "synth/frames.hpp"
#include "track/compact.hpp"
#include "track/tracker.hpp"

namespace {

using namespace rstscope;

// --- decode ----------------------------------------------------------------------------------

enum class FrameKind { ipv4_data, ipv4_ack, ipv6_data, vlan_ipv4_data };

std::vector<uint8_t> typical_frame(FrameKind kind) {
  synth::SegmentSpec spec;
  const bool v6 = kind == FrameKind::ipv6_data;
  if (v6) {
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    spec.src = Address::v6(a);
    spec.dst = Address::v6(b);
  } else {
    spec.src = Address::v4(0xc0000207);  // 192.0.2.7
    spec.dst = Address::v4(0xc6336409);  // 198.51.100.9
  }
  spec.sport = 443;
  spec.dport = 51234;
  spec.seq = 1000000;
  spec.ack = 2000000;
  spec.flags = tcp_flag::ack;
  spec.window = 501;
  spec.timestamps = true;
  spec.tsval = 123456;
  spec.tsecr = 654321;
  if (kind != FrameKind::ipv4_ack) {
    spec.flags |= tcp_flag::psh;
    spec.payload_len = v6 ? 1416 : 1436;
  }
  if (kind == FrameKind::vlan_ipv4_data) spec.vlan = 100;
  std::vector<uint8_t> frame;
  synth::append_ethernet_frame(frame, spec);
  return frame;
}

void BM_Decode(benchmark::State& state) {
  const std::vector<uint8_t> frame = typical_frame(static_cast<FrameKind>(state.range(0)));
  Packet packet;
  packet.link_type = 1;
  packet.data = frame.data();
  packet.caplen = static_cast<uint32_t>(frame.size());
  packet.origlen = packet.caplen;
  DecodeStats stats;
  Segment segment;
  for (auto _ : state) {
    ++packet.frame;
    packet.ts_ns += 1000;
    const DecodeResult result = decode(packet, segment, stats);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(segment);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size()));
}
BENCHMARK(BM_Decode)
    ->Arg(static_cast<int>(FrameKind::ipv4_data))
    ->Arg(static_cast<int>(FrameKind::ipv4_ack))
    ->Arg(static_cast<int>(FrameKind::ipv6_data))
    ->Arg(static_cast<int>(FrameKind::vlan_ipv4_data))
    ->ArgName("kind(0=v4 data,1=v4 ack,2=v6 data,3=vlan v4 data)");

// --- analyzer --------------------------------------------------------------------------------

class CountingSink : public FindingSink {
 public:
  void reset(const Finding& finding) override {
    ++resets;
    benchmark::DoNotOptimize(finding.cause);
  }
  void connection(const ConnectionSummary&) override { ++connections; }
  void pattern(const PatternFinding&) override { ++patterns; }
  uint64_t resets = 0, connections = 0, patterns = 0;
};

// Builds segments directly (no bytes): the analyzer reads only the decoded fields.
class StreamBuilder {
 public:
  std::vector<Segment> segments;

  void add(uint32_t connection, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
           uint32_t length) {
    Segment s;
    ts_ns_ += 2000;  // 500k packets per second of capture time
    s.ts_ns = ts_ns_;
    s.frame = segments.size() + 1;
    const Address client = Address::v4(0xc0000200u | (connection % 254 + 1));
    const Address server = Address::v4(0xc6336400u | (connection / 254 % 254 + 1));
    const auto client_port = static_cast<uint16_t>(1024 + connection / (254 * 254) % 60000);
    s.src = from_client ? client : server;
    s.dst = from_client ? server : client;
    s.sport = from_client ? client_port : 443;
    s.dport = from_client ? 443 : client_port;
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.window = (flags & tcp_flag::rst) != 0 ? 0 : 501;
    s.payload_len = length;
    s.payload_captured = 0;
    s.ttl = from_client ? 57 : 64;
    s.df = true;
    if ((flags & tcp_flag::syn) != 0) {
      s.window_scale = 7;
    }
    segments.push_back(s);
  }

 private:
  int64_t ts_ns_ = 1'700'000'000LL * 1'000'000'000LL;
};

constexpr uint32_t client_isn(uint32_t connection) { return connection * 2654435761u; }
constexpr uint32_t server_isn(uint32_t connection) { return connection * 40503u + 7; }

// Every connection opens, then exchanges data in rounds interleaved across all connections,
// so each segment lands on a different connection than the one before.
std::vector<Segment> established_stream(uint32_t connections, uint32_t rounds) {
  StreamBuilder b;
  b.segments.reserve(static_cast<size_t>(connections) * (3 + rounds * 2));
  for (uint32_t c = 0; c < connections; ++c) {
    b.add(c, true, tcp_flag::syn, client_isn(c), 0, 0);
    b.add(c, false, tcp_flag::syn | tcp_flag::ack, server_isn(c), client_isn(c) + 1, 0);
    b.add(c, true, tcp_flag::ack, client_isn(c) + 1, server_isn(c) + 1, 0);
  }
  for (uint32_t r = 0; r < rounds; ++r) {
    for (uint32_t c = 0; c < connections; ++c) {
      const uint32_t client_seq = client_isn(c) + 1 + r * 200;
      const uint32_t server_seq = server_isn(c) + 1 + r * 1400;
      b.add(c, true, tcp_flag::psh | tcp_flag::ack, client_seq, server_seq, 200);
      b.add(c, false, tcp_flag::psh | tcp_flag::ack, server_seq, client_seq + 200, 1400);
    }
  }
  return std::move(b.segments);
}

void BM_AnalyzerAdd(benchmark::State& state) {
  const auto connections = static_cast<uint32_t>(state.range(0));
  const std::vector<Segment> stream = established_stream(connections, 4);
  AnalyzerOptions options;
  options.max_connections = std::max<uint64_t>(options.max_connections, 2ull * connections);
  for (auto _ : state) {
    CountingSink sink;
    Analyzer analyzer(options, sink);
    for (const Segment& segment : stream) analyzer.add(segment);
    analyzer.finish();
    benchmark::DoNotOptimize(sink.resets);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["segments"] = static_cast<double>(stream.size());
}
BENCHMARK(BM_AnalyzerAdd)->Arg(1 << 10)->Arg(1 << 14)->Arg(1 << 17)->Unit(benchmark::kMillisecond);

// --- connection key ------------------------------------------------------------------------------

// The canonical key and its hash, for segments whose direction is a coin toss from one to the
// next, as on a busy link (a branch on the direction would be mispredicted half the time).
void BM_ConnectionKey(benchmark::State& state) {
  std::vector<Segment> segments(4096);
  uint64_t random = 0x9e3779b97f4a7c15ull;
  for (Segment& segment : segments) {
    random = random * 6364136223846793005ull + 1442695040888963407ull;
    const bool v6 = state.range(0) == 6;
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8}, b[16] = {0x20, 0x01, 0x0d, 0xb8};
    std::memcpy(a + 8, &random, 8);
    const uint64_t other = random * 31;
    std::memcpy(b + 8, &other, 8);
    segment.src = v6 ? Address::v6(a) : Address::v4(static_cast<uint32_t>(random >> 32));
    segment.dst = v6 ? Address::v6(b) : Address::v4(static_cast<uint32_t>(other >> 32));
    segment.sport = static_cast<uint16_t>(random >> 16);
    segment.dport = 443;
  }
  size_t i = 0;
  for (auto _ : state) {
    const ConnectionKey key = ConnectionKey::of(segments[i++ & 4095]);
    benchmark::DoNotOptimize(key.hash());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ConnectionKey)->Arg(4)->Arg(6);

// Connections that each end in a RST, three kinds in turn: refused (SYN answered by RST/ACK),
// abort (RST/ACK at the sender's next seq) and half-open (data answered by a bare RST).
std::vector<Segment> reset_stream(uint32_t connections, uint32_t& resets) {
  StreamBuilder b;
  resets = 0;
  for (uint32_t c = 0; c < connections; ++c) {
    const uint32_t ci = client_isn(c), si = server_isn(c);
    b.add(c, true, tcp_flag::syn, ci, 0, 0);
    switch (c % 3) {
      case 0:
        b.add(c, false, tcp_flag::rst | tcp_flag::ack, 0, ci + 1, 0);
        break;
      case 1:
        b.add(c, false, tcp_flag::syn | tcp_flag::ack, si, ci + 1, 0);
        b.add(c, true, tcp_flag::ack, ci + 1, si + 1, 0);
        b.add(c, true, tcp_flag::psh | tcp_flag::ack, ci + 1, si + 1, 300);
        b.add(c, false, tcp_flag::psh | tcp_flag::ack, si + 1, ci + 301, 1400);
        b.add(c, false, tcp_flag::rst | tcp_flag::ack, si + 1401, ci + 301, 0);
        break;
      default:
        b.add(c, false, tcp_flag::syn | tcp_flag::ack, si, ci + 1, 0);
        b.add(c, true, tcp_flag::ack, ci + 1, si + 1, 0);
        b.add(c, true, tcp_flag::psh | tcp_flag::ack, ci + 1, si + 1, 300);
        b.add(c, false, tcp_flag::rst, si + 1, 0, 0);
        break;
    }
    ++resets;
  }
  return std::move(b.segments);
}

void BM_ResetJudgement(benchmark::State& state) {
  uint32_t resets = 0;
  const std::vector<Segment> stream = reset_stream(static_cast<uint32_t>(state.range(0)), resets);
  AnalyzerOptions options;
  uint64_t findings = 0;
  for (auto _ : state) {
    CountingSink sink;
    Analyzer analyzer(options, sink);
    for (const Segment& segment : stream) analyzer.add(segment);
    analyzer.finish();
    findings = sink.resets;
  }
  // Items are RSTs: the time per item covers the connection's packets and its verdict.
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * resets));
  state.counters["findings"] = static_cast<double>(findings);
  state.counters["resets"] = static_cast<double>(resets);
}
BENCHMARK(BM_ResetJudgement)->Arg(3000)->Arg(30000)->Unit(benchmark::kMillisecond);

// --- compact form ----------------------------------------------------------------------------

// Keeps a copy of every connection the tracker ends.
class KeepingSink final : public TrackerSink {
 public:
  void host_packet(const Address&, uint8_t) override {}
  void service_accepted(const Segment&) override {}
  void ended(const Connection& connection) override { connections.emplace_back(connection); }
  bool wants(const Connection&) const override { return true; }
  void judge(ResetContext&) override {}
  std::vector<ConnectionRecord> connections;
};

// Connections as the tracker leaves them: opened, four request/response exchanges, closed with
// FINs from the client first (the most common shape among idle connections).
std::vector<ConnectionRecord> closed_connections(uint32_t connections) {
  constexpr uint32_t rounds = 4;
  StreamBuilder b;
  std::vector<Segment> stream = established_stream(connections, rounds);
  b.segments = std::move(stream);
  for (uint32_t c = 0; c < connections; ++c) {
    const uint32_t client_seq = client_isn(c) + 1 + rounds * 200;
    const uint32_t server_seq = server_isn(c) + 1 + rounds * 1400;
    b.add(c, true, tcp_flag::fin | tcp_flag::ack, client_seq, server_seq, 0);
    b.add(c, false, tcp_flag::fin | tcp_flag::ack, server_seq, client_seq + 1, 0);
    b.add(c, true, tcp_flag::ack, client_seq + 1, server_seq + 1, 0);
  }
  KeepingSink sink;
  TrackerOptions options;
  options.max_connections = 2ull * connections;
  Tracker tracker(options, sink);
  for (Segment& segment : b.segments) {
    segment.clock_ns = segment.ts_ns;
    tracker.add(segment);
  }
  tracker.finish(b.segments.back().ts_ns);
  return std::move(sink.connections);
}

void BM_CompactEncode(benchmark::State& state) {
  const std::vector<ConnectionRecord> connections = closed_connections(4096);
  std::vector<uint8_t> out(compact::max_size);
  size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    for (const ConnectionRecord& connection : connections) {
      bytes += compact::encode(connection, out.data());
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * connections.size()));
  state.counters["bytes_each"] = static_cast<double>(bytes) / static_cast<double>(connections.size());
}
BENCHMARK(BM_CompactEncode);

void BM_CompactDecode(benchmark::State& state) {
  const std::vector<ConnectionRecord> connections = closed_connections(4096);
  std::vector<std::vector<uint8_t>> encoded;
  for (const ConnectionRecord& connection : connections) {
    std::vector<uint8_t> bytes(compact::max_size);
    bytes.resize(compact::encode(connection, bytes.data()));
    encoded.push_back(std::move(bytes));
  }
  ConnectionRecord target;
  for (auto _ : state) {
    for (const std::vector<uint8_t>& bytes : encoded) {
      compact::decode(bytes.data(), bytes.size(), target);
      benchmark::DoNotOptimize(target);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * encoded.size()));
}
BENCHMARK(BM_CompactDecode);

}  // namespace

BENCHMARK_MAIN();
