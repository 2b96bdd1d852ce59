#include "decode/decode.hpp"

#include <algorithm>

namespace rstscope {

namespace {

constexpr uint8_t max_tunnel_depth = 4;  // hostile nesting cannot recurse further
constexpr int max_vlan_tags = 8;
constexpr int max_extension_headers = 16;
constexpr int max_mpls_labels = 16;

constexpr uint16_t ethertype_ipv4 = 0x0800;
constexpr uint16_t ethertype_ipv6 = 0x86dd;
constexpr uint16_t ethertype_transparent_bridging = 0x6558;
constexpr uint16_t ethertype_erspan_2 = 0x88be;
constexpr uint16_t ethertype_erspan_3 = 0x22eb;
constexpr uint16_t ethertype_ppp = 0x880b;
constexpr uint16_t port_teredo = 3544;
constexpr uint16_t port_vxlan = 4789;
constexpr uint16_t port_geneve = 6081;

inline uint16_t be16(const uint8_t* at) { return static_cast<uint16_t>(at[0] << 8 | at[1]); }
inline uint32_t be32(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) << 24 | static_cast<uint32_t>(at[1]) << 16 |
         static_cast<uint32_t>(at[2]) << 8 | at[3];
}
// Six bytes as one big-endian number, from two loads in registers. (Six bytes copied into a
// zeroed 8-byte variable are two stores read back as one load, which the CPU cannot forward:
// that stalled every Ethernet frame.)
inline uint64_t be48(const uint8_t* at) { return uint64_t{be32(at)} << 16 | be16(at + 4); }

// Walks one frame from the link layer down to TCP; every read is checked against `size`.
struct Decoder {
  Segment& segment;
  uint8_t depth = 0;

  bool enter_tunnel() {
    if (depth >= max_tunnel_depth) return false;
    ++depth;
    return true;
  }

  DecodeResult link(uint32_t link_type, const uint8_t* data, size_t size) {
    switch (link_type) {
      case 1:  // LINKTYPE_ETHERNET
        return ethernet(data, size);
      case 113:  // LINKTYPE_LINUX_SLL: 16-byte header, protocol last
        if (size < 16) return DecodeResult::truncated;
        return ethertype(be16(data + 14), data + 16, size - 16, true);
      case 276:  // LINKTYPE_LINUX_SLL2: 20-byte header, protocol first
        if (size < 20) return DecodeResult::truncated;
        return ethertype(be16(data), data + 20, size - 20, true);
      case 101:  // LINKTYPE_RAW, and the DLT_RAW values some systems write
      case 12:
      case 14:
        if (size < 1) return DecodeResult::truncated;
        return ip_by_version(data, size);
      case 228:  // LINKTYPE_IPV4
        return ipv4(data, size);
      case 229:  // LINKTYPE_IPV6
        return ipv6(data, size);
      case 0: {  // LINKTYPE_NULL: address family in the capturing host's byte order
        if (size < 4) return DecodeResult::truncated;
        uint32_t family = static_cast<uint32_t>(data[0]) | static_cast<uint32_t>(data[1]) << 8 |
                          static_cast<uint32_t>(data[2]) << 16 | static_cast<uint32_t>(data[3]) << 24;
        if ((family & 0xffff0000u) != 0) family = __builtin_bswap32(family);
        return loopback(family, data + 4, size - 4);
      }
      case 108:  // LINKTYPE_LOOP: the family in network byte order
        if (size < 4) return DecodeResult::truncated;
        return loopback(be32(data), data + 4, size - 4);
      case 105:  // LINKTYPE_IEEE802_11
        return ieee80211(data, size);
      case 127: {  // LINKTYPE_IEEE802_11_RADIOTAP: little-endian header length at offset 2
        if (size < 4) return DecodeResult::truncated;
        const size_t header = static_cast<size_t>(data[2]) | static_cast<size_t>(data[3]) << 8;
        if (header < 8) return DecodeResult::malformed;
        if (header > size) return DecodeResult::truncated;
        return ieee80211(data + header, size - header);
      }
      case 9:   // LINKTYPE_PPP
      case 50:  // LINKTYPE_PPP_HDLC
        return ppp(data, size);
      default:
        return DecodeResult::unsupported_link;
    }
  }

