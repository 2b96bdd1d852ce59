#pragma once
// track/: the state of one TCP connection as an observer sees it from both directions.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/types.hpp"

namespace rstscope {

// The 4-tuple in a canonical order, so both directions find the same connection. Laid out for
// wide loads: each address's 16 bytes (IPv4 in the first 4, the rest zero), then the ports and
// the family in one word. Every segment builds a key and hashes it, and every lookup compares
// one: built from whole words, its bytes are read back from the stores that wrote them.
struct ConnectionKey {
  std::array<uint8_t, 16> low_bytes{}, high_bytes{};
  uint64_t tail = 0;  // low port | high port << 16 | family << 32

  // Inline, with hash(): both run for every segment.
  static ConnectionKey of(const Segment& segment) {
    const bool source_low = segment.src < segment.dst ||
                            (segment.src == segment.dst && segment.sport <= segment.dport);
    const Address& low = source_low ? segment.src : segment.dst;
    const Address& high = source_low ? segment.dst : segment.src;
    const uint16_t low_port = source_low ? segment.sport : segment.dport;
    const uint16_t high_port = source_low ? segment.dport : segment.sport;
    ConnectionKey key;
    key.low_bytes = low.bytes;
    key.high_bytes = high.bytes;
    key.tail = uint64_t{low_port} | uint64_t{high_port} << 16 | uint64_t{low.family} << 32;
    return key;
  }
  Address low_address() const { return address(low_bytes); }
  Address high_address() const { return address(high_bytes); }
  uint16_t low_port() const { return static_cast<uint16_t>(tail); }
  uint16_t high_port() const { return static_cast<uint16_t>(tail >> 16); }
  uint8_t family() const { return static_cast<uint8_t>(tail >> 32); }
  // True when the segment travels from the key's low side to its high side.
  bool from_low(const Segment& segment) const {
    return same_bytes(segment.src.bytes, low_bytes) && segment.sport == low_port();
  }
  // Both IPv4 addresses in one word: the first 4 bytes of each (what a Connection keeps).
  uint64_t v4_word() const {
    uint32_t low, high;
    std::memcpy(&low, low_bytes.data(), 4);
    std::memcpy(&high, high_bytes.data(), 4);
    return uint64_t{low} | uint64_t{high} << 32;
  }
  // Word-wise multiply-xor over the canonical key (symmetric because the key is canonical).
  uint64_t hash() const {
    uint64_t words[4];
    std::memcpy(words, low_bytes.data(), 16);
    std::memcpy(words + 2, high_bytes.data(), 16);
    uint64_t value = (words[0] ^ tail) * 0x9e3779b97f4a7c15ull;
    value ^= words[1] * 0xc2b2ae3d27d4eb4full;
    value ^= words[2] * 0x165667b19e3779f9ull;
    value ^= words[3] * 0xd6e8feb86659fd93ull;
    value ^= tail * 0xff51afd7ed558ccdull;
    value ^= value >> 32;
    value *= 0x9fb21c651e98df25ull;
    value ^= value >> 29;
    return value;
  }
  // Five word compares: this runs on every lookup.
  friend bool operator==(const ConnectionKey& a, const ConnectionKey& b) {
    return same_bytes(a.low_bytes, b.low_bytes) && same_bytes(a.high_bytes, b.high_bytes) && a.tail == b.tail;
  }

