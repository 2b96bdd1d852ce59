// decode(): every link type, VLAN tags, IP options and extension headers, fragments, tunnels,
// TCP options, and truncation at every length.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <vector>

#include "decode/decode.hpp"
#include "synth/frames.hpp"

namespace rstscope {
namespace {

using Bytes = std::vector<uint8_t>;

const Address client4 = Address::v4(0xc0000201);  // 192.0.2.1
const Address server4 = Address::v4(0xc6336402);  // 198.51.100.2
const Address outer4a = Address::v4(0xcb007101);  // 203.0.113.1
const Address outer4b = Address::v4(0xcb007102);  // 203.0.113.2

Address v6(uint8_t last) {
  uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8};
  bytes[15] = last;
  return Address::v6(bytes);
}

void put16(Bytes& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

void put32(Bytes& out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value >> 16));
  put16(out, static_cast<uint16_t>(value));
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// A TCP header with the given options (padded with NOPs to 32 bits) and payload.
Bytes tcp(uint8_t flags, const Bytes& options = {}, size_t payload = 0, uint32_t seq = 1000,
          uint32_t ack = 2000) {
  Bytes padded = options;
  while (padded.size() % 4 != 0) padded.push_back(1);
  Bytes out;
  put16(out, 40000);
  put16(out, 80);
  put32(out, seq);
  put32(out, ack);
  out.push_back(static_cast<uint8_t>(((20 + padded.size()) / 4) << 4));
  out.push_back(flags);
  put16(out, 29200);
  put16(out, 0);
  put16(out, 0);
  out.insert(out.end(), padded.begin(), padded.end());
  out.insert(out.end(), payload, 'x');
  return out;
}

Bytes ipv4(uint8_t protocol, const Bytes& payload, const Address& src = client4,
           const Address& dst = server4, uint16_t fragment = 0x4000, const Bytes& options = {},
           uint8_t ttl = 64, uint16_t id = 0x1234) {
  Bytes out;
  out.push_back(static_cast<uint8_t>(0x40 | (20 + options.size()) / 4));
  out.push_back(0);
  put16(out, static_cast<uint16_t>(20 + options.size() + payload.size()));
  put16(out, id);
  put16(out, fragment);
  out.push_back(ttl);
  out.push_back(protocol);
  put16(out, 0);
  out.insert(out.end(), src.bytes.begin(), src.bytes.begin() + 4);
  out.insert(out.end(), dst.bytes.begin(), dst.bytes.begin() + 4);
  out.insert(out.end(), options.begin(), options.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes ipv6(uint8_t next, const Bytes& payload, const Address& src = v6(1), const Address& dst = v6(2),
           uint8_t hop_limit = 57) {
  Bytes out{0x60, 0, 0, 0};
  put16(out, static_cast<uint16_t>(payload.size()));
  out.push_back(next);
  out.push_back(hop_limit);
  out.insert(out.end(), src.bytes.begin(), src.bytes.end());
  out.insert(out.end(), dst.bytes.begin(), dst.bytes.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes ethernet(uint16_t type, const Bytes& payload, std::initializer_list<uint16_t> tags = {}) {
  Bytes out{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
  for (const uint16_t tag_type : tags) {
    put16(out, tag_type);
    put16(out, 100);
  }
  put16(out, type);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes udp(uint16_t source, uint16_t destination, const Bytes& payload) {
  Bytes out;
  put16(out, source);
  put16(out, destination);
  put16(out, static_cast<uint16_t>(8 + payload.size()));
  put16(out, 0);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

struct Decoded {
  DecodeResult result;
  Segment segment;
  DecodeStats stats;
};

Packet packet_of(uint32_t link_type, const Bytes& frame, uint32_t caplen_override = UINT32_MAX) {
  Packet packet;
  packet.link_type = link_type;
  packet.data = frame.data();
  packet.caplen = caplen_override == UINT32_MAX ? static_cast<uint32_t>(frame.size()) : caplen_override;
  packet.origlen = static_cast<uint32_t>(frame.size());
  packet.frame = 7;
  packet.ts_ns = 123456789;
  return packet;
}

Decoded run(uint32_t link_type, const Bytes& frame, uint32_t caplen_override = UINT32_MAX) {
  const Packet packet = packet_of(link_type, frame, caplen_override);
  Decoded decoded{};
  decoded.result = decode(packet, decoded.segment, decoded.stats);
  return decoded;
}

synth::SegmentSpec basic_spec(bool v6_addresses = false) {
  synth::SegmentSpec spec;
  spec.src = v6_addresses ? v6(1) : client4;
  spec.dst = v6_addresses ? v6(2) : server4;
  spec.sport = 40000;
  spec.dport = 443;
  spec.seq = 0x11223344;
  spec.ack = 0x55667788;
  spec.flags = tcp_flag::syn | tcp_flag::ack;
  spec.window = 1234;
  spec.payload_len = 5;
  spec.ttl = 61;
  spec.ip_id = 0xbeef;
  spec.mss = 1460;
  spec.window_scale = 7;
  spec.sack_permitted = true;
  spec.timestamps = true;
  spec.tsval = 111;
  spec.tsecr = 222;
  return spec;
}

TEST(Decode, EthernetIpv4WithOptionsFromSynth) {
  Bytes frame;
  synth::append_ethernet_frame(frame, basic_spec());
  const Decoded d = run(1, frame);
  ASSERT_EQ(d.result, DecodeResult::tcp);
  const Segment& s = d.segment;
  EXPECT_EQ(s.frame, 7u);
  EXPECT_EQ(s.ts_ns, 123456789);
  EXPECT_EQ(s.src, client4);
  EXPECT_EQ(s.dst, server4);
  EXPECT_EQ(s.sport, 40000);
  EXPECT_EQ(s.dport, 443);
  EXPECT_EQ(s.seq, 0x11223344u);
  EXPECT_EQ(s.ack, 0x55667788u);
  EXPECT_EQ(s.flags, tcp_flag::syn | tcp_flag::ack);
  EXPECT_EQ(s.window, 1234);
  EXPECT_EQ(s.payload_len, 5u);
  EXPECT_EQ(s.payload_captured, 5u);
  ASSERT_NE(s.payload, nullptr);
  EXPECT_EQ(s.ttl, 61);
  EXPECT_EQ(s.ip_id, 0xbeef);
  EXPECT_TRUE(s.df);
  EXPECT_EQ(s.window_scale, 7);
  EXPECT_EQ(s.tunnel_depth, 0);
  EXPECT_EQ(d.stats.tcp, 1u);
  EXPECT_EQ(d.stats.packets, 1u);
}

TEST(Decode, EthernetIpv6FromSynth) {
  Bytes frame;
  synth::append_ethernet_frame(frame, basic_spec(true));
  const Decoded d = run(1, frame);
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, v6(1));
  EXPECT_EQ(d.segment.dst, v6(2));
  EXPECT_EQ(d.segment.ttl, 61);
  EXPECT_EQ(d.segment.ip_id, 0);
  EXPECT_EQ(d.segment.payload_len, 5u);
}

TEST(Decode, VlanTagsAndQinQ) {
  const Bytes packet = ipv4(6, tcp(tcp_flag::rst));
  for (const auto& tags : {std::initializer_list<uint16_t>{0x8100}, {0x88a8, 0x8100}, {0x9100, 0x8100},
                           {0x88a8, 0x88a8, 0x8100}}) {
    const Decoded d = run(1, ethernet(0x0800, packet, tags));
    ASSERT_EQ(d.result, DecodeResult::tcp);
    EXPECT_TRUE(d.segment.has(tcp_flag::rst));
    EXPECT_EQ(d.segment.src, client4);
  }
  Bytes synth_frame;
  synth::SegmentSpec spec = basic_spec();
  spec.vlan = 300;
  synth::append_ethernet_frame(synth_frame, spec);
  EXPECT_EQ(run(1, synth_frame).result, DecodeResult::tcp);
  // A tag whose inner type is cut off is truncated, not read past the end.
  EXPECT_EQ(run(1, ethernet(0x8100, {0x00})).result, DecodeResult::truncated);
}

TEST(Decode, EthernetNonIpAndLlcSnap) {
  EXPECT_EQ(run(1, ethernet(0x0806, Bytes(28, 0))).result, DecodeResult::not_ip);
  const Bytes packet = ipv4(6, tcp(tcp_flag::ack));
  Bytes snap{0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00};
  snap.insert(snap.end(), packet.begin(), packet.end());
  EXPECT_EQ(run(1, ethernet(static_cast<uint16_t>(snap.size()), snap)).result, DecodeResult::tcp);
  EXPECT_EQ(run(1, ethernet(0x0800, ipv4(17, udp(1, 2, {})))).result, DecodeResult::not_tcp);
}

TEST(Decode, EthernetPaddingIsIgnored) {
  Bytes frame = ethernet(0x0800, ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack)));
  frame.insert(frame.end(), 6, 0);  // minimum-size padding
  const Decoded d = run(1, frame);
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.payload_len, 0u);
  EXPECT_EQ(d.segment.payload_captured, 0u);
}

TEST(Decode, RawIpLinkTypes) {
  const Bytes packet4 = ipv4(6, tcp(tcp_flag::syn));
  const Bytes packet6 = ipv6(6, tcp(tcp_flag::syn));
  for (const uint32_t link : {101u, 12u, 14u}) {
    EXPECT_EQ(run(link, packet4).segment.src, client4) << link;
    EXPECT_EQ(run(link, packet6).segment.src, v6(1)) << link;
  }
  EXPECT_EQ(run(228, packet4).result, DecodeResult::tcp);
  EXPECT_EQ(run(229, packet6).result, DecodeResult::tcp);
  EXPECT_EQ(run(228, packet6).result, DecodeResult::malformed);
  EXPECT_EQ(run(101, Bytes{0x10, 0, 0}).result, DecodeResult::not_ip);
  EXPECT_EQ(run(4242, packet4).result, DecodeResult::unsupported_link);
  EXPECT_EQ(run(4242, packet4).stats.unsupported_link, 1u);
}

TEST(Decode, LinuxCookedV1AndV2) {
  const Bytes packet = ipv6(6, tcp(tcp_flag::fin | tcp_flag::ack));
  Bytes v1{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd};
  v1.insert(v1.end(), packet.begin(), packet.end());
  const Decoded d1 = run(113, v1);
  ASSERT_EQ(d1.result, DecodeResult::tcp);
  EXPECT_EQ(d1.segment.src, v6(1));
  Bytes v2{0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0};
  v2.insert(v2.end(), packet.begin(), packet.end());
  EXPECT_EQ(run(276, v2).result, DecodeResult::tcp);
  EXPECT_EQ(run(276, Bytes(19, 0)).result, DecodeResult::truncated);
}

TEST(Decode, BsdLoopbackBothByteOrdersAndFamilies) {
  const Bytes packet4 = ipv4(6, tcp(tcp_flag::ack));
  const Bytes packet6 = ipv6(6, tcp(tcp_flag::ack));
  EXPECT_EQ(run(0, concat({{2, 0, 0, 0}, packet4})).result, DecodeResult::tcp);
  EXPECT_EQ(run(0, concat({{0, 0, 0, 2}, packet4})).result, DecodeResult::tcp);
  for (const uint8_t family : std::initializer_list<uint8_t>{24, 28, 30}) {
    const Decoded d = run(0, concat({{family, 0, 0, 0}, packet6}));
    ASSERT_EQ(d.result, DecodeResult::tcp) << int{family};
    EXPECT_EQ(d.segment.dst, v6(2));
    EXPECT_EQ(run(0, concat({{0, 0, 0, family}, packet6})).result, DecodeResult::tcp);
  }
  EXPECT_EQ(run(108, concat({{0, 0, 0, 2}, packet4})).result, DecodeResult::tcp);
  EXPECT_EQ(run(108, concat({{0, 0, 0, 30}, packet6})).result, DecodeResult::tcp);
  EXPECT_EQ(run(0, concat({{99, 0, 0, 0}, packet4})).result, DecodeResult::not_ip);
}

TEST(Decode, Ipv4OptionsAreSkipped) {
  const Bytes options{0x94, 0x04, 0, 0, 1, 1, 1, 0};  // router alert, NOPs, end
  const Decoded d = run(101, ipv4(6, tcp(tcp_flag::rst, {}, 3), client4, server4, 0, options, 33, 7));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.sport, 40000);
  EXPECT_EQ(d.segment.payload_len, 3u);
  EXPECT_EQ(d.segment.ttl, 33);
  EXPECT_EQ(d.segment.ip_id, 7);
  EXPECT_FALSE(d.segment.df);
}

TEST(Decode, Ipv4BadHeaderLengths) {
  Bytes bad_ihl = ipv4(6, tcp(0));
  bad_ihl[0] = 0x44;
  EXPECT_EQ(run(101, bad_ihl).result, DecodeResult::malformed);
  Bytes short_total = ipv4(6, tcp(0));
  short_total[2] = 0;
  short_total[3] = 19;  // smaller than its own header
  EXPECT_EQ(run(101, short_total).result, DecodeResult::malformed);
  Bytes short_for_tcp = ipv4(6, tcp(0));
  short_for_tcp[3] = 30;  // leaves 10 bytes for a 20-byte TCP header
  EXPECT_EQ(run(101, short_for_tcp).result, DecodeResult::malformed);
  Bytes bad_offset = ipv4(6, tcp(0));
  bad_offset[20 + 12] = 0x40;  // data offset 16 bytes
  EXPECT_EQ(run(101, bad_offset).result, DecodeResult::malformed);
  EXPECT_EQ(run(101, bad_offset).stats.malformed, 1u);
}

TEST(Decode, IpLengthBeyondCaptureKeepsClaimedPayload) {
  const Bytes packet = ipv4(6, tcp(tcp_flag::ack, {}, 1000));
  const Decoded d = run(101, packet, 20 + 20 + 100);
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.payload_len, 1000u);
  EXPECT_EQ(d.segment.payload_captured, 100u);
}

TEST(Decode, Ipv4ZeroTotalLengthFromSegmentationOffload) {
  Bytes packet = ipv4(6, tcp(tcp_flag::ack, {}, 3000));
  packet[2] = 0;
  packet[3] = 0;
  const Decoded d = run(101, packet);
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.payload_len, 3000u);
}

TEST(Decode, Ipv4FragmentsAreCountedAndSkipped) {
  const Bytes segment = tcp(tcp_flag::ack, {}, 40);
  const Decoded first = run(101, ipv4(6, segment, client4, server4, 0x2000));  // MF, offset 0
  EXPECT_EQ(first.result, DecodeResult::fragment);
  EXPECT_EQ(first.stats.fragments, 1u);
  EXPECT_EQ(run(101, ipv4(6, segment, client4, server4, 0x0005)).result, DecodeResult::fragment);
  EXPECT_EQ(run(101, ipv4(6, segment, client4, server4, 0x4000)).result, DecodeResult::tcp);
}

TEST(Decode, Ipv6ExtensionHeaders) {
  const Bytes segment = tcp(tcp_flag::rst, {}, 2);
  auto extension = [](uint8_t next, size_t units) {
    Bytes out((units + 1) * 8, 0);
    out[0] = next;
    out[1] = static_cast<uint8_t>(units);
    return out;
  };
  // hop-by-hop -> routing -> destination options (16 bytes) -> TCP
  const Bytes chain = concat({extension(43, 0), extension(60, 0), extension(6, 1), segment});
  const Decoded d = run(229, ipv6(0, chain));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.payload_len, 2u);
  EXPECT_TRUE(d.segment.has(tcp_flag::rst));

