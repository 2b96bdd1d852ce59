#pragma once
// One RST with everything needed to judge it: the connection as it stood, the seq check,
// the fingerprint comparison, and what followed within the judging horizon.
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/finding.hpp"
#include "track/connection.hpp"

namespace rstscope {

// A segment reduced to what the rules look at.
struct SegmentBrief {
  uint64_t frame = 0;
  int64_t ts_ns = 0;
  uint32_t seq = 0, ack = 0, payload_len = 0;
  uint16_t window = 0, ip_id = 0;
  uint8_t flags = 0, ttl = 0;
  bool from_originator = false;
  bool valid = false;

  static SegmentBrief of(const Segment& segment, bool from_originator);
  bool has(uint8_t flag) const { return (flags & flag) != 0; }
  uint32_t seq_len() const {
    return payload_len + ((flags & tcp_flag::syn) ? 1u : 0u) + ((flags & tcp_flag::fin) ? 1u : 0u);
  }
};

// The RST itself, less what the connection's key holds (its addresses and ports) and the rest
// of the Segment no rule reads.
struct ResetSegment {
  uint64_t frame = 0;
  int64_t ts_ns = 0;
  uint64_t source_mac = 0;
  uint32_t seq = 0, ack = 0, payload_len = 0;
  uint16_t window = 0, ip_id = 0;
  uint8_t flags = 0, reserved = 0, ttl = 0, mptcp_reset_reason = 0;
  bool df = false;
  bool has_mptcp_reset = false;
  bool has_md5_or_ao = false;
  bool from_low = false;  // it travelled from the key's low side to its high side

  static ResetSegment of(const Segment& segment, bool from_low);
  // The RST as a Segment again, with the addresses and ports from `key` (its connection's).
  Segment segment(const ConnectionKey& key) const;
};

// What happened on the connection after the RST, up to the horizon.
struct AfterReset {
  uint32_t sender_segments = 0;      // non-RST segments from the purported sender
  SegmentBrief sender_first;         // the first of them
  bool sender_continued = false;     // it carried on its own sequence (data or ACK), not a SYN
  bool sender_acked_answers = false; // its later ACKs cover the segment the RST answered
  bool sender_syn = false;           // it opened again with a SYN
  SegmentBrief sender_synack;        // a SYN/ACK from it after the RST
  uint32_t receiver_segments = 0;    // segments from the RST's receiver
  bool challenge_ack = false;        // the receiver's first answer was a bare ACK (RFC 5961 §3.2)
  SegmentBrief challenge;
  SegmentBrief exact_rst_after_challenge;  // the sender's RST with seq = the challenge's ack
  std::vector<SegmentBrief> sender_rsts;   // later RSTs from the same sender
  SegmentBrief receiver_rst;         // a RST from the other side soon after
};

// Thousands of RSTs can wait for their horizon at once, so what most of them lack (payload
// text, a rare part, anything after the RST) is held apart and only when present.
struct ResetContext {
  ResetSegment rst;
  bool from_originator = false;
  bool connection_new = false;       // the RST was the first packet seen on this 4-tuple
  bool seq_is_fin = false;           // seq equals the sender's FIN seq (stacks reset after FIN)
  SeqCheck seq_check = SeqCheck::unknown;
  uint8_t earlier_resets = 0;        // the sender's RSTs in this episode before this one, up to 3
  uint8_t payload_text_length = 0;
  // Hosts and services seen elsewhere in the capture.
  uint8_t host_ttl_min = 0, host_ttl_max = 0;  // the sender address's TTLs in other connections
  int64_t deadline_ns = 0;           // the capture's clock at which its horizon ends
  ConnectionRecord connection;       // snapshot just before the RST
  uint32_t expected_seq = 0;         // what the receiver would accept exactly
  uint32_t receive_window = 0;       // the receiver's scaled window
  uint64_t earlier_reset_frame = 0;  // the first RST from the same sender on this connection

  // Its payload's first `payload_text_max` bytes, unprintable ones as '.'; set when the RST
  // carried payload.
  std::unique_ptr<char[]> payload_chars;
  // The connection's rare part as it stood then; set when it had one.
  std::unique_ptr<ConnectionRare> rare_part;
  // Set by the first segment that follows the RST within its horizon.
  std::unique_ptr<AfterReset> after_part;
  // Set when this was the connection's last RST and the connection ended while it waited.
  std::unique_ptr<ConnectionRecord> ended_connection;

  static constexpr uint32_t payload_text_max = 64;

  // The source of the RST, from its connection's key.
  Address source() const {
    const ConnectionKey key = connection.key();
    return rst.from_low ? key.low_address() : key.high_address();
  }
  std::string_view payload_text() const { return {payload_chars.get(), payload_text_length}; }
  const ConnectionRare& rare() const { return rare_part ? *rare_part : none.rare; }
  const AfterReset& after() const { return after_part ? *after_part : none.after; }
  // The receiver's last segment before the RST, as the snapshot holds it; not valid when none.
  SegmentBrief answers() const;
  int64_t silence_ns() const;        // how long the connection was silent before answers()
  int64_t since_answers_ns() const;  // time from answers() to the RST, -1 when none

 private:
  // What the absent parts read as.
  struct Absent {
    ConnectionRare rare;
    AfterReset after;
  };
  static const Absent none;
};

// Every waiting RST costs this much: keep it from growing beyond its snapshot.
static_assert(sizeof(ResetContext) <= sizeof(ConnectionRecord) + 112, "ResetContext grew");

}  // namespace rstscope