 private:
  static bool same_bytes(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b) {
    uint64_t a_words[2], b_words[2];
    std::memcpy(a_words, a.data(), 16);
    std::memcpy(b_words, b.data(), 16);
    return ((a_words[0] ^ b_words[0]) | (a_words[1] ^ b_words[1])) == 0;
  }
  Address address(const std::array<uint8_t, 16>& bytes) const {
    Address result;
    result.bytes = bytes;
    result.family = family();
    return result;
  }
};
static_assert(sizeof(ConnectionKey) == 40);

// Times and frame numbers are kept in 32 bits, relative to the connection's first packet, and
// read through the Connection.
// A time within the connection, in its time unit. Stamps of one connection compare like the
// times they stand for.
struct Stamp {
  uint32_t ticks = 0;
  friend auto operator<=>(const Stamp&, const Stamp&) = default;
};
// A duration, in the connection's time unit.
struct Span {
  uint32_t ticks = 0;
};
// A frame number as its offset from the connection's first frame plus one: 0 for none, and for a
// frame too far on to tell (evidence drops frame 0).
struct FrameRef {
  uint32_t offset = 0;
};

// What one side of the connection did, as seen on the wire.
struct Endpoint {
  // Ordered widest first so the struct packs without holes.
  uint32_t isn = 0;
  uint32_t next_seq = 0;     // highest seq + length sent: the sender's SND.NXT as seen
  uint32_t max_ack = 0;      // highest ack sent: what this side has received in order
  uint32_t fin_seq = 0;
  uint32_t last_seq = 0, last_ack = 0;  // of the last non-RST segment it sent
  uint32_t packets = 0;
  // Payload length (records are under 16 MiB) and flags of its last non-RST segment, in one
  // word written whole (two bit-field writes made the second read back the first's byte).
  uint32_t last_payload_and_flags = 0;
  Stamp last_ts;
  Stamp last_data_ts;
  Stamp fin_ts;
  Span gap_before_last;      // the connection's silence just before its last packet
  FrameRef last_frame;
  FrameRef syn_frame;
  FrameRef fin_frame;
  FrameRef last_data_frame;
  uint32_t bytes_low = 0;    // bytes() in two parts, so the struct needs no 8-byte alignment
  uint16_t bytes_high = 0;
  uint16_t window = 0;       // last raw window
  uint16_t ip_id = 0;        // last IP ID
  uint16_t resets = 0;       // RSTs it sent, saturating at 65535 (non_rst_packets counts the others)
  uint16_t max_window_raw = 0;  // max_window() = max_window_raw << max_window_shift
  uint8_t ttl_min = 255, ttl_max = 0;  // over its non-RST packets
  uint8_t fin_acks = 0;      // ACKs it sent that cover the peer's FIN
  uint8_t window_scale : 4 = 0;   // negotiated shift (0 until both sides offer it)
  uint8_t offered_scale : 4 = no_scale;  // its SYN's shift, capped at 14 as it is applied
  uint8_t max_window_shift : 4 = 0;
  // Saturating at 3, which is all the rules ask: did it speak, and (IPv4) did 3 packets carry IP IDs.
  uint8_t non_rst_packets : 2 = 0;
  uint8_t episode_resets : 2 = 0;  // RSTs since it last sent anything else, saturating at 3
  bool ack_known : 1 = false;
  bool syn_seen : 1 = false;
  bool fin_seen : 1 = false;
  bool data_seen : 1 = false;
  bool df_seen : 1 = false;            // some of its packets carried DF
  bool df_missing : 1 = false;         // some of its packets did not
  bool ip_id_incrementing : 1 = true;  // every IP ID so far was a small step up from the last
  bool ip_id_zero : 1 = true;          // every IP ID so far was zero

  static constexpr uint8_t no_scale = 15;  // its SYN offered no window scale

