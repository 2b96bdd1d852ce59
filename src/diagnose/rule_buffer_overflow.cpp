#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// buffer_overflow (article 3.8).
// Signature: one side's window closed (zero window) and stayed shut while the other probed or
// retransmitted, then a RST (Linux TCP_ABORT_ON_MEMORY, or an application that gave up).
std::optional<Verdict> rule_buffer_overflow(const Facts& facts) {
  const bool sender_shut = facts.sender_rare.zero_windows > 0;
  const bool receiver_shut = facts.receiver_rare.zero_windows > 0;
  if (!sender_shut && !receiver_shut) return std::nullopt;
  const Endpoint& shut = sender_shut ? facts.sender : facts.receiver;
  const EndpointRare& shut_rare = sender_shut ? facts.sender_rare : facts.receiver_rare;
  // The window must have been closed recently, not in an episode long ago.
  if (facts.rst.ts_ns - shut_rare.zero_window_ts > 120'000'000'000 && shut.window != 0) return std::nullopt;
  const bool still_shut = shut.window == 0;
  const bool pressure = still_shut || facts.sender_rare.stalled_retransmissions >= 3;
  if (!pressure) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::buffer_overflow;
  verdict.confidence = still_shut ? Confidence::high : Confidence::medium;
  verdict.frames = {facts.frame(shut_rare.zero_window_frame)};
  verdict.evidence.push_back(fmt::format("{} advertised a zero window {} time{} (last in frame {})",
                                         sender_shut ? "the sender" : "the receiver", shut_rare.zero_windows,
                                         shut_rare.zero_windows == 1 ? "" : "s",
                                         facts.frame(shut_rare.zero_window_frame)));
  if (still_shut) verdict.evidence.push_back("the window was still zero when the RST came");
  if (facts.sender_rare.stalled_retransmissions > 0) {
    verdict.evidence.push_back(fmt::format("the sender retransmitted {} times without the ack moving",
                                           facts.sender_rare.stalled_retransmissions));
  }
  verdict.alternatives.push_back(sender_shut ? Cause::abort_unread_data : Cause::abort);
  verdict.explanation = fmt::format(
      "{}'s receive buffer stayed full, and the connection was reset instead of draining",
      (sender_shut ? facts.rst.src : facts.rst.dst).to_string());
  return verdict;
}

}  // namespace rstscope