  DecodeResult loopback(uint32_t family, const uint8_t* data, size_t size) {
    // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
    if (family == 2) return ipv4(data, size);
    if (family == 24 || family == 28 || family == 30 || family == 10) return ipv6(data, size);
    return DecodeResult::not_ip;
  }

  // The link layers of nearly every frame: inlined where they are used (as is protocol()), so
  // a plain Ethernet frame reaches ipv4() or ipv6() without calls of their own.
  [[gnu::always_inline]] DecodeResult ethernet(const uint8_t* data, size_t size) {
    if (size < 14) return DecodeResult::truncated;
    if (segment.source_mac == 0) {
      segment.source_mac = be48(data + 6);
    }
    return ethertype(be16(data + 12), data + 14, size - 14, true);
  }

  // `data` starts right after the type field. Frames may carry padding past the IP length.
  [[gnu::always_inline]] DecodeResult ethertype(uint16_t type, const uint8_t* data, size_t size, bool allow_llc) {
    for (int tags = 0; type == 0x8100 || type == 0x88a8 || type == 0x9100 || type == 0x9200; ++tags) {
      if (tags >= max_vlan_tags) return DecodeResult::malformed;
      if (size < 4) return DecodeResult::truncated;
      type = be16(data + 2);
      data += 4;
      size -= 4;
    }
    if (type <= 1500) {
      // IEEE 802.3 length field: the payload is LLC, maybe with SNAP.
      if (!allow_llc) return DecodeResult::not_ip;
      return llc(data, std::min<size_t>(size, type));
    }
    switch (type) {
      case ethertype_ipv4:
        return ipv4(data, size);
      case ethertype_ipv6:
        return ipv6(data, size);
      case 0x8847:  // MPLS unicast
      case 0x8848:  // MPLS multicast
        return mpls(data, size);
      case 0x8864:  // PPPoE session: 6-byte header, then the PPP protocol
        if (size < 6) return DecodeResult::truncated;
        return ppp(data + 6, size - 6);
      default:
        return DecodeResult::not_ip;
    }
  }

  DecodeResult llc(const uint8_t* data, size_t size) {
    if (size < 3) return DecodeResult::truncated;
    if (data[0] != 0xaa || data[1] != 0xaa || data[2] != 0x03) return DecodeResult::not_ip;
    if (size < 8) return DecodeResult::truncated;
    return ethertype(be16(data + 6), data + 8, size - 8, false);
  }

  DecodeResult mpls(const uint8_t* data, size_t size) {
    for (int labels = 0;; ++labels) {
      if (labels >= max_mpls_labels) return DecodeResult::malformed;
      if (size < 4) return DecodeResult::truncated;
      const bool bottom = (data[2] & 0x01) != 0;
      data += 4;
      size -= 4;
      if (bottom) break;
    }
    if (size < 1) return DecodeResult::truncated;
    const uint8_t version = data[0] >> 4;
    if (version == 4 || version == 6) return ip_by_version(data, size);
    return DecodeResult::not_ip;
  }

  DecodeResult ppp(const uint8_t* data, size_t size) {
    if (size >= 2 && data[0] == 0xff && data[1] == 0x03) {
      data += 2;
      size -= 2;
    }
    if (size < 1) return DecodeResult::truncated;
    uint16_t protocol = data[0];
    size_t length = 1;
    // An odd first byte is a compressed one-byte protocol field (RFC 1661 §6.5).
    if ((data[0] & 0x01) == 0) {
      if (size < 2) return DecodeResult::truncated;
      protocol = be16(data);
      length = 2;
    }
    if (protocol == 0x21) return ipv4(data + length, size - length);
    if (protocol == 0x57) return ipv6(data + length, size - length);
    return DecodeResult::not_ip;
  }

  DecodeResult ieee80211(const uint8_t* data, size_t size) {
    if (size < 2) return DecodeResult::truncated;
    const uint8_t control = data[0], flags = data[1];
    const uint8_t type = (control >> 2) & 0x03, subtype = control >> 4;
    if (type != 2) return DecodeResult::not_ip;          // only data frames carry IP
    if ((flags & 0x40) != 0) return DecodeResult::not_ip;  // protected: encrypted payload
    if ((subtype & 0x04) != 0) return DecodeResult::not_ip;  // null data, no body
    size_t header = 24;
    if ((flags & 0x03) == 0x03) header += 6;  // to-DS and from-DS: a fourth address
    if ((subtype & 0x08) != 0) {
      header += 2;                              // QoS control
      if ((flags & 0x80) != 0) header += 4;     // HT control
    }
    if (size < header) return DecodeResult::truncated;
    return llc(data + header, size - header);
  }