  uint32_t last_payload() const { return last_payload_and_flags & 0xffffff; }
  uint8_t last_flags() const { return static_cast<uint8_t>(last_payload_and_flags >> 24); }
  void set_last(uint32_t payload_len, uint8_t flags) {
    last_payload_and_flags = (payload_len & 0xffffff) | uint32_t{flags} << 24;
  }
  // next_seq holds a real value: every non-RST segment gives it one.
  bool seq_known() const { return non_rst_packets > 0; }
  bool usual_ttl(uint8_t value) const { return ttl_max != 0 && value >= ttl_min && value <= ttl_max; }
  // The window it last offered, scaled.
  uint32_t scaled_window() const { return static_cast<uint32_t>(window) << window_scale; }
  // Largest scaled window advertised: always some raw window times its shift, so it packs exactly.
  uint32_t max_window() const { return static_cast<uint32_t>(max_window_raw) << max_window_shift; }
  void offer_window(uint16_t raw, uint8_t shift) {
    if ((static_cast<uint32_t>(raw) << shift) <= max_window()) return;
    max_window_raw = raw;
    max_window_shift = shift & 0xf;
  }
  uint64_t bytes() const { return static_cast<uint64_t>(bytes_high) << 32 | bytes_low; }
  void add_bytes(uint32_t count) {
    const uint64_t total = bytes() + count;
    bytes_low = static_cast<uint32_t>(total);
    bytes_high = static_cast<uint16_t>(total >> 32);
  }
};

// What only some connections show, kept out of the Connection (ConnectionTable::rare) so the
// common connection stays small. Absent, every field reads as its default.
struct EndpointRare {
  int64_t zero_window_ts = 0;      // last zero-window advertisement
  FrameRef zero_window_frame;
  FrameRef keepalive_frame;
  FrameRef episode_rst_frame;      // the first RST of its current episode, once it has two
  uint16_t zero_windows = 0;       // zero-window advertisements
  uint16_t keepalives = 0;         // keep-alive probes since its last ACK progress
  uint16_t retransmissions = 0;    // retransmitted data segments
  uint16_t stalled_retransmissions = 0;  // retransmissions since the peer's ack last moved
};

struct ConnectionRare {
  EndpointRare originator, responder;
  FrameRef syn_in_established_frame;
  bool syn_in_established = false;  // a SYN arrived while the connection was synchronized

  EndpointRare& side(bool of_originator) { return of_originator ? originator : responder; }
  const EndpointRare& side(bool of_originator) const { return of_originator ? originator : responder; }
};

// Zeek-style history letters: upper case for the originator, lower case for the responder.
class History {
 public:
  // The 16 letters a history holds, as 4-bit codes: a letter's code is its place here.
  static constexpr std::string_view letters = "shadfrtwSHADFRTW";

  // Inline: the tracker adds a few letters to every connection, and with the letter a constant
  // here (or one of two), its code is worked out when compiling instead of searched for each
  // time. A search (string_view::find) was left as a call where the letter was one of two.
  [[gnu::always_inline]] void add(char letter, bool originator) {
    if (length_ == capacity) return;
    const auto code = static_cast<uint8_t>(code_of(letter) + (originator ? 8 : 0));
    codes_[length_ / 2] |= static_cast<uint8_t>(code << (length_ % 2 * 4));
    ++length_;
  }
  std::string str() const;
  void str_to(std::string& text) const;  // the same, into `text` (its storage reused)
  // A lower-case letter's place in `letters`.
  static constexpr uint8_t code_of(char letter) {
    switch (letter) {
      case 's': return 0;
      case 'h': return 1;
      case 'a': return 2;
      case 'd': return 3;
      case 'f': return 4;
      case 'r': return 5;
      case 't': return 6;
      case 'w': return 7;
      default: return 0xff;  // not a letter add() takes
    }
  }

 private:
  static constexpr size_t capacity = 23;
  std::array<uint8_t, (capacity + 1) / 2> codes_{};  // two 4-bit letter codes per byte
  uint8_t length_ = 0;
};

// Times are kept as Stamps and Spans in the connection's time unit: 1 ns while it is younger
// than 4.3 s, then 1 us << (time_shift - 1), coarsened as it grows older, so times keep 1 us or
// better for 71 minutes. Times before first_ts count as first_ts.
//
// A Connection keeps its key in 16 bytes: the ports and family as in ConnectionKey::tail and,
// for IPv4, both addresses in one word. An IPv6 connection's addresses follow it in the
// ConnectionRecord that holds it: the table keeps IPv6 connections as records, IPv4 ones
// without, and every copy of a connection made outside the table is a record. So a Connection
// is only ever copied as a record (its own copy is protected), and never loses its addresses.
struct Connection {
  // Ordered so the struct packs tightly.
  uint64_t v4_addresses = 0;  // ConnectionKey::v4_word(); 0 for IPv6
  uint64_t key_tail = 0;      // ConnectionKey::tail
  History history;
  uint8_t time_shift = 0;
  bool handshake_seen : 1 = false;   // SYN from the originator seen
  bool synack_seen : 1 = false;
  bool established : 1 = false;      // the handshake's final ACK, or data both ways
  bool originator_known : 1 = true;  // false when the first packet did not tell who opened it
  bool originator_is_low : 1 = true;  // which side of the key opened the connection
  bool last_from_originator : 1 = false;  // who sent its last packet
  bool signed_syn : 1 = false;     // the originator's SYN carried TCP-MD5 or TCP-AO
  bool signed_synack : 1 = false;  // so did the responder's SYN/ACK
  uint8_t list = 0;               // the idle list it is on
  uint16_t synack_retransmissions = 0;
  uint16_t syn_retransmissions = 0;
  uint32_t last_ts_rest = 0;     // what last_ts() has below the time unit
  int64_t first_ts = 0;
  uint64_t first_frame = 0;
  // Number + 1 of its newest waiting RST, modulo 2^32 (fewer than 2^31 wait at once); 0 for none.
  uint32_t newest_pending = 0;
  // The capture's clock when it was last moved to the front of its list, in units of
  // 2^touch_unit_shift ns (about a millisecond), modulo 2^32 (49 days; idle times are shorter).
  uint32_t touched = 0;
  uint32_t resets = 0;
  uint32_t pending_resets = 0;   // RSTs still waiting for their horizon
  Span handshake_rtt;            // SYN to the final handshake ACK, as seen
  uint32_t rare = 0;             // its ConnectionRare in the table, 0 for none
  // Links for the idle lists, by pool index.
  uint32_t older = 0, newer = 0;
  Endpoint originator, responder;

