#include <fmt/format.h>

#include <string_view>

#include "diagnose/rule.hpp"

namespace rstscope {
namespace {

// Devices known to put a diagnostic text into the RST's payload.
struct DeviceText {
  std::string_view prefix;
  std::string_view device;
};
constexpr DeviceText device_texts[] = {
    {"BIG-IP", "F5 BIG-IP"},
    {"NetScaler", "Citrix NetScaler"},
    {"Palo Alto", "Palo Alto firewall"},
};

}  // namespace

// middlebox (article 3.7).
// Signature: the RST's fingerprint is unlike the purported sender's own packets (TTL or hop
// limit, IP ID), or it carries a device's diagnostic text, while its seq is one a device that
// sees the traffic would know, and the purported sender does not carry on afterwards.
std::optional<Verdict> rule_middlebox(const Facts& facts) {
  const ResetContext& context = facts.context;
  const std::string_view text = context.payload_text();
  std::string_view device;
  for (const DeviceText& known : device_texts) {
    if (text.find(known.prefix) != std::string_view::npos) device = known.device;
  }
  const bool ttl_unlike = facts.ttl_known && !facts.ttl_matches;
  // DF alone is too weak to call a middlebox; it only supports the TTL or IP ID.
  if (!ttl_unlike && !facts.ip_id_unlike && device.empty()) return std::nullopt;
  // The real sender carrying on is a race (forged) unless the segment the RST answered never
  // reached it: then a device in the path swallowed that segment and answered in its name.
  const AfterReset& after = context.after();
  const bool swallowed = after.sender_continued && !after.sender_acked_answers;
  if (after.sender_continued && !swallowed) return std::nullopt;
  Verdict verdict;
  verdict.cause = Cause::middlebox;
  verdict.sender = Sender::path;
  verdict.confidence = Confidence::medium;
  if (ttl_unlike) {
    verdict.evidence.push_back(facts.fingerprint_sentence);
    if (facts.ttl_distance >= 3) verdict.confidence = Confidence::high;
  }
  if (facts.ip_id_unlike) {
    verdict.evidence.push_back(fmt::format("IP ID {:#06x} does not follow the sender's own series (last {:#06x})",
                                           facts.rst.ip_id, facts.sender.ip_id));
  }
  if (facts.df_unlike) {
    verdict.evidence.push_back(fmt::format("DF {} on the RST, unlike on every packet of the sender",
                                           facts.rst.df ? "set" : "clear"));
  }
  if (!device.empty()) {
    verdict.confidence = Confidence::high;
    verdict.evidence.push_back(fmt::format("the RST carries the text \"{}\", the mark of a {}", text, device));
  } else if (context.payload_text_length > 0) {
    verdict.evidence.push_back(fmt::format("the RST carries {} bytes of text: \"{}\"", facts.rst.payload_len, text));
  }
  if (after.receiver_rst.valid && after.receiver_rst.ts_ns - facts.rst.ts_ns < 10'000'000) {
    verdict.confidence = Confidence::high;
    verdict.evidence.push_back(fmt::format("the other side was reset at the same moment (frame {})",
                                           after.receiver_rst.frame));
  }
  if (swallowed) {
    verdict.confidence = Confidence::high;
    verdict.evidence.push_back(fmt::format(
        "the real sender carried on (frame {}) without ever acknowledging frame {}: the path dropped that segment "
        "and answered it with this RST",
        after.sender_first.frame, facts.answers.frame));
  }
  if (context.seq_check != SeqCheck::exact) verdict.alternatives.push_back(Cause::forged);
  if (facts.answers_syn) verdict.alternatives.push_back(Cause::refused);
  verdict.explanation = device.empty()
                            ? fmt::format("a device in the path reset the connection in {}'s name",
                                          facts.rst.src.to_string())
                            : fmt::format("a {} in the path reset the connection", device);
  return verdict;
}

}  // namespace rstscope