  DecodeResult ip_by_version(const uint8_t* data, size_t size) {
    if (size < 1) return DecodeResult::truncated;
    switch (data[0] >> 4) {
      case 4:
        return ipv4(data, size);
      case 6:
        return ipv6(data, size);
      default:
        return DecodeResult::not_ip;
    }
  }

  DecodeResult ipv4(const uint8_t* data, size_t size) {
    if (size < 20) return DecodeResult::truncated;
    if ((data[0] >> 4) != 4) return DecodeResult::malformed;
    const size_t header = static_cast<size_t>(data[0] & 0x0f) * 4;
    if (header < 20) return DecodeResult::malformed;
    size_t total = be16(data + 2);
    // Total length 0 is what TCP segmentation offload leaves behind: trust the capture.
    if (total == 0) total = size;
    if (total < header) return DecodeResult::malformed;
    if (header > size) return DecodeResult::truncated;
    segment.src.set_v4(data + 12);
    segment.dst.set_v4(data + 16);
    segment.ttl = data[8];
    segment.ip_id = be16(data + 4);
    const uint16_t fragment = be16(data + 6);
    segment.df = (fragment & 0x4000) != 0;
    // More-fragments set or a non-zero offset: part of a fragmented datagram (RFC 791 §3.1).
    if ((fragment & 0x3fff) != 0) return DecodeResult::fragment;
    const size_t claimed = total - header;
    const size_t captured = std::min(size, total) - header;
    return protocol(data[9], data + header, captured, claimed);
  }

  DecodeResult ipv6(const uint8_t* data, size_t size) {
    if (size < 40) return DecodeResult::truncated;
    if ((data[0] >> 4) != 6) return DecodeResult::malformed;
    segment.src.set_v6(data + 8);
    segment.dst.set_v6(data + 24);
    segment.ttl = data[7];
    segment.ip_id = 0;
    segment.df = false;
    size_t claimed = be16(data + 4);
    // Payload length 0: a jumbogram or an offloaded segment; the capture is all there is.
    if (claimed == 0) claimed = size - 40;
    size_t captured = std::min(size - 40, claimed);
    const uint8_t* at = data + 40;
    uint8_t next = data[6];
    // Extension headers (RFC 8200 §4); each one is length-checked before it is skipped.
    for (int count = 0;; ++count) {
      size_t length = 0;
      switch (next) {
        case 0:    // hop-by-hop options
        case 43:   // routing
        case 60:   // destination options
        case 135:  // mobility
        case 139:  // HIP
        case 140:  // shim6
          if (claimed < 2) return DecodeResult::malformed;
          if (captured < 2) return DecodeResult::truncated;
          length = (static_cast<size_t>(at[1]) + 1) * 8;
          break;
        case 44: {  // fragment
          if (claimed < 8) return DecodeResult::malformed;
          if (captured < 8) return DecodeResult::truncated;
          const uint16_t offset_flags = be16(at + 2);
          if ((offset_flags & 0xfff9) != 0) return DecodeResult::fragment;
          length = 8;
          break;
        }
        case 51:  // authentication header: length in 32-bit words minus 2 (RFC 4302 §2.2)
          if (claimed < 2) return DecodeResult::malformed;
          if (captured < 2) return DecodeResult::truncated;
          length = (static_cast<size_t>(at[1]) + 2) * 4;
          break;
        case 50:  // ESP: the rest is encrypted
        case 59:  // no next header
          return DecodeResult::not_tcp;
        default:
          return protocol(next, at, captured, claimed);
      }
      if (count >= max_extension_headers) return DecodeResult::malformed;
      if (length > claimed) return DecodeResult::malformed;
      if (length > captured) return DecodeResult::truncated;
      next = at[0];
      at += length;
      claimed -= length;
      captured -= length;
    }
  }

  // `captured` bytes are present at `data`; the IP header says the payload is `claimed` long.
  [[gnu::always_inline]] DecodeResult protocol(uint8_t number, const uint8_t* data, size_t captured, size_t claimed) {
    switch (number) {
      case 6:
        return tcp(data, captured, claimed);
      case 4:  // IPv4 in IP (RFC 2003)
        if (!enter_tunnel()) return DecodeResult::malformed;
        return ipv4(data, captured);
      case 41:  // IPv6 in IP (RFC 4213)
        if (!enter_tunnel()) return DecodeResult::malformed;
        return ipv6(data, captured);
      case 47:
        return gre(data, captured);
      case 17:
        return udp(data, captured, claimed);
      default:
        return DecodeResult::not_tcp;
    }
  }