  Bytes ah{6, 4, 0, 0};  // (4 + 2) * 4 = 24 bytes
  ah.resize(24, 0);
  EXPECT_EQ(run(229, ipv6(51, concat({ah, segment}))).result, DecodeResult::tcp);

  const Bytes atomic{6, 0, 0x00, 0x00, 0, 0, 0, 1};
  EXPECT_EQ(run(229, ipv6(44, concat({atomic, segment}))).result, DecodeResult::tcp);
  const Bytes first_fragment{6, 0, 0x00, 0x01, 0, 0, 0, 1};
  EXPECT_EQ(run(229, ipv6(44, concat({first_fragment, segment}))).result, DecodeResult::fragment);
  const Bytes later_fragment{6, 0, 0x00, 0x08, 0, 0, 0, 1};
  EXPECT_EQ(run(229, ipv6(44, concat({later_fragment, segment}))).result, DecodeResult::fragment);

  EXPECT_EQ(run(229, ipv6(50, Bytes(16, 0))).result, DecodeResult::not_tcp);
  EXPECT_EQ(run(229, ipv6(59, {})).result, DecodeResult::not_tcp);
  // No room left for the TCP header, or an extension header longer than the payload: malformed.
  EXPECT_EQ(run(229, ipv6(0, extension(6, 3))).result, DecodeResult::malformed);
  Bytes too_long = ipv6(0, concat({extension(6, 0), segment}));
  too_long[40 + 1] = 200;  // hop-by-hop length far past the packet
  EXPECT_EQ(run(229, too_long).result, DecodeResult::malformed);
}

