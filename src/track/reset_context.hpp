#pragma once
// One RST with everything needed to judge it: the connection as it stood, the seq check,
// the fingerprint comparison, and what followed within the judging horizon.
#include <array>
#include <cstdint>
#include <memory>
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

// What happened on the connection after the RST, up to the horizon.
struct AfterReset {
  uint32_t sender_segments = 0;      // non-RST segments from the purported sender
  SegmentBrief sender_first;         // the first of them
  bool sender_continued = false;     // it carried on its own sequence (data or ACK), not a SYN
  bool sender_acked_answers = false; // its later ACKs cover the segment the RST answered
  bool sender_syn = false;           // it opened again with a SYN
  SegmentBrief sender_synack;        // a SYN/ACK from it after the RST
  uint32_t receiver_segments = 0;    // segments from the RST's receiver
  SegmentBrief receiver_first;
  uint32_t receiver_data = 0;        // of those, ones carrying data
  bool challenge_ack = false;        // the receiver's first answer was a bare ACK (RFC 5961 §3.2)
  SegmentBrief challenge;
  SegmentBrief exact_rst_after_challenge;  // the sender's RST with seq = the challenge's ack
  std::vector<SegmentBrief> sender_rsts;   // later RSTs from the same sender
  SegmentBrief receiver_rst;         // a RST from the other side soon after
  bool ended = false;                // the connection ended before the horizon
};

struct ResetContext {
  Segment rst;                       // payload pointer cleared
  std::array<char, 64> payload_text{};
  uint8_t payload_text_length = 0;
  bool from_originator = false;
  bool connection_new = false;       // the RST was the first packet seen on this 4-tuple
  int64_t deadline_ns = 0;           // the capture's clock at which its horizon ends
  Connection connection;             // snapshot just before the RST
  ConnectionRare rare;               // its rare part, as it stood then
  SegmentBrief answers;              // the receiver's last segment before the RST
  int64_t silence_ns = 0;            // how long the connection was silent before `answers`
  int64_t since_answers_ns = -1;     // time from `answers` to the RST, -1 when none

  SeqCheck seq_check = SeqCheck::unknown;
  uint32_t expected_seq = 0;         // what the receiver would accept exactly
  uint32_t receive_window = 0;       // the receiver's scaled window
  bool seq_is_fin = false;           // seq equals the sender's FIN seq (stacks reset after FIN)

  uint64_t earlier_reset_frame = 0;  // the first RST from the same sender on this connection
  uint32_t earlier_resets = 0;

  // Hosts and services seen elsewhere in the capture.
  uint8_t host_ttl_min = 0, host_ttl_max = 0;  // the sender address's TTLs in other connections

  AfterReset after;
  // Set when this was the connection's last RST; held apart, since few RSTs need it.
  std::unique_ptr<Connection> ended_connection;
};

}  // namespace rstscope