  DecodeResult gre(const uint8_t* data, size_t size) {
    if (size < 4) return DecodeResult::truncated;
    const uint16_t flags = be16(data);
    const uint16_t type = be16(data + 2);
    const uint8_t version = flags & 0x07;
    size_t header = 4;
    if (version == 0) {
      // RFC 2784/2890: checksum (with reserved), key and sequence number are optional words.
      if ((flags & 0x4000) != 0) return DecodeResult::not_tcp;  // source routing (RFC 1701)
      if ((flags & 0x8000) != 0) header += 4;
      if ((flags & 0x2000) != 0) header += 4;
      if ((flags & 0x1000) != 0) header += 4;
    } else if (version == 1) {
      // Enhanced GRE for PPTP (RFC 2637 §4.1): key always, sequence and ack optional.
      header += 4;
      if ((flags & 0x1000) != 0) header += 4;
      if ((flags & 0x0080) != 0) header += 4;
    } else {
      return DecodeResult::not_tcp;
    }
    if (size < header) return DecodeResult::truncated;
    const uint8_t* body = data + header;
    size_t length = size - header;
    if (!enter_tunnel()) return DecodeResult::malformed;
    switch (type) {
      case ethertype_ipv4:
        return ipv4(body, length);
      case ethertype_ipv6:
        return ipv6(body, length);
      case ethertype_transparent_bridging:
        return ethernet(body, length);
      case ethertype_erspan_2:
        // ERSPAN type II has an 8-byte header; type I (no sequence bit) has none.
        if ((flags & 0x1000) == 0) return ethernet(body, length);
        if (length < 8) return DecodeResult::truncated;
        return ethernet(body + 8, length - 8);
      case ethertype_erspan_3: {
        // ERSPAN type III: 12 bytes, plus an 8-byte platform sub-header when O is set.
        if (length < 12) return DecodeResult::truncated;
        const size_t skip = 12 + ((body[11] & 0x01) != 0 ? 8 : 0);
        if (length < skip) return DecodeResult::truncated;
        return ethernet(body + skip, length - skip);
      }
      case ethertype_ppp:
        return ppp(body, length);
      default:
        // Aruba access points tunnel raw 802.11 frames with protocol types 0x8200-0x82ff.
        if ((type & 0xff00) == 0x8200) return ieee80211(body, length);
        return DecodeResult::not_tcp;
    }
  }

  DecodeResult udp(const uint8_t* data, size_t captured, size_t claimed) {
    if (claimed < 8) return DecodeResult::malformed;
    if (captured < 8) return DecodeResult::truncated;
    const uint16_t source = be16(data), destination = be16(data + 2);
    const size_t length = be16(data + 4);
    // A UDP length within the IP payload bounds the datagram; otherwise use the IP's.
    if (length >= 8 && length <= claimed) captured = std::min(captured, length);
    const uint8_t* body = data + 8;
    const size_t size = captured - 8;
    const size_t claimed_size = (length >= 8 && length <= claimed ? length : claimed) - 8;
    if (destination == port_vxlan) {
      // VXLAN (RFC 7348 §5): 8-byte header with the I flag, then an Ethernet frame.
      if (size < 8) return DecodeResult::truncated;
      if ((body[0] & 0x08) == 0) return DecodeResult::not_tcp;
      if (!enter_tunnel()) return DecodeResult::malformed;
      return ethernet(body + 8, size - 8);
    }
    if (destination == port_geneve) {
      // Geneve (RFC 8926 §3): 8 bytes plus options, protocol type as an ethertype.
      if (size < 8) return DecodeResult::truncated;
      const size_t header = 8 + static_cast<size_t>(body[0] & 0x3f) * 4;
      if (size < header) return DecodeResult::truncated;
      if (!enter_tunnel()) return DecodeResult::malformed;
      const uint16_t type = be16(body + 2);
      if (type == ethertype_transparent_bridging) return ethernet(body + header, size - header);
      return ethertype(type, body + header, size - header, false);
    }
    if (source == port_teredo || destination == port_teredo) return teredo(body, size, claimed_size);
    return DecodeResult::not_tcp;
  }