TEST(Decode, IpInIpReportsInnerHeader) {
  const Bytes inner = ipv4(6, tcp(tcp_flag::rst), client4, server4, 0, {}, 48, 0x4444);
  const Decoded d = run(1, ethernet(0x0800, ipv4(4, inner, outer4a, outer4b, 0x4000, {}, 254, 0x1111)));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, client4);
  EXPECT_EQ(d.segment.dst, server4);
  EXPECT_EQ(d.segment.ttl, 48);
  EXPECT_EQ(d.segment.ip_id, 0x4444);
  EXPECT_FALSE(d.segment.df);
  EXPECT_EQ(d.segment.tunnel_depth, 1);
  EXPECT_EQ(d.stats.tunnelled, 1u);

  const Decoded six_in_four = run(101, ipv4(41, ipv6(6, tcp(tcp_flag::ack)), outer4a, outer4b));
  ASSERT_EQ(six_in_four.result, DecodeResult::tcp);
  EXPECT_EQ(six_in_four.segment.src, v6(1));
}

TEST(Decode, TunnelNestingIsBounded) {
  Bytes packet = ipv4(6, tcp(tcp_flag::ack));
  for (int i = 0; i < 4; ++i) packet = ipv4(4, packet, outer4a, outer4b);
  const Decoded four = run(101, packet);
  ASSERT_EQ(four.result, DecodeResult::tcp);
  EXPECT_EQ(four.segment.tunnel_depth, 4);
  packet = ipv4(4, packet, outer4a, outer4b);
  EXPECT_EQ(run(101, packet).result, DecodeResult::malformed);
}

