#pragma once
// diagnose/: one cause, one small rule. A rule reads a ResetContext (through Facts) and, when
// the evidence fits its signature, returns a Verdict. The analyzer takes the strongest verdict
// and lists the other matches as alternatives.
#include <optional>
#include <string>
#include <vector>

#include "core/finding.hpp"
#include "track/reset_context.hpp"
#include "track/tracker.hpp"

namespace rstscope {

struct Verdict {
  Cause cause = Cause::unexplained;
  Confidence confidence = Confidence::low;
  Sender sender = Sender::endpoint;
  std::string explanation;
  std::vector<std::string> evidence;
  std::vector<uint64_t> frames;
  std::vector<Cause> alternatives;  // causes this rule itself cannot rule out
  std::string injector;
};

// Facts every rule needs, worked out once per RST.
struct Facts {
  const ResetContext& context;
  const Observations& observations;
  const Endpoint& sender;     // the purported sender, as it stood before the RST
  const Endpoint& receiver;
  const EndpointRare& sender_rare;     // their rare parts
  const EndpointRare& receiver_rare;
  const Segment rst;                  // the RST, addresses and ports restored
  const SegmentBrief answers;         // context.answers(): the receiver's last segment before it
  bool rst_has_ack = false;
  bool answers_syn = false;           // the receiver's last segment was a bare SYN
  bool answers_synack = false;
  bool answers_pure_ack = false;
  bool answers_data = false;
  bool seq_equals_answers_ack = false;  // RFC 9293 §3.5.2: <SEQ=SEG.ACK><CTL=RST>
  bool synchronized = false;          // the handshake finished, or both sides sent data
  bool sender_spoke = false;          // the sender had sent anything before the RST
  // Fingerprint: the RST against the sender's own packets (this connection, else this host).
  bool ttl_known = false;
  bool ttl_matches = true;
  int ttl_distance = 0;               // how far outside the usual range
  uint8_t usual_ttl_min = 0, usual_ttl_max = 0;
  bool ip_id_unlike = false;          // the sender's IP IDs increment, but the RST's does not fit
  bool df_unlike = false;             // the sender always (or never) set DF, and the RST differs
  std::string fingerprint_sentence;   // evidence about the fingerprint, either way

  Facts(const ResetContext& context, const Observations& observations);
  std::string where(const SegmentBrief& brief) const;  // "frame N"
  uint64_t frame(FrameRef ref) const { return context.connection.frame(ref); }
};

using Rule = std::optional<Verdict> (*)(const Facts& facts);

// The rules, one per file, in priority order (the first wins a tie of confidence).
const std::vector<Rule>& rules();

// Declared here, each defined in its own file rule_<cause>.cpp.
std::optional<Verdict> rule_forged(const Facts& facts);
std::optional<Verdict> rule_middlebox(const Facts& facts);
std::optional<Verdict> rule_idle_timeout(const Facts& facts);
std::optional<Verdict> rule_refused(const Facts& facts);
std::optional<Verdict> rule_listen_overflow(const Facts& facts);
std::optional<Verdict> rule_keepalive_timeout(const Facts& facts);
std::optional<Verdict> rule_buffer_overflow(const Facts& facts);
std::optional<Verdict> rule_time_wait_assassination(const Facts& facts);
std::optional<Verdict> rule_data_after_close(const Facts& facts);
std::optional<Verdict> rule_half_open(const Facts& facts);
std::optional<Verdict> rule_abort(const Facts& facts);

}  // namespace rstscope
