#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// listen_overflow (article 3.4).
// Signature: the responder finished the handshake (SYN/ACK), sent nothing more, and answers the
// originator's final ACK or first data with a bare RST, seq = that segment's ack. Linux does this
// with tcp_abort_on_overflow=1 when the accept queue is full (reason INVALID_SYN).
std::optional<Verdict> rule_listen_overflow(const Facts& facts) {
  const Connection& connection = facts.context.connection;
  if (facts.context.from_originator || !connection.synack_seen) return std::nullopt;
  if (facts.sender.data_seen || facts.sender.fin_seen) return std::nullopt;
  if (!(facts.answers_pure_ack || facts.answers_data) || !facts.seq_equals_answers_ack) return std::nullopt;
  if (facts.rst.seq != facts.sender.isn + 1) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::listen_overflow;
  verdict.confidence = facts.rst_has_ack ? Confidence::low : Confidence::medium;
  verdict.frames = {facts.answers.frame};
  verdict.evidence.push_back(fmt::format(
      "answers the originator's {} in frame {} right after the handshake (seq = its ack)",
      facts.answers_data ? "first data" : "handshake ACK", facts.answers.frame));
  verdict.evidence.push_back("the responder had sent only its SYN/ACK");
  if (connection.synack_retransmissions > 0) {
    verdict.confidence = Confidence::high;
    verdict.evidence.push_back(fmt::format(
        "the SYN/ACK was retransmitted {} times: the listener did not take the connection",
        connection.synack_retransmissions));
  }
  if (facts.rst_has_ack) {
    verdict.alternatives.push_back(Cause::abort);
  } else {
    verdict.evidence.push_back("a bare RST (no ACK flag): the kernel, not the application, sent it");
  }
  verdict.alternatives.push_back(Cause::half_open);
  verdict.explanation = fmt::format(
      "the listener on {}:{} reset a connection it had just completed: its accept queue was full",
      facts.rst.src.to_string(), facts.rst.sport);
  return verdict;
}

}  // namespace rstscope
