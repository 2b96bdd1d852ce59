#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// refused (article 3.1) and refused_wrong_address (3.6).
// Signature: a RST/ACK answers a bare SYN, ack = SYN seq + 1, and the sender had sent nothing
// else (RFC 9293 §3.5.2, group 1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>).
// When the same port accepts on a neighbouring address of that host, the port is bound to one
// local address only.
std::optional<Verdict> rule_refused(const Facts& facts) {
  if (!facts.answers_syn || facts.sender_spoke || !facts.rst_has_ack) return std::nullopt;
  const SegmentBrief& syn = facts.answers;
  if (facts.rst.ack != syn.seq + 1) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::refused;
  verdict.confidence = Confidence::high;
  verdict.frames = {syn.frame};
  verdict.evidence.push_back(
      fmt::format("answers SYN in frame {} (ack = SYN seq + 1)", syn.frame));
  if (facts.context.connection.syn_retransmissions > 0) {
    verdict.evidence.push_back(fmt::format("the SYN was sent {} times",
                                           facts.context.connection.syn_retransmissions + 1));
  }
  if (facts.ttl_known) {
    verdict.evidence.push_back(facts.fingerprint_sentence);
    if (!facts.ttl_matches) {
      verdict.confidence = Confidence::medium;
      verdict.alternatives.push_back(Cause::middlebox);
    }
  } else {
    verdict.confidence = Confidence::medium;
    verdict.evidence.push_back("no other packet from this host to compare its TTL with");
    verdict.alternatives.push_back(Cause::middlebox);
  }
  const Observations::Accepted* neighbour =
      facts.observations.neighbour_accepting(facts.rst.src, facts.rst.sport, facts.context.deadline_ns);
  // The same host answers for both addresses: the same link-layer sender (when the capture has
  // one) and the same TTL. On a LAN, a different MAC means a different machine.
  const bool same_host = neighbour != nullptr && neighbour->ttl == facts.rst.ttl &&
                         (neighbour->source_mac == 0 || facts.rst.source_mac == 0 ||
                          neighbour->source_mac == facts.rst.source_mac);
  if (same_host) {
    const std::string other = neighbour->address.to_string();
    verdict.cause = Cause::refused_wrong_address;
    verdict.alternatives.push_back(Cause::refused);
    verdict.frames.push_back(neighbour->frame);
    verdict.evidence.push_back(fmt::format(
        "port {} accepts connections on {} (SYN/ACK in frame {}), a neighbouring address", facts.rst.sport, other,
        neighbour->frame));
    verdict.evidence.push_back(fmt::format(
        "that SYN/ACK came with the same TTL ({}){}, so the same host answers for both addresses", neighbour->ttl,
        neighbour->source_mac != 0 && facts.rst.source_mac != 0 ? " from the same link-layer sender" : ""));
    verdict.explanation = fmt::format(
        "{}:{} refused the connection, but the same port accepts on {}: the service listens on "
        "one local address only",
        facts.rst.src.to_string(), facts.rst.sport, other);
  } else {
    verdict.explanation = fmt::format("nothing listens on {}:{}, so the connection was refused",
                                      facts.rst.src.to_string(), facts.rst.sport);
  }
  return verdict;
}

}  // namespace rstscope