TEST(Decode, GreWithOptionalFieldsAndPayloadTypes) {
  const Bytes inner4 = ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack), client4, server4);
  // Checksum, key and sequence present: 4 + 4 + 4 + 4 bytes.
  const Bytes gre_all{0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1};
  Decoded d = run(1, ethernet(0x0800, ipv4(47, concat({gre_all, inner4}), outer4a, outer4b)));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, client4);
  EXPECT_EQ(d.segment.tunnel_depth, 1);

  const Bytes gre6{0x00, 0x00, 0x86, 0xdd};
  d = run(101, ipv4(47, concat({gre6, ipv6(6, tcp(tcp_flag::syn))}), outer4a, outer4b));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, v6(1));

  const Bytes bridged{0x20, 0x00, 0x65, 0x58, 0, 0, 0, 5};
  d = run(101, ipv4(47, concat({bridged, ethernet(0x0800, inner4)}), outer4a, outer4b));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.dst, server4);

  const Bytes erspan2{0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0};
  d = run(101, ipv4(47, concat({erspan2, ethernet(0x0800, inner4)}), outer4a, outer4b));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, client4);

  EXPECT_EQ(run(101, ipv4(47, Bytes{0x00, 0x00, 0x12, 0x34, 1, 2, 3, 4}, outer4a, outer4b)).result,
            DecodeResult::not_tcp);
  EXPECT_EQ(run(101, ipv4(47, Bytes{0x30, 0x00, 0x08, 0x00, 0, 0}, outer4a, outer4b)).result,
            DecodeResult::truncated);
}

TEST(Decode, GreArubaCarries80211WithLlcSnap) {
  const Bytes inner = ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack), client4, server4, 0x4000, {}, 128);
  Bytes wifi{0x88, 0x01, 0, 0};  // QoS data, to-DS
  wifi.insert(wifi.end(), 18, 0x11);  // three addresses
  wifi.insert(wifi.end(), {0x80, 0x7d, 0x00, 0x00});  // sequence control, QoS control
  wifi.insert(wifi.end(), {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00});
  const Bytes gre{0x00, 0x00, 0x82, 0x00};
  const Decoded d =
      run(1, ethernet(0x0800, ipv4(47, concat({gre, wifi, inner}), outer4a, outer4b, 0, {}, 255), {0x8100}));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, client4);
  EXPECT_EQ(d.segment.ttl, 128);
  EXPECT_EQ(d.segment.tunnel_depth, 1);
  Bytes protected_wifi = wifi;
  protected_wifi[1] |= 0x40;
  EXPECT_EQ(run(101, ipv4(47, concat({gre, protected_wifi, inner}), outer4a, outer4b)).result,
            DecodeResult::not_ip);
}

TEST(Decode, TeredoWithAndWithoutIndicators) {
  const Bytes inner = ipv6(6, tcp(tcp_flag::rst));
  Decoded d = run(101, ipv4(17, udp(3544, 50000, inner), outer4a, outer4b));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, v6(1));
  EXPECT_EQ(d.segment.tunnel_depth, 1);
  const Bytes origin{0x00, 0x00, 0xf2, 0x27, 1, 2, 3, 4};
  d = run(101, ipv4(17, udp(50000, 3544, concat({origin, inner})), outer4a, outer4b));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  const Bytes authentication{0x00, 0x01, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0};
  d = run(101, ipv4(17, udp(50000, 3544, concat({authentication, origin, inner})), outer4a, outer4b));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  // Other traffic on the port is plain UDP, not a tunnel.
  EXPECT_EQ(run(101, ipv4(17, udp(3544, 50000, Bytes(60, 0x41)))).result, DecodeResult::not_tcp);
}