  static constexpr int touch_unit_shift = 20;
  static uint32_t touch_units(int64_t clock_ns) { return static_cast<uint32_t>(static_cast<uint64_t>(clock_ns) >> touch_unit_shift); }

  Connection() = default;

  // The connection's number: the frame of its first packet (one packet opens at most one).
  uint64_t id() const { return first_frame; }
  uint8_t family() const { return static_cast<uint8_t>(key_tail >> 32); }
  bool is_v6() const { return family() == 6; }
  // Its full key (for IPv6 from the record that holds it).
  ConnectionKey key() const;
  // Whether `key` is its key: the tail and the IPv4 word, or for IPv6 the record's addresses.
  bool has_key(const ConnectionKey& key) const;
  void set_key(const ConnectionKey& key);
  Address originator_address() const { return address(originator_is_low); }
  uint16_t originator_port() const { return port(originator_is_low); }
  Address responder_address() const { return address(!originator_is_low); }
  uint16_t responder_port() const { return port(!originator_is_low); }
  Endpoint& sender(bool from_originator) { return from_originator ? originator : responder; }
  Endpoint& receiver(bool from_originator) { return from_originator ? responder : originator; }
  const Endpoint& sender(bool from_originator) const { return from_originator ? originator : responder; }
  const Endpoint& receiver(bool from_originator) const { return from_originator ? responder : originator; }
  // Both ends signed the handshake: they share a key and sign every segment (RFC 2385, RFC 5925).
  bool signed_handshake() const { return signed_syn && signed_synack; }
  bool closed() const { return (originator.fin_seen && responder.fin_seen) || resets > 0; }

  uint64_t packets() const { return uint64_t{originator.packets} + responder.packets; }
  // Its last packet's time, to the nanosecond: it is printed, and it ages connections out.
  int64_t last_ts() const {
    return time(last_from_originator ? originator.last_ts : responder.last_ts) + last_ts_rest;
  }
  int64_t handshake_rtt_ns() const { return duration(handshake_rtt); }

  int64_t time(Stamp stamp) const { return first_ts + to_ns(stamp.ticks); }
  int64_t duration(Span span) const { return to_ns(span.ticks); }
  uint64_t frame(FrameRef ref) const { return ref.offset == 0 ? 0 : first_frame + ref.offset - 1; }
  // `stamp` and `span` must be the connection's own fields: a coarser unit rescales only those.
  void set_time(Stamp& stamp, int64_t ts_ns) { stamp.ticks = to_ticks(std::max<int64_t>(ts_ns - first_ts, 0)); }
  void set_duration(Span& span, int64_t ns) { span.ticks = to_ticks(std::max<int64_t>(ns, 0)); }
  void set_frame(FrameRef& ref, uint64_t frame) const {
    const uint64_t offset = frame - first_frame;  // huge when frame < first_frame
    ref.offset = offset < 0xffffffffu ? static_cast<uint32_t>(offset + 1) : 0;
  }
  // Records the time of the packet `from_originator` just sent as that side's and the connection's last.
  // Inline: it runs for every packet.
  void set_last_ts(bool from_originator, int64_t ts_ns) {
    Stamp& stamp = sender(from_originator).last_ts;
    const int64_t offset = std::max<int64_t>(ts_ns - first_ts, 0);
    stamp.ticks = to_ticks(offset);
    last_from_originator = from_originator;
    last_ts_rest = static_cast<uint32_t>(offset - to_ns(stamp.ticks));
  }

