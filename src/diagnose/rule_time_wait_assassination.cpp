#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// time_wait_assassination (article 3.5, RFC 1337).
// Signature: both sides closed with FINs; the side that closed first (so sits in TIME-WAIT) ACKs
// the peer's FIN once more, provoked by a late segment; the peer, already CLOSED, answers that
// ACK with <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.5.2 group 1), which ends the TIME-WAIT.
std::optional<Verdict> rule_time_wait_assassination(const Facts& facts) {
  const Endpoint& sender = facts.sender;
  const Endpoint& receiver = facts.receiver;
  if (!sender.fin_seen || !receiver.fin_seen) return std::nullopt;
  if (receiver.fin_ts > sender.fin_ts) return std::nullopt;  // the receiver must have closed first
  if (!facts.answers_pure_ack || !facts.seq_equals_answers_ack) return std::nullopt;
  if (facts.rst.seq != sender.fin_seq + 1) return std::nullopt;
  const bool repeated_ack = receiver.fin_acks >= 2;
  Verdict verdict;
  verdict.cause = Cause::time_wait_assassination;
  verdict.confidence = repeated_ack ? Confidence::high : Confidence::low;
  verdict.frames = {facts.frame(receiver.fin_frame), facts.frame(sender.fin_frame), facts.answers.frame};
  verdict.evidence.push_back(fmt::format(
      "both sides had closed: FIN in frame {} from the receiver, then FIN in frame {} from the sender",
      facts.frame(receiver.fin_frame), facts.frame(sender.fin_frame)));
  verdict.evidence.push_back(fmt::format(
      "answers the TIME-WAIT side's ACK in frame {} with seq = its ack (a closed host's reply)",
      facts.answers.frame));
  if (repeated_ack) {
    verdict.evidence.push_back(fmt::format(
        "the TIME-WAIT side acknowledged the sender's FIN {} times: a late segment provoked the last ACK",
        receiver.fin_acks));
  } else {
    verdict.alternatives.push_back(Cause::half_open);
  }
  verdict.explanation = fmt::format(
      "{} had already closed; its RST ended {}'s TIME-WAIT early (RFC 1337)",
      facts.rst.src.to_string(), facts.rst.dst.to_string());
  return verdict;
}

}  // namespace rstscope