TEST(Decode, Vxlan) {
  const Bytes vxlan{0x08, 0, 0, 0, 0, 0, 1, 0};
  const Bytes inner = ethernet(0x0800, ipv4(6, tcp(tcp_flag::syn), client4, server4));
  const Decoded d = run(1, ethernet(0x0800, ipv4(17, udp(12345, 4789, concat({vxlan, inner})), outer4a, outer4b)));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.src, client4);
  EXPECT_EQ(d.segment.tunnel_depth, 1);
}

TEST(Decode, TcpOptionsAll) {
  // MSS, SACK permitted, two SACK blocks and timestamps (40 bytes of options in all) are walked
  // over to the window scale behind them.
  Bytes options{2, 4, 0x05, 0xb4, 4, 2};
  options.insert(options.end(), {5, 18});  // two SACK blocks
  for (const uint32_t edge : {100u, 200u, 300u, 400u}) {
    options.push_back(static_cast<uint8_t>(edge >> 24));
    options.push_back(static_cast<uint8_t>(edge >> 16));
    options.push_back(static_cast<uint8_t>(edge >> 8));
    options.push_back(static_cast<uint8_t>(edge));
  }
  options.insert(options.end(), {8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 3, 3, 9});
  ASSERT_LE(options.size(), 40u);
  const Decoded d = run(101, ipv4(6, tcp(tcp_flag::syn | tcp_flag::ack, options)));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.window_scale, 9);
  EXPECT_FALSE(d.segment.has_md5_or_ao);
  EXPECT_FALSE(d.segment.has_mptcp_reset);
  const Decoded plain = run(101, ipv4(6, tcp(tcp_flag::syn, Bytes{2, 4, 0x05, 0xb4})));
  EXPECT_EQ(plain.segment.window_scale, 0xff);
}

TEST(Decode, TcpOptionsAreReadOnlyFromSynsAndRsts) {
  // A data segment's options are not walked: what they hold is left at its default, and the
  // segment itself is whole.
  const Bytes options{3, 3, 9, 1, 30, 4, 0x81, 0x06, 29, 4, 1, 2};
  const Decoded data = run(101, ipv4(6, tcp(tcp_flag::ack | tcp_flag::psh, options, 20)));
  ASSERT_EQ(data.result, DecodeResult::tcp);
  EXPECT_EQ(data.segment.window_scale, 0xff);
  EXPECT_FALSE(data.segment.has_mptcp_reset);
  EXPECT_FALSE(data.segment.has_md5_or_ao);
  EXPECT_EQ(data.segment.payload_len, 20u);
  const Decoded syn = run(101, ipv4(6, tcp(tcp_flag::syn, options)));
  EXPECT_EQ(syn.segment.window_scale, 9);
  EXPECT_TRUE(syn.segment.has_md5_or_ao);
  const Decoded rst = run(101, ipv4(6, tcp(tcp_flag::rst, options)));
  EXPECT_TRUE(rst.segment.has_mptcp_reset);
  EXPECT_EQ(rst.segment.mptcp_reset_reason, 6);
}

// The outermost Ethernet source, as one 48-bit number, byte for byte; and the addresses of an
// IPv4 packet decoded into a segment that last held IPv6 ones carry nothing of them.
TEST(Decode, SourceMacAndAddressesExactly) {
  Bytes frame{0x02, 0, 0, 0, 0, 2, 0x8a, 0x9b, 0xac, 0xbd, 0xce, 0xdf};
  put16(frame, 0x0800);
  const Bytes packet_bytes = ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack, {}, 3));
  frame.insert(frame.end(), packet_bytes.begin(), packet_bytes.end());
  Segment segment;
  DecodeStats stats;
  ASSERT_EQ(decode(packet_of(101, ipv6(6, tcp(tcp_flag::ack, {}, 3))), segment, stats), DecodeResult::tcp);
  EXPECT_EQ(segment.src, v6(1));
  ASSERT_EQ(decode(packet_of(1, frame), segment, stats), DecodeResult::tcp);
  EXPECT_EQ(segment.source_mac, 0x8a9bacbdcedfu);
  EXPECT_EQ(segment.src, client4);
  EXPECT_EQ(segment.dst, server4);
  EXPECT_EQ(segment.src.family, 4);
}

// Only SYNs and RSTs carry their sender's link address (the rules read no other), through the
// usual path (one 802.1Q tag at most) and the general one (here two tags) alike.
TEST(Decode, SourceMacOnlyOnSynsAndRsts) {
  for (const bool two_tags : {false, true}) {
    for (const uint8_t flags : {uint8_t{tcp_flag::ack}, uint8_t{tcp_flag::psh | tcp_flag::ack}, uint8_t{tcp_flag::fin | tcp_flag::ack},
                                uint8_t{tcp_flag::syn}, uint8_t{tcp_flag::syn | tcp_flag::ack}, uint8_t{tcp_flag::rst},
                                uint8_t{tcp_flag::rst | tcp_flag::ack}}) {
      SCOPED_TRACE(std::string(two_tags ? "two tags" : "untagged") + ", flags " + std::to_string(flags));
      Segment segment;
      segment.source_mac = 0x123456;  // left from an earlier frame
      DecodeStats stats;
      const Bytes packet = ipv4(6, tcp(flags, {}, 3));
      const Bytes frame = two_tags ? ethernet(0x0800, packet, {0x88a8, 0x8100}) : ethernet(0x0800, packet);
      ASSERT_EQ(decode(packet_of(1, frame), segment, stats), DecodeResult::tcp);
      const bool carries = (flags & (tcp_flag::syn | tcp_flag::rst)) != 0;
      EXPECT_EQ(segment.source_mac, carries ? 0x020000000001u : 0u);
    }
  }
}

