#pragma once
// track/: the state of one TCP connection as an observer sees it from both directions.
#include <array>
#include <cstdint>
#include <string>

#include "core/types.hpp"

namespace rstscope {

// The 4-tuple in a canonical order, so both directions find the same connection.
struct ConnectionKey {
  Address low_address, high_address;
  uint16_t low_port = 0, high_port = 0;

  static ConnectionKey of(const Segment& segment);
  // True when the segment travels from the key's low side to its high side.
  bool from_low(const Segment& segment) const {
    return segment.src == low_address && segment.sport == low_port;
  }
  uint64_t hash() const;
  friend bool operator==(const ConnectionKey&, const ConnectionKey&) = default;
};

// What one side of the connection did, as seen on the wire.
struct Endpoint {
  // Ordered widest last-to-first so the struct packs without holes.
  uint32_t isn = 0;
  uint32_t next_seq = 0;     // highest seq + length sent: the sender's SND.NXT as seen
  uint32_t max_ack = 0;      // highest ack sent: what this side has received in order
  uint32_t fin_seq = 0;
  uint32_t last_seq = 0, last_ack = 0;  // of the last non-RST segment it sent
  uint32_t max_window = 0;   // largest scaled window advertised
  uint32_t packets = 0;
  uint32_t last_payload = 0;  // payload length of its last non-RST segment
  uint16_t window = 0;       // last raw window
  uint16_t ip_id = 0;        // last IP ID
  uint16_t packets_with_ip_id = 0;
  uint16_t zero_windows = 0;       // zero-window advertisements
  uint16_t keepalives = 0;         // keep-alive probes since its last ACK progress
  uint16_t retransmissions = 0;    // retransmitted data segments
  uint16_t stalled_retransmissions = 0;  // retransmissions since the peer's ack last moved
  uint16_t resets = 0;
  uint16_t episode_resets = 0;     // RSTs since it last sent anything else
  uint8_t window_scale = 0;  // negotiated shift (0 until both sides offer it)
  uint8_t offered_scale = 0xff;
  uint8_t ttl = 0;           // TTL of its first non-RST packet
  uint8_t ttl_min = 255, ttl_max = 0;  // over its non-RST packets
  uint8_t last_flags = 0;
  uint8_t fin_acks = 0;      // ACKs it sent that cover the peer's FIN
  bool seq_known : 1 = false;    // next_seq holds a real value
  bool ack_known : 1 = false;
  bool syn_seen : 1 = false;
  bool fin_seen : 1 = false;
  bool data_seen : 1 = false;
  bool df_seen : 1 = false;            // some of its packets carried DF
  bool df_missing : 1 = false;         // some of its packets did not
  bool ip_id_incrementing : 1 = true;  // every IP ID so far was a small step up from the last
  bool ip_id_zero : 1 = true;          // every IP ID so far was zero
  uint64_t bytes = 0;
  int64_t last_ts = 0;
  int64_t last_data_ts = 0;
  int64_t fin_ts = 0;
  int64_t zero_window_ts = 0;      // last zero-window advertisement
  int64_t gap_before_last_ns = 0;  // the connection's silence just before its last packet
  uint64_t last_frame = 0;
  uint64_t syn_frame = 0;
  uint64_t fin_frame = 0;
  uint64_t last_data_frame = 0;
  uint64_t zero_window_frame = 0;
  uint64_t keepalive_frame = 0;
  uint64_t episode_rst_frame = 0;  // the first RST of its current episode

  bool usual_ttl(uint8_t value) const { return ttl_max != 0 && value >= ttl_min && value <= ttl_max; }
  // The window it last offered, scaled.
  uint32_t scaled_window() const { return static_cast<uint32_t>(window) << window_scale; }
};

// Zeek-style history letters: upper case for the originator, lower case for the responder.
class History {
 public:
  void add(char letter, bool originator);
  std::string str() const { return std::string(letters_.data(), length_); }

 private:
  static constexpr size_t capacity = 23;
  std::array<char, capacity> letters_{};
  uint8_t length_ = 0;
};

struct Connection {
  ConnectionKey key;
  uint64_t id = 0;
  Endpoint originator, responder;
  History history;
  int64_t first_ts = 0, last_ts = 0;
  uint64_t first_frame = 0;
  uint64_t packets = 0;
  uint32_t resets = 0;
  uint32_t pending_resets = 0;   // RSTs still waiting for their horizon
  uint64_t newest_pending = 0;   // number + 1 of its newest waiting RST, 0 for none
  int64_t handshake_rtt_ns = 0;  // SYN to the final handshake ACK, as seen
  uint16_t synack_retransmissions = 0;
  uint16_t syn_retransmissions = 0;
  bool handshake_seen = false;   // SYN from the originator seen
  bool synack_seen = false;
  bool established = false;      // the handshake's final ACK, or data both ways
  bool originator_known = true;  // false when the first packet did not tell who opened it
  bool syn_in_established = false;  // a SYN arrived while the connection was synchronized
  bool originator_is_low = true;  // which side of the key opened the connection
  uint8_t list = 0;               // the idle list it is on
  uint64_t syn_in_established_frame = 0;
  // Links for the idle lists, by pool index.
  uint32_t older = 0, newer = 0;
  int64_t touched_ts = 0;        // when it was last moved to the front of its list

  const Address& originator_address() const { return originator_is_low ? key.low_address : key.high_address; }
  uint16_t originator_port() const { return originator_is_low ? key.low_port : key.high_port; }
  const Address& responder_address() const { return originator_is_low ? key.high_address : key.low_address; }
  uint16_t responder_port() const { return originator_is_low ? key.high_port : key.low_port; }
  bool from_originator(const Segment& segment) const { return key.from_low(segment) == originator_is_low; }
  Endpoint& sender(bool from_originator) { return from_originator ? originator : responder; }
  Endpoint& receiver(bool from_originator) { return from_originator ? responder : originator; }
  bool closed() const { return (originator.fin_seen && responder.fin_seen) || resets > 0; }
};

}  // namespace rstscope