  DecodeResult teredo(const uint8_t* data, size_t size, size_t claimed) {
    // Optional authentication then origin indication precede the IPv6 packet (RFC 4380 §5.1.1).
    if (size >= 4 && data[0] == 0x00 && data[1] == 0x01) {
      const size_t length = 4 + static_cast<size_t>(data[2]) + data[3] + 8 + 1;
      if (size < length) return DecodeResult::not_tcp;
      data += length;
      size -= length;
      claimed -= length;
    }
    if (size >= 8 && data[0] == 0x00 && data[1] == 0x00) {
      data += 8;
      size -= 8;
      claimed -= 8;
    }
    // Only a plausible IPv6 header makes this Teredo rather than other traffic on the port.
    if (size < 40 || (data[0] >> 4) != 6) return DecodeResult::not_tcp;
    if (static_cast<size_t>(be16(data + 4)) + 40 > claimed) return DecodeResult::not_tcp;
    if (!enter_tunnel()) return DecodeResult::malformed;
    return ipv6(data, size);
  }

  DecodeResult tcp(const uint8_t* data, size_t captured, size_t claimed) {
    if (claimed < 20) return DecodeResult::malformed;
    if (captured < 20) return DecodeResult::truncated;
    const size_t header = static_cast<size_t>(data[12] >> 4) * 4;
    if (header < 20 || header > claimed) return DecodeResult::malformed;
    if (header > captured) return DecodeResult::truncated;
    tcp_fields(data, header, captured, claimed);
    return DecodeResult::tcp;
  }

  // The TCP header's fields, once the caller has checked its length (`header`) against what
  // the IP layer claims and what was captured.
  [[gnu::always_inline]] void tcp_fields(const uint8_t* data, size_t header, size_t captured, size_t claimed) {
    segment.sport = be16(data);
    segment.dport = be16(data + 2);
    segment.seq = be32(data + 4);
    segment.ack = be32(data + 8);
    segment.reserved = data[12] & 0x0f;
    segment.flags = data[13];
    segment.window = be16(data + 14);
    segment.payload_len = static_cast<uint32_t>(claimed - header);
    segment.payload_captured = static_cast<uint32_t>(captured - header);
    segment.payload = data + header;
    segment.tunnel_depth = depth;
    // Only SYNs and RSTs carry options the analysis reads (window scale, TCP-MD5/AO, MPTCP
    // reset); most segments carry timestamps, and walking them cost a tenth of the decode.
    if ((segment.flags & (tcp_flag::syn | tcp_flag::rst)) != 0) options(data + 20, header - 20);
  }

  // Nearly every frame of a capture on Ethernet, in one pass without calls: at most one 802.1Q
  // tag, IPv4 without options or IPv6 without extension headers, not a fragment, then a whole
  // TCP header. Returns true with the segment decoded exactly as the general path would;
  // false for anything else, which the general path then decodes from the start (nothing
  // written here is left for it to keep: it writes all of it again).
  [[gnu::always_inline]] bool usual_ethernet(const uint8_t* data, size_t size) {
    if (size < 14 + 40) return false;  // Ethernet, then at least IPv4's 20 bytes and TCP's 20
    size_t at = 14;
    uint16_t type = be16(data + 12);
    if (type == 0x8100) {
      type = be16(data + 16);
      at = 18;
    }
    const uint8_t* ip = data + at;
    const size_t ip_size = size - at;
    const uint8_t* tcp_header = nullptr;
    size_t captured = 0, claimed = 0;
    if (type == ethertype_ipv4) {
      if (ip_size < 20 || ip[0] != 0x45 || ip[9] != 6) return false;  // version 4, 20 bytes; TCP
      const size_t total = be16(ip + 2);
      const uint16_t fragment = be16(ip + 6);
      if (total < 40 || (fragment & 0x3fff) != 0) return false;
      claimed = total - 20;
      captured = std::min(ip_size, total) - 20;
      tcp_header = ip + 20;
    } else if (type == ethertype_ipv6) {
      if (ip_size < 40 || (ip[0] >> 4) != 6 || ip[6] != 6) return false;  // TCP right after
      claimed = be16(ip + 4);
      captured = std::min(ip_size - 40, claimed);
      tcp_header = ip + 40;
    } else {
      return false;
    }
    if (claimed < 20 || captured < 20) return false;
    const size_t header = static_cast<size_t>(tcp_header[12] >> 4) * 4;
    if (header < 20 || header > captured) return false;  // captured <= claimed
    if (type == ethertype_ipv4) {
      segment.src.set_v4(ip + 12);
      segment.dst.set_v4(ip + 16);
      segment.ttl = ip[8];
      segment.ip_id = be16(ip + 4);
      segment.df = (ip[6] & 0x40) != 0;
    } else {
      segment.src.set_v6(ip + 8);
      segment.dst.set_v6(ip + 24);
      segment.ttl = ip[7];
      segment.ip_id = 0;
      segment.df = false;
    }
    tcp_fields(tcp_header, header, captured, claimed);
    // Only a RST's sender (against the host's usual one) and a SYN/ACK's (the service's) are
    // read, so only SYNs and RSTs carry it; the other segments keep 0, as without Ethernet
    // (reading it for every frame was 1 % of the whole analysis).
    if ((segment.flags & (tcp_flag::syn | tcp_flag::rst)) != 0) segment.source_mac = be48(data + 6);
    return true;
  }