// decode() does not clear the whole segment first: a segment reused for the next frame must
// still come out exactly as a fresh one would, whatever the frame before it set.
TEST(Decode, AReusedSegmentKeepsNothingFromTheFrameBefore) {
  const Bytes rich_options{3, 3, 9, 1, 19, 18, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
                           0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 30, 4, 0x81, 0x06};
  const Bytes tunnelled = ethernet(0x0800, ipv4(4, ipv4(6, tcp(tcp_flag::syn, rich_options, 20))));
  const Bytes plain = ipv6(6, tcp(tcp_flag::ack, {}, 3));
  for (const auto& [link, frame] : {std::pair{1u, tunnelled}, std::pair{101u, plain}}) {
    const Packet packet = packet_of(link, frame);
    Segment fresh;
    DecodeStats stats;
    ASSERT_EQ(decode(packet, fresh, stats), DecodeResult::tcp);
    Segment reused;
    Packet before = link == 1u ? packet_of(101, plain) : packet_of(1, tunnelled);
    before.frame = 3;
    before.ts_ns = 5;
    ASSERT_EQ(decode(before, reused, stats), DecodeResult::tcp);
    reused.clock_ns = 777;  // as the analysis sets it
    ASSERT_EQ(decode(packet, reused, stats), DecodeResult::tcp);
    // Field by field: the payload pointers point into the same frame, so all compare.
    EXPECT_EQ(std::memcmp(&fresh, &reused, offsetof(Segment, src)), 0);
    EXPECT_EQ(fresh.src, reused.src);
    EXPECT_EQ(fresh.dst, reused.dst);
    EXPECT_EQ(fresh.sport, reused.sport);
    EXPECT_EQ(fresh.dport, reused.dport);
    EXPECT_EQ(fresh.window, reused.window);
    EXPECT_EQ(fresh.ip_id, reused.ip_id);
    EXPECT_EQ(fresh.flags, reused.flags);
    EXPECT_EQ(fresh.reserved, reused.reserved);
    EXPECT_EQ(fresh.window_scale, reused.window_scale);
    EXPECT_EQ(fresh.mptcp_reset_reason, reused.mptcp_reset_reason);
    EXPECT_EQ(fresh.ttl, reused.ttl);
    EXPECT_EQ(fresh.tunnel_depth, reused.tunnel_depth);
    EXPECT_EQ(fresh.df, reused.df);
    EXPECT_EQ(fresh.has_md5_or_ao, reused.has_md5_or_ao);
    EXPECT_EQ(fresh.has_mptcp_reset, reused.has_mptcp_reset);
  }
  // And what the rich frame set is really gone after the plain one.
  Segment segment;
  DecodeStats stats;
  ASSERT_EQ(decode(packet_of(1, tunnelled), segment, stats), DecodeResult::tcp);
  EXPECT_EQ(segment.window_scale, 9);
  EXPECT_TRUE(segment.has_md5_or_ao);
  EXPECT_TRUE(segment.has_mptcp_reset);
  EXPECT_EQ(segment.tunnel_depth, 1);
  EXPECT_NE(segment.source_mac, 0u);
  ASSERT_EQ(decode(packet_of(101, plain), segment, stats), DecodeResult::tcp);
  EXPECT_EQ(segment.window_scale, 0xff);
  EXPECT_FALSE(segment.has_md5_or_ao);
  EXPECT_FALSE(segment.has_mptcp_reset);
  EXPECT_EQ(segment.mptcp_reset_reason, 0);
  EXPECT_EQ(segment.tunnel_depth, 0);
  EXPECT_EQ(segment.source_mac, 0u);
  EXPECT_EQ(segment.ip_id, 0);
  EXPECT_FALSE(segment.df);
}

TEST(Decode, TcpOptionsMd5AoAndMptcpReset) {
  Bytes md5{19, 18};
  md5.resize(18, 0xab);
  EXPECT_TRUE(run(101, ipv4(6, tcp(tcp_flag::rst, md5))).segment.has_md5_or_ao);
  const Bytes ao{29, 4, 1, 2};
  EXPECT_TRUE(run(101, ipv4(6, tcp(tcp_flag::rst, ao))).segment.has_md5_or_ao);
  const Bytes mptcp_reset{30, 4, 0x81, 0x06};  // MP_TCPRST, T flag, reason 6
  const Decoded d = run(101, ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack, mptcp_reset)));
  EXPECT_TRUE(d.segment.has_mptcp_reset);
  EXPECT_EQ(d.segment.mptcp_reset_reason, 6);
  const Bytes mptcp_other{30, 4, 0x20, 0x06};
  EXPECT_FALSE(run(101, ipv4(6, tcp(tcp_flag::ack, mptcp_other))).segment.has_mptcp_reset);
}

