#pragma once
// The plain records that flow from capture/ to decode/ to track/. No heap, no virtuals.
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

namespace rstscope {

// An IPv4 or IPv6 address. IPv4 uses the first four bytes; the rest stay zero.
struct Address {
  std::array<uint8_t, 16> bytes{};
  uint8_t family = 0;  // 4 or 6; 0 when unset

  static Address v4(uint32_t host_order);
  static Address v4(const uint8_t* network_order) {
    Address a;
    a.set_v4(network_order);
    return a;
  }
  static Address v6(const uint8_t* network_order) {
    Address a;
    a.set_v6(network_order);
    return a;
  }
  // In place, in one 16-byte store: decode sets two of them for every packet, and with two
  // threads the reading thread loads each as 16 bytes at once to build the connection's key.
  // The CPU forwards a load only from one store that covers all of it: built in a temporary
  // (a 4-byte store) or as two 8-byte words, the address stalled that load every time.
  void set_v4(const uint8_t* network_order) {
    uint32_t value;
    std::memcpy(&value, network_order, 4);
    using Words = uint32_t __attribute__((vector_size(16)));  // a GCC and Clang extension
    const Words words = {value, 0, 0, 0};
    std::memcpy(bytes.data(), &words, 16);
    family = 4;
  }
  void set_v6(const uint8_t* network_order) {
    std::memcpy(bytes.data(), network_order, 16);
    family = 6;
  }
  bool is_v6() const { return family == 6; }
  std::string to_string() const;
  // The same text written at `out`, which has room for text_max bytes; returns its end.
  static constexpr size_t text_max = 46;  // INET6_ADDRSTRLEN
  char* write(char* out) const;
  friend bool operator==(const Address& a, const Address& b) {
    // Two 64-bit compares: this runs on every connection lookup.
    uint64_t a_words[2], b_words[2];
    std::memcpy(a_words, a.bytes.data(), 16);
    std::memcpy(b_words, b.bytes.data(), 16);
    return ((a_words[0] ^ b_words[0]) | (a_words[1] ^ b_words[1])) == 0 && a.family == b.family;
  }
  friend bool operator<(const Address& a, const Address& b) {
    if (a.family != b.family) return a.family < b.family;
    // Lexicographic, as two big-endian words: this orders both directions of every segment.
    uint64_t a_words[2], b_words[2];
    std::memcpy(a_words, a.bytes.data(), 16);
    std::memcpy(b_words, b.bytes.data(), 16);
    const uint64_t a_high = __builtin_bswap64(a_words[0]), b_high = __builtin_bswap64(b_words[0]);
    if (a_high != b_high) return a_high < b_high;
    return __builtin_bswap64(a_words[1]) < __builtin_bswap64(b_words[1]);
  }
};

// One captured frame, as the capture layer hands it over. `data` is only valid during the call.
struct Packet {
  int64_t ts_ns = 0;        // capture time, nanoseconds since the epoch
  uint32_t link_type = 0;   // LINKTYPE_* value
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;      // bytes captured
  uint32_t origlen = 0;     // bytes on the wire
  uint64_t frame = 0;       // 1-based frame number across all inputs, as tshark counts
};

namespace tcp_flag {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
inline constexpr uint8_t urg = 0x20;
inline constexpr uint8_t ece = 0x40;
inline constexpr uint8_t cwr = 0x80;
}  // namespace tcp_flag

// One decoded TCP segment. Small and flat; `payload` is only valid during the call.
struct Segment {
  // Ordered widest first so the struct packs without holes: every segment is copied once on its
  // way to a tracker, so its size is paid per packet.
  int64_t ts_ns = 0;
  int64_t clock_ns = 0;       // the capture's clock here: the latest timestamp so far (set by the analysis)
  uint64_t frame = 0;
  const uint8_t* payload = nullptr;
  uint64_t source_mac = 0;    // the outermost Ethernet source address (48 bits) of a SYN or a
                              // RST (the rules read no other); 0 without one, and for other segments
  uint32_t seq = 0, ack = 0;
  uint32_t payload_len = 0;   // TCP payload bytes according to the IP length
  uint32_t payload_captured = 0;  // of those, bytes present in the capture
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  uint16_t window = 0;        // raw, unscaled
  uint16_t ip_id = 0;         // IPv4 identification; 0 for IPv6
  uint8_t flags = 0;
  uint8_t reserved = 0;       // the 4 reserved bits of the data-offset byte (AE is bit 0)
  // Options: only what the analysis reads (MSS, SACK and timestamps are walked over), and only
  // from SYN and RST segments; on others these keep their defaults.
  uint8_t window_scale = 0xff;  // 0xff when absent
  uint8_t mptcp_reset_reason = 0;
  // IP layer (innermost header that carried the TCP segment).
  uint8_t ttl = 0;            // TTL or hop limit
  uint8_t tunnel_depth = 0;   // encapsulations peeled off before this TCP header
  // Whole bytes, not bits: these are written and read for every segment.
  bool df = false;
  bool has_md5_or_ao = false;  // TCP-MD5 (19) or TCP-AO (29)
  bool has_mptcp_reset = false;  // MPTCP MP_TCPRST option (RFC 8684)

  bool has(uint8_t flag) const { return (flags & flag) != 0; }
  // Sequence space the segment occupies: payload plus one for SYN and one for FIN.
  uint32_t seq_len() const {
    return payload_len + (has(tcp_flag::syn) ? 1u : 0u) + (has(tcp_flag::fin) ? 1u : 0u);
  }
};
static_assert(sizeof(Segment) == 112, "Segment grew: it is copied for every packet");

// Flags as tshark prints them in its info column, e.g. "RST, ACK".
std::string flags_to_string(uint8_t flags);

}  // namespace rstscope
