#include <fmt/format.h>

#include <algorithm>

#include "diagnose/rule.hpp"

namespace rstscope {
namespace {

constexpr int64_t second = 1'000'000'000;

std::string seconds(int64_t ns) { return fmt::format("{:.1f} s", static_cast<double>(ns) / 1e9); }

}  // namespace

// idle_timeout (article 3.7).
// Signature: the connection was silent far longer than its round trip; then either the first
// segment after the silence is answered by a RST, or a RST comes out of the silence itself,
// typically from a firewall or NAT in the path whose session expired (its TTL differs from the
// purported sender's own packets).
std::optional<Verdict> rule_idle_timeout(const Facts& facts) {
  const ResetContext& context = facts.context;
  if (!facts.answers.valid || !facts.synchronized) return std::nullopt;
  // Damaged or reordered timestamps can make the measured round trip anything: bound it.
  const int64_t rtt = std::clamp<int64_t>(context.connection.handshake_rtt_ns(), 0, 3600 * second);
  const int64_t threshold = std::max<int64_t>(second, 20 * rtt);
  const bool from_path = facts.ttl_known && !facts.ttl_matches;
  const int64_t quiet_before_rst = facts.rst.ts_ns - context.connection.last_ts();
  const bool answers_after_silence = context.silence_ns() >= threshold && context.since_answers_ns() <= 2 * second;
  const bool out_of_silence = from_path && quiet_before_rst >= threshold && !context.connection.closed();
  if (!answers_after_silence && !out_of_silence) return std::nullopt;
  const int64_t silence = answers_after_silence ? context.silence_ns() : quiet_before_rst;
  if (!from_path && silence < 30 * second) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::idle_timeout;
  verdict.sender = from_path ? Sender::path : Sender::endpoint;
  verdict.confidence = from_path ? Confidence::high : Confidence::low;
  if (answers_after_silence) {
    verdict.frames = {facts.answers.frame};
    verdict.evidence.push_back(fmt::format("the connection was silent for {} before frame {}", seconds(silence),
                                           facts.answers.frame));
    verdict.evidence.push_back(
        fmt::format("answers the first segment after the silence (frame {})", facts.answers.frame));
  } else {
    verdict.evidence.push_back(fmt::format("the connection had been silent for {} when the RST came", seconds(silence)));
  }
  if (facts.ttl_known) verdict.evidence.push_back(facts.fingerprint_sentence);
  verdict.alternatives.push_back(from_path ? Cause::middlebox : Cause::half_open);
  verdict.explanation = from_path
                            ? "a firewall or NAT in the path forgot the idle connection and reset it"
                            : fmt::format("{} had dropped the idle connection and reset it when traffic resumed",
                                          facts.rst.src.to_string());
  return verdict;
}

}  // namespace rstscope
