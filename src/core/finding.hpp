#pragma once
// The verdicts that leave diagnose/ for report/. Allocation here is per RST, never per packet.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace rstscope {

// Stable cause identifiers (DESIGN.md's table). Their names are part of the output contract.
enum class Cause : uint8_t {
  refused,
  refused_wrong_address,
  abort,
  abort_unread_data,
  data_after_close,
  half_open,
  listen_overflow,
  time_wait_assassination,
  middlebox,
  idle_timeout,
  buffer_overflow,
  keepalive_timeout,
  forged,
  unexplained,
};
inline constexpr int cause_count = 14;

enum class Confidence : uint8_t { low, medium, high };
// Who put the RST on the wire.
enum class Sender : uint8_t { endpoint, path, offpath };
// The RST's seq against what its receiver expected (RFC 5961 §3.2).
enum class SeqCheck : uint8_t { exact, in_window, out_of_window, unknown };

std::string_view to_string(Cause cause);
std::string_view to_string(Confidence confidence);
std::string_view to_string(Sender sender);
std::string_view to_string(SeqCheck check);
std::optional<Cause> cause_from_string(std::string_view name);
// One plain sentence that says what the cause means.
std::string_view describe(Cause cause);

// One RST, judged.
struct Finding {
  uint64_t frame = 0;
  int64_t ts_ns = 0;
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint8_t ttl = 0;
  uint32_t payload_len = 0;

  Cause cause = Cause::unexplained;
  Confidence confidence = Confidence::low;
  Sender sender = Sender::endpoint;
  SeqCheck seq_check = SeqCheck::unknown;
  bool from_originator = false;          // sent by the side that opened the connection
  std::vector<Cause> alternatives;       // causes the evidence cannot rule out
  std::vector<std::string> evidence;     // short factual sentences with frame numbers
  std::vector<uint64_t> frames;          // frames that show it, the RST included
  std::string history;                   // the connection's history letters up to the RST
  std::string explanation;               // one line in plain words
  std::string injector;                  // injector family for forged resets, if recognised
  std::string kernel_reason;             // the sending host's sk_rst_reason, when known
  uint64_t duplicate_of = 0;             // frame of the first RST this one repeats, 0 if none
  uint64_t connection_id = 0;            // the connection's number: the frame of its first packet

  // Back to a default Finding, keeping the storage of its vectors and strings (for reuse).
  void clear();
};

// A pattern that spans many connections: floods, scans, backscatter, blind reset attacks.
struct PatternFinding {
  std::string type;            // rst_flood, syn_flood, backscatter, port_scan, blind_reset_attack
  int64_t first_ns = 0, last_ns = 0;
  std::string subject;         // the host or service it concerns
  std::string parties;         // the other side(s), summarised
  uint64_t count = 0;          // packets or connections that make it up
  double rate_per_second = 0;  // over its span
  std::vector<uint64_t> example_frames;
  std::string explanation;
  Confidence confidence = Confidence::medium;
};

// A connection that saw at least one RST, summarised.
struct ConnectionSummary {
  uint64_t connection_id = 0;
  Address originator, responder;
  uint16_t originator_port = 0, responder_port = 0;
  int64_t first_ns = 0, last_ns = 0;
  uint64_t first_frame = 0;
  uint64_t packets = 0;
  uint64_t originator_bytes = 0, responder_bytes = 0;
  std::string history;
  std::string state;           // e.g. "reset by responder"
  uint32_t resets = 0;
  std::vector<Cause> causes;   // one per RST, in order
  bool handshake_seen = false;
};

}  // namespace rstscope
