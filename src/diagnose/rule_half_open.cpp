#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// half_open (article 3.3, RFC 9293 §3.5.1 Figures 10-11, RFC 5961 §4).
// Signatures: (a) a bare RST with seq = the ack of the segment it answers, from a side that has
// no connection any more (<SEQ=SEG.ACK><CTL=RST>); (b) a restarted host's SYN draws an ACK
// (challenge ACK) instead of a SYN/ACK, and the host answers that ACK with an exact RST;
// (c) an in-window RST draws a challenge ACK and the genuine peer confirms with an exact RST.
std::optional<Verdict> rule_half_open(const Facts& facts) {
  const ResetContext& context = facts.context;
  const Connection& connection = context.connection;
  const AfterReset& after = context.after();
  Verdict verdict;
  verdict.cause = Cause::half_open;

  // (c) RFC 5961 §3.2 exchange: challenge ACK then an exact RST from the same sender.
  if (context.seq_check == SeqCheck::in_window && after.challenge_ack && after.exact_rst_after_challenge.valid) {
    verdict.confidence = Confidence::high;
    verdict.frames = {after.challenge.frame, after.exact_rst_after_challenge.frame};
    verdict.evidence.push_back(fmt::format("in the window but not exact: the receiver sent a challenge ACK in frame {}",
                                           after.challenge.frame));
    verdict.evidence.push_back(fmt::format("the sender answered it with an exact RST in frame {} (RFC 5961 §3.2)",
                                           after.exact_rst_after_challenge.frame));
    verdict.explanation = fmt::format("{} had lost the connection and confirmed it through the challenge ACK",
                                      facts.rst.src.to_string());
    return verdict;
  }
  if (!facts.seq_equals_answers_ack || facts.rst_has_ack) return std::nullopt;

  // (b) A SYN from a restarted host drew an ACK, not a SYN/ACK (RFC 5961 §4, RFC 9293 Figure 10).
  const bool sender_sent_syn = facts.sender.syn_seen && !facts.answers_synack;
  if (facts.answers_pure_ack && (context.rare().syn_in_established || (sender_sent_syn && !connection.synack_seen))) {
    verdict.confidence = Confidence::high;
    verdict.frames = {facts.frame(facts.sender.syn_frame), facts.answers.frame};
    verdict.evidence.push_back(fmt::format(
        "the sender's SYN in frame {} drew a bare ACK in frame {}, not a SYN/ACK: the peer still held an older connection",
        facts.frame(facts.sender.syn_frame), facts.answers.frame));
    verdict.evidence.push_back("seq = that ACK's ack, as a host with no such connection answers (RFC 9293 §3.5.2)");
    verdict.explanation = fmt::format(
        "{} still held an old connection on this 4-tuple that {} had forgotten (restart); the RST clears it",
        facts.rst.dst.to_string(), facts.rst.src.to_string());
    return verdict;
  }
  if (facts.answers_syn) return std::nullopt;

  // (a) A bare RST answering the peer's segment: the sender has no connection for it.
  verdict.confidence = Confidence::medium;
  verdict.frames = {facts.answers.frame};
  verdict.evidence.push_back(fmt::format(
      "a bare RST with seq = the ack of the {} in frame {}: the reply of a host with no such connection",
      facts.answers_data ? "data" : (facts.answers_synack ? "SYN/ACK" : "segment"), facts.answers.frame));
  if (facts.answers_synack) {
    verdict.evidence.push_back("the originator had no connection waiting for this SYN/ACK (a SYN scan or a lost connect)");
    verdict.alternatives.push_back(Cause::abort);
    verdict.explanation = fmt::format("{} reset the handshake at once: it had no connection waiting for the SYN/ACK",
                                      facts.rst.src.to_string());
    return verdict;
  }
  const bool only_synack = !facts.context.from_originator && connection.synack_seen && !facts.sender.data_seen &&
                           !facts.sender.fin_seen && facts.rst.seq == facts.sender.isn + 1;
  if (only_synack) {
    verdict.evidence.push_back("the sender had sent nothing but its SYN/ACK");
    verdict.alternatives.push_back(Cause::listen_overflow);
  } else if (facts.sender_spoke && !facts.sender.fin_seen) {
    verdict.confidence = Confidence::high;
    verdict.evidence.push_back(fmt::format("the sender had taken part in this connection (its last packet in frame {})",
                                           facts.frame(facts.sender.last_frame)));
  } else if (!facts.sender_spoke) {
    verdict.evidence.push_back("the capture shows nothing from the sender before");
  }
  if (facts.sender.fin_seen) verdict.alternatives.push_back(Cause::data_after_close);
  if (facts.ttl_known && !facts.ttl_matches) {
    verdict.confidence = Confidence::low;  // not the endpoint's own packet
    verdict.alternatives.push_back(Cause::middlebox);
  }
  verdict.alternatives.push_back(Cause::idle_timeout);
  verdict.explanation = fmt::format(
      "{} no longer knew the connection (restart, crash or lost state) and reset {}",
      facts.rst.src.to_string(), facts.rst.dst.to_string());
  return verdict;
}

}  // namespace rstscope