TEST(Decode, BadOptionLengthStopsParsingButKeepsSegment) {
  const Bytes options{3, 3, 5, 8, 40, 0, 0, 3, 3, 9};  // timestamp claims 40 bytes
  const Decoded d = run(101, ipv4(6, tcp(tcp_flag::syn, options)));
  ASSERT_EQ(d.result, DecodeResult::tcp);
  EXPECT_EQ(d.segment.window_scale, 5);  // the second window scale, after it, is not read
  const Bytes zero_length{2, 0, 3, 3, 5};
  const Decoded z = run(101, ipv4(6, tcp(tcp_flag::syn, zero_length)));
  ASSERT_EQ(z.result, DecodeResult::tcp);
  EXPECT_EQ(z.segment.window_scale, 0xff);
}

TEST(Decode, ReservedBitsAreReported) {
  Bytes packet = ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack));
  packet[20 + 12] |= 0x01;  // AE
  EXPECT_EQ(run(101, packet).segment.reserved, 1);
}

// Cutting a valid frame anywhere never reads past the cut: before the TCP header ends it is
// truncated (or malformed), after it the segment decodes with fewer payload bytes captured.
TEST(Decode, TruncationAtEveryLength) {
  Bytes synth_v4, synth_v6;
  synth::append_ethernet_frame(synth_v4, basic_spec());
  synth::append_ethernet_frame(synth_v6, basic_spec(true));
  const Bytes inner4 = ipv4(6, tcp(tcp_flag::rst, {2, 4, 1, 1}, 4), client4, server4);
  const Bytes gre_all{0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1};
  const Bytes vxlan{0x08, 0, 0, 0, 0, 0, 1, 0};
  const Bytes hop{6, 0, 0, 0, 0, 0, 0, 0};
  struct Case {
    uint32_t link_type;
    Bytes frame;
    size_t tcp_end;  // bytes needed up to the end of the TCP header
  };
  const std::vector<Case> cases = {
      {1, synth_v4, synth_v4.size() - 5},
      {1, synth_v6, synth_v6.size() - 5},
      {1, ethernet(0x0800, inner4, {0x88a8, 0x8100}), 14 + 8 + 20 + 24},
      {229, ipv6(0, concat({hop, tcp(tcp_flag::rst)})), 40 + 8 + 20},
      {101, ipv4(47, concat({gre_all, inner4}), outer4a, outer4b), 20 + 16 + 20 + 24},
      {1, ethernet(0x0800, ipv4(17, udp(1, 4789, concat({vxlan, ethernet(0x0800, inner4)})))),
       14 + 20 + 8 + 8 + 14 + 20 + 24},
      {101, ipv4(17, udp(3544, 2, ipv6(6, tcp(tcp_flag::ack, {}, 3)))), 20 + 8 + 40 + 20},
      {0, concat({{2, 0, 0, 0}, inner4}), 4 + 20 + 24},
  };
  for (const Case& c : cases) {
    ASSERT_EQ(run(c.link_type, c.frame).result, DecodeResult::tcp);
    for (size_t length = 0; length < c.frame.size(); ++length) {
      // A copy of exactly `length` bytes, so a sanitizer sees any read past it.
      const Bytes cut(c.frame.begin(), c.frame.begin() + static_cast<long>(length));
      Packet packet;
      packet.link_type = c.link_type;
      packet.data = cut.empty() ? nullptr : cut.data();
      packet.caplen = static_cast<uint32_t>(length);
      packet.origlen = static_cast<uint32_t>(c.frame.size());
      Segment segment;
      DecodeStats stats;
      const DecodeResult result = decode(packet, segment, stats);
      SCOPED_TRACE("link " + std::to_string(c.link_type) + " length " + std::to_string(length));
      if (length < c.tcp_end) {
        EXPECT_TRUE(result == DecodeResult::truncated || result == DecodeResult::malformed ||
                    result == DecodeResult::not_tcp)
            << static_cast<int>(result);
        EXPECT_NE(result, DecodeResult::tcp);
      } else {
        ASSERT_EQ(result, DecodeResult::tcp);
        EXPECT_LE(segment.payload_captured, segment.payload_len);
        EXPECT_EQ(segment.payload_captured, length - c.tcp_end);
      }
    }
  }
}

TEST(Decode, StatsCountEachOutcome) {
  DecodeStats stats;
  Segment segment;
  auto feed = [&](uint32_t link, const Bytes& frame) {
    Packet packet;
    packet.link_type = link;
    packet.data = frame.data();
    packet.caplen = static_cast<uint32_t>(frame.size());
    decode(packet, segment, stats);
  };
  feed(101, ipv4(6, tcp(0)));
  feed(101, ipv4(17, udp(1, 2, {})));
  feed(1, ethernet(0x0806, Bytes(28, 0)));
  feed(101, ipv4(6, tcp(0), client4, server4, 0x2000));
  feed(101, Bytes{0x45, 0});
  feed(77777, Bytes{1});
  feed(101, ipv4(4, ipv4(6, tcp(0))));
  EXPECT_EQ(stats.packets, 7u);
  EXPECT_EQ(stats.tcp, 2u);
  EXPECT_EQ(stats.not_tcp, 1u);
  EXPECT_EQ(stats.not_ip, 1u);
  EXPECT_EQ(stats.fragments, 1u);
  EXPECT_EQ(stats.truncated, 1u);
  EXPECT_EQ(stats.unsupported_link, 1u);
  EXPECT_EQ(stats.tunnelled, 1u);
}