  // A bad option length ends option parsing; the segment itself stays valid.
  void options(const uint8_t* data, size_t size) {
    size_t at = 0;
    while (at < size) {
      const uint8_t kind = data[at];
      if (kind == 0) break;  // end of option list
      if (kind == 1) {       // no-operation
        ++at;
        continue;
      }
      if (at + 1 >= size) break;
      const size_t length = data[at + 1];
      if (length < 2 || length > size - at) break;
      const uint8_t* value = data + at + 2;
      switch (kind) {
        case 3:  // window scale (RFC 7323 §2.2)
          if (length == 3) segment.window_scale = value[0];
          break;
        case 19:  // TCP MD5 signature (RFC 2385)
        case 29:  // TCP-AO (RFC 5925)
          segment.has_md5_or_ao = true;
          break;
        case 30:  // MPTCP; MP_TCPRST is subtype 0x8 with the reason in its last byte (RFC 8684 §3.6)
          if (length >= 4 && (value[0] >> 4) == 0x8) {
            segment.has_mptcp_reset = true;
            segment.mptcp_reset_reason = value[1];
          }
          break;
        default:
          break;
      }
      at += length;
    }
  }
};

}  // namespace

DecodeResult decode(const Packet& packet, Segment& segment, DecodeStats& stats) {
  ++stats.packets;
  // Not cleared whole (the segment is often reused, and clearing it cost a quarter of a typical
  // decode): a TCP result writes every other field on its way down, so only those that depend
  // on what the frame holds are reset here.
  segment.ts_ns = packet.ts_ns;
  segment.clock_ns = 0;
  segment.frame = packet.frame;
  segment.payload = nullptr;  // never left pointing into an earlier frame
  segment.payload_len = 0;
  segment.payload_captured = 0;
  segment.source_mac = 0;
  segment.window_scale = 0xff;
  segment.mptcp_reset_reason = 0;
  segment.tunnel_depth = 0;
  segment.has_md5_or_ao = false;
  segment.has_mptcp_reset = false;
  Decoder decoder{segment};
  const size_t size = packet.data != nullptr ? packet.caplen : 0;
  if (packet.link_type == 1 && decoder.usual_ethernet(packet.data, size)) [[likely]] {
    ++stats.tcp;
    return DecodeResult::tcp;
  }
  const DecodeResult result = decoder.link(packet.link_type, packet.data, size);
  switch (result) {
    case DecodeResult::tcp:
      ++stats.tcp;
      if (segment.tunnel_depth > 0) ++stats.tunnelled;
      if (!segment.has(tcp_flag::syn) && !segment.has(tcp_flag::rst)) segment.source_mac = 0;  // as the usual path
      break;
    case DecodeResult::not_ip:
      ++stats.not_ip;
      break;
    case DecodeResult::not_tcp:
      ++stats.not_tcp;
      break;
    case DecodeResult::fragment:
      ++stats.fragments;
      break;
    case DecodeResult::truncated:
      ++stats.truncated;
      break;
    case DecodeResult::malformed:
      ++stats.malformed;
      break;
    case DecodeResult::unsupported_link:
      ++stats.unsupported_link;
      break;
  }
  return result;
}

}  // namespace rstscope
