#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

// keepalive_timeout.
// Signature: the sender sent keep-alive probes (seq = SND.NXT - 1, RFC 9293 §3.8.4) that the
// peer never answered, then reset (Linux reason TCP_KEEPALIVE_TIMEOUT).
std::optional<Verdict> rule_keepalive_timeout(const Facts& facts) {
  const EndpointRare& sender = facts.sender_rare;
  if (sender.keepalives < 2) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::keepalive_timeout;
  verdict.confidence = sender.keepalives >= 3 ? Confidence::high : Confidence::medium;
  verdict.frames = {facts.frame(sender.keepalive_frame)};
  verdict.evidence.push_back(fmt::format(
      "{} keep-alive probes from the sender went unanswered (the last in frame {})",
      sender.keepalives, facts.frame(sender.keepalive_frame)));
  verdict.explanation = fmt::format(
      "{} gave up after its keep-alive probes got no answer: the peer or the path is gone",
      facts.rst.src.to_string());
  return verdict;
}

}  // namespace rstscope