 protected:
  // Only records copy connections whole (see above); the table's IPv4 entries may too.
  Connection(const Connection&) = default;
  Connection& operator=(const Connection&) = default;

 private:
  Address address(bool low) const;
  uint16_t port(bool low) const { return static_cast<uint16_t>(key_tail >> (low ? 0 : 16)); }
  int64_t to_ns(uint32_t ticks) const {
    return time_shift == 0 ? int64_t{ticks} : (int64_t{ticks} * 1000) << (time_shift - 1);
  }
  // Makes `ns` (non-negative) fit a tick count, coarsening the unit as needed.
  // Inline only for a connection still counting in nanoseconds (younger than 4.3 s).
  uint32_t to_ticks(int64_t ns) {
    if (time_shift == 0 && ns <= 0xffffffff) [[likely]] return static_cast<uint32_t>(ns);
    return to_coarse_ticks(ns);
  }
  uint32_t to_coarse_ticks(int64_t ns);
  // Doubles the time unit (from 1 ns straight to 1 us), rescaling every Stamp and Span it holds.
  void coarsen();
};

// Every live IPv4 connection costs this much plus its table slot: four cache lines.
static_assert(sizeof(Connection) <= 256, "Connection grew");

// A Connection with room for its IPv6 addresses: what the table keeps for IPv6, and what every
// copy of a connection outside the table is (snapshots for RSTs, connections handed on).
struct ConnectionRecord : Connection {
  std::array<uint8_t, 16> low6{}, high6{};  // IPv6 only

  ConnectionRecord() = default;
  // Copies `connection` whole: for IPv6, `connection` is a record too.
  explicit ConnectionRecord(const Connection& connection) : Connection(connection) {
    if (connection.is_v6()) {
      const auto& record = static_cast<const ConnectionRecord&>(connection);
      low6 = record.low6;
      high6 = record.high6;
    }
  }
  ConnectionRecord(const ConnectionRecord&) = default;
  ConnectionRecord& operator=(const ConnectionRecord&) = default;
};

inline ConnectionKey Connection::key() const {
  ConnectionKey key;
  key.tail = key_tail;
  if (is_v6()) {
    const auto& record = static_cast<const ConnectionRecord&>(*this);
    key.low_bytes = record.low6;
    key.high_bytes = record.high6;
  } else {
    const auto low = static_cast<uint32_t>(v4_addresses), high = static_cast<uint32_t>(v4_addresses >> 32);
    std::memcpy(key.low_bytes.data(), &low, 4);
    std::memcpy(key.high_bytes.data(), &high, 4);
  }
  return key;
}

inline bool Connection::has_key(const ConnectionKey& key) const {
  if (key.tail != key_tail) return false;
  if (!is_v6()) return key.v4_word() == v4_addresses;
  const auto& record = static_cast<const ConnectionRecord&>(*this);
  return std::memcmp(record.low6.data(), key.low_bytes.data(), 16) == 0 &&
         std::memcmp(record.high6.data(), key.high_bytes.data(), 16) == 0;
}

inline void Connection::set_key(const ConnectionKey& key) {
  key_tail = key.tail;
  if (is_v6()) {
    auto& record = static_cast<ConnectionRecord&>(*this);
    record.low6 = key.low_bytes;
    record.high6 = key.high_bytes;
  } else {
    v4_addresses = key.v4_word();
  }
}

inline Address Connection::address(bool low) const {
  const ConnectionKey full = key();
  return low ? full.low_address() : full.high_address();
}

}  // namespace rstscope
