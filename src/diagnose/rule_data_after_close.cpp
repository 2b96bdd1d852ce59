#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// data_after_close (article 3.2, RFC 9293 §3.10.4 / RFC 1122 §4.2.2.13).
// Signature: the sender had sent its FIN; afterwards the receiver's data arrived; the sender
// answers with a RST to show that data was lost (Linux reason TCP_ABORT_ON_DATA).
std::optional<Verdict> rule_data_after_close(const Facts& facts) {
  const Endpoint& sender = facts.sender;
  const Endpoint& receiver = facts.receiver;
  if (!sender.fin_seen || !receiver.data_seen) return std::nullopt;
  // Data that came after the sender's FIN, or that crossed it on the wire.
  const bool data_after_fin = receiver.last_data_ts >= sender.fin_ts ||
                              (facts.answers_data &&
                               facts.frame(receiver.last_data_frame) + 4 >= facts.frame(sender.fin_frame));
  if (!data_after_fin) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::data_after_close;
  verdict.confidence = receiver.last_data_ts >= sender.fin_ts ? Confidence::high : Confidence::medium;
  verdict.frames = {facts.frame(sender.fin_frame), facts.frame(receiver.last_data_frame)};
  verdict.evidence.push_back(fmt::format("the sender closed with a FIN in frame {}", facts.frame(sender.fin_frame)));
  verdict.evidence.push_back(fmt::format(
      "data from the receiver {} in frame {}",
      receiver.last_data_ts >= sender.fin_ts ? "arrived after that FIN" : "crossed that FIN",
      facts.frame(receiver.last_data_frame)));
  if (receiver.last_data_ts < sender.fin_ts) verdict.alternatives.push_back(Cause::abort_unread_data);
  if (facts.context.seq_is_fin) verdict.evidence.push_back("seq = the sender's FIN seq");
  verdict.explanation = fmt::format(
      "{} had closed the connection, but {} kept sending data, so the data was refused with a RST",
      facts.rst.src.to_string(), facts.rst.dst.to_string());
  return verdict;
}

}  // namespace rstscope