// Every field of two decoded segments but the Ethernet source address.
void expect_same_segment(const Segment& a, const Segment& b) {
  EXPECT_EQ(a.ts_ns, b.ts_ns);
  EXPECT_EQ(a.frame, b.frame);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.ack, b.ack);
  EXPECT_EQ(a.payload_len, b.payload_len);
  EXPECT_EQ(a.payload_captured, b.payload_captured);
  EXPECT_EQ(a.src, b.src);
  EXPECT_EQ(a.dst, b.dst);
  EXPECT_EQ(a.sport, b.sport);
  EXPECT_EQ(a.dport, b.dport);
  EXPECT_EQ(a.window, b.window);
  EXPECT_EQ(a.ip_id, b.ip_id);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.reserved, b.reserved);
  EXPECT_EQ(a.window_scale, b.window_scale);
  EXPECT_EQ(a.mptcp_reset_reason, b.mptcp_reset_reason);
  EXPECT_EQ(a.ttl, b.ttl);
  EXPECT_EQ(a.tunnel_depth, b.tunnel_depth);
  EXPECT_EQ(a.df, b.df);
  EXPECT_EQ(a.has_md5_or_ao, b.has_md5_or_ao);
  EXPECT_EQ(a.has_mptcp_reset, b.has_mptcp_reset);
}

// Plain Ethernet frames (with or without one 802.1Q tag) take a shorter path through the
// decoder. An IP packet must decode the same in such a frame as on its own (raw IP, which takes
// the general path): the same result and the same fields, cut at every length, and with the
// header fields that send a frame to the general path (IPv4 options, a zero or short length, a
// fragment, another protocol, IPv6 extension headers, TCP data offsets) set every which way.
TEST(Decode, UsualEthernetFramesDecodeAsTheGeneralPathDoes) {
  const Bytes options{3, 3, 9, 19, 2, 0, 30, 4, 0x80, 7};  // window scale, MD5 (cut short), MPTCP reset
  std::vector<Bytes> packets = {
      ipv4(6, tcp(tcp_flag::ack, {}, 30)),
      ipv4(6, tcp(tcp_flag::rst | tcp_flag::ack, options, 12)),
      ipv4(6, tcp(tcp_flag::syn, {2, 4, 5, 0xb4, 3, 3, 7}), client4, server4, 0),
      ipv4(6, tcp(tcp_flag::psh | tcp_flag::ack, {}, 3), client4, server4, 0x2000),  // more fragments
      ipv4(6, tcp(tcp_flag::ack, {}, 3), client4, server4, 0x0010),                  // an offset
      ipv4(6, tcp(tcp_flag::fin, {}), client4, server4, 0x4000, {1, 1, 1, 0}),       // IP options
      ipv4(17, udp(1, 2, Bytes(20, 0))),
      ipv6(6, tcp(tcp_flag::ack, {}, 40)),
      ipv6(6, tcp(tcp_flag::syn | tcp_flag::ack, options)),
      ipv6(0, concat({{6, 0, 0, 0, 0, 0, 0, 0}, tcp(tcp_flag::rst)})),
  };
  // Header fields changed: IPv4 total length (0, short, long), IPv6 payload length, the TCP
  // data offset (below 20, beyond the packet), the reserved bits.
  const size_t base = packets.size();
  for (size_t i = 0; i < base; ++i) {
    const Bytes packet = packets[i];  // a copy: the vector grows below
    const bool v4 = (packet[0] >> 4) == 4;
    const size_t length_at = v4 ? 2 : 4;
    const size_t tcp_at = v4 ? static_cast<size_t>(packet[0] & 0x0f) * 4 : 40;
    for (const uint16_t length : std::initializer_list<uint16_t>{0, 10, 39, 45, 2000}) {
      Bytes changed = packet;
      changed[length_at] = static_cast<uint8_t>(length >> 8);
      changed[length_at + 1] = static_cast<uint8_t>(length);
      packets.push_back(changed);
    }
    for (const uint8_t offset : std::initializer_list<uint8_t>{0x10, 0x40, 0xf0, 0x5f}) {
      Bytes changed = packet;
      if (tcp_at + 12 < changed.size()) changed[tcp_at + 12] = offset;
      packets.push_back(changed);
    }
  }
  size_t usual = 0;
  for (size_t i = 0; i < packets.size(); ++i) {
    const Bytes& packet = packets[i];
    const uint16_t type = (packet[0] >> 4) == 4 ? 0x0800 : 0x86dd;
    for (const bool tagged : {false, true}) {
      const Bytes frame = tagged ? ethernet(type, packet, {0x8100}) : ethernet(type, packet);
      const size_t link_bytes = frame.size() - packet.size();
      for (size_t length = link_bytes; length <= frame.size(); ++length) {
        SCOPED_TRACE("packet " + std::to_string(i) + (tagged ? " tagged" : "") + " length " + std::to_string(length));
        const Bytes cut(frame.begin(), frame.begin() + static_cast<long>(length));
        const Bytes ip(packet.begin(), packet.begin() + static_cast<long>(length - link_bytes));
        const Decoded in_frame = run(1, cut);
        const Decoded alone = run(101, ip);
        ASSERT_EQ(in_frame.result, alone.result);
        if (alone.result != DecodeResult::tcp) continue;
        ++usual;
        expect_same_segment(in_frame.segment, alone.segment);
        // Only SYNs and RSTs carry the sender's link address.
        const bool carries_mac = alone.segment.has(tcp_flag::syn) || alone.segment.has(tcp_flag::rst);
        EXPECT_EQ(in_frame.segment.source_mac, carries_mac ? 0x020000000001u : 0u);
        EXPECT_EQ(in_frame.segment.payload - cut.data(), alone.segment.payload - ip.data() + static_cast<long>(link_bytes));
        EXPECT_EQ(in_frame.stats.tcp, 1u);
        EXPECT_EQ(in_frame.stats.tunnelled, alone.stats.tunnelled);
      }
    }
  }
  EXPECT_GT(usual, 1000u);
}

}  // namespace
}  // namespace rstscope
