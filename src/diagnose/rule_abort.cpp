#include <fmt/format.h>

#include "core/seq.hpp"
#include "diagnose/rule.hpp"

namespace rstscope {

// abort and abort_unread_data (article 3.2, RFC 9293 §3.10.5).
// Signature: a synchronized endpoint sends <SEQ=SND.NXT><CTL=RST> (Linux adds ACK=RCV.NXT)
// without having exchanged FINs: the application aborted (SO_LINGER 0, killed, ss -K: Linux
// reason TCP_STATE), or closed while received data was unread (TCP_ABORT_ON_CLOSE). The wire
// cannot always tell the two apart; the unread-data form shows the peer's data as the last thing
// the sender received, not yet acknowledged when the RST left.
std::optional<Verdict> rule_abort(const Facts& facts) {
  const ResetContext& context = facts.context;
  const Endpoint& sender = facts.sender;
  const Endpoint& receiver = facts.receiver;
  Verdict verdict;
  verdict.cause = Cause::abort;
  verdict.confidence = Confidence::medium;
  if (facts.rst.has_mptcp_reset) {
    verdict.confidence = Confidence::low;
    verdict.evidence.push_back(fmt::format(
        "carries the MPTCP MP_TCPRST option, reason code {} (RFC 8684 §3.6)", facts.rst.mptcp_reset_reason));
    verdict.explanation = fmt::format("the MPTCP layer on {} reset this subflow", facts.rst.src.to_string());
    return verdict;
  }
  if (!facts.sender_spoke) return std::nullopt;

  // The originator gave up before the handshake finished.
  if (!context.connection.synack_seen && context.from_originator && sender.syn_seen && !sender.ack_known) {
    verdict.frames = {facts.frame(sender.syn_frame)};
    verdict.evidence.push_back(fmt::format("the originator's SYN in frame {} had no SYN/ACK yet",
                                           facts.frame(sender.syn_frame)));
    verdict.explanation = fmt::format("{} gave up connecting before {} answered", facts.rst.src.to_string(),
                                      facts.rst.dst.to_string());
    return verdict;
  }
  // A stack aborts with its own SND.NXT; an inexact seq is somebody else's guess.
  if (context.seq_check == SeqCheck::out_of_window || context.seq_check == SeqCheck::in_window) return std::nullopt;
  if (!facts.synchronized && !facts.answers_synack) return std::nullopt;
  if (facts.answers_synack && !facts.rst_has_ack) return std::nullopt;  // half_open's bare form

  if (context.seq_check == SeqCheck::exact) {
    verdict.evidence.push_back(fmt::format("seq = the sender's next seq {}: the sender's own stack made it",
                                           facts.rst.seq));
  }
  if (facts.rst_has_ack) {
    verdict.evidence.push_back(fmt::format("RST/ACK acknowledging {}: the form an application abort takes",
                                           facts.rst.ack));
  }
  if (facts.sender_rare.stalled_retransmissions >= 3) {
    verdict.confidence = Confidence::high;
    verdict.evidence.push_back(fmt::format(
        "the sender had retransmitted {} times without the peer's ack moving: it gave up on the peer",
        facts.sender_rare.stalled_retransmissions));
    verdict.explanation = fmt::format("{} gave up after its retransmissions went unacknowledged",
                                      facts.rst.src.to_string());
    verdict.alternatives.push_back(Cause::buffer_overflow);
    return verdict;
  }
  if (receiver.fin_seen && !sender.fin_seen) {
    verdict.frames.push_back(facts.frame(receiver.fin_frame));
    verdict.evidence.push_back(fmt::format("answers the peer's FIN in frame {} with a RST instead of its own FIN",
                                           facts.frame(receiver.fin_frame)));
  } else if (sender.fin_seen) {
    verdict.frames.push_back(facts.frame(sender.fin_frame));
    verdict.evidence.push_back(fmt::format("the sender's own FIN in frame {} came first: an abortive close",
                                           facts.frame(sender.fin_frame)));
  } else {
    verdict.evidence.push_back("no FIN from the sender before: the connection was aborted, not closed");
  }
  // The peer's data was the last thing to arrive, and the sender answered it with nothing but
  // (at most) the kernel's ACK: the application never read it before closing.
  const bool unread = receiver.data_seen && !sender.fin_seen && !receiver.fin_seen &&
                      (!sender.data_seen || receiver.last_data_ts > sender.last_data_ts);
  if (unread) {
    verdict.cause = Cause::abort_unread_data;
    verdict.frames.push_back(facts.frame(receiver.last_data_frame));
    verdict.evidence.push_back(fmt::format(
        "the peer's data in frame {} was the last thing the sender received, and it sent no data after it",
        facts.frame(receiver.last_data_frame)));
    verdict.alternatives.push_back(Cause::abort);
    verdict.explanation = fmt::format("{} closed the connection while {}'s data was still unread",
                                      facts.rst.src.to_string(), facts.rst.dst.to_string());
    return verdict;
  }
  verdict.alternatives.push_back(Cause::abort_unread_data);
  if (context.seq_check == SeqCheck::exact && facts.rst_has_ack) verdict.confidence = Confidence::medium;
  verdict.explanation = fmt::format("the application on {} aborted the connection", facts.rst.src.to_string());
  return verdict;
}

}  // namespace rstscope
