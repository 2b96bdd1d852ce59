#include <fmt/format.h>

#include "diagnose/rule.hpp"

namespace rstscope {

const std::vector<Rule>& rules() {
  static const std::vector<Rule> list = {
      rule_forged,          rule_idle_timeout,    rule_middlebox,
      rule_refused,         rule_listen_overflow, rule_keepalive_timeout,
      rule_buffer_overflow, rule_time_wait_assassination,
      rule_data_after_close, rule_half_open,      rule_abort,
  };
  return list;
}

Facts::Facts(const ResetContext& context_in, const Observations& observations_in)
    : context(context_in),
      observations(observations_in),
      sender(context_in.from_originator ? context_in.connection.originator : context_in.connection.responder),
      receiver(&sender == &context_in.connection.originator ? context_in.connection.responder
                                                             : context_in.connection.originator),
      sender_rare(context_in.rare().side(context_in.from_originator)),
      receiver_rare(context_in.rare().side(!context_in.from_originator)),
      rst(context_in.rst.segment(context_in.connection.key())),
      answers(context_in.answers()) {
  rst_has_ack = rst.has(tcp_flag::ack);
  if (answers.valid) {
    answers_syn = answers.has(tcp_flag::syn) && !answers.has(tcp_flag::ack);
    answers_synack = answers.has(tcp_flag::syn) && answers.has(tcp_flag::ack);
    answers_data = answers.payload_len > 0;
    answers_pure_ack = !answers_syn && !answers_synack && !answers_data &&
                       answers.has(tcp_flag::ack) && !answers.has(tcp_flag::fin);
    seq_equals_answers_ack = answers.has(tcp_flag::ack) && rst.seq == answers.ack;
  }
  const Connection& connection = context.connection;
  synchronized = connection.established ||
                 (connection.originator.packets > 0 && connection.responder.packets > 0 &&
                  !answers_syn && (sender.data_seen || receiver.data_seen || !connection.handshake_seen)) ||
                 (sender.ack_known && sender.data_seen);
  sender_spoke = sender.non_rst_packets > 0;

  if (sender.ttl_max != 0) {
    ttl_known = true;
    usual_ttl_min = sender.ttl_min;
    usual_ttl_max = sender.ttl_max;
  } else if (context.host_ttl_max != 0) {
    ttl_known = true;
    usual_ttl_min = context.host_ttl_min;
    usual_ttl_max = context.host_ttl_max;
  }
  if (ttl_known) {
    if (rst.ttl < usual_ttl_min) ttl_distance = usual_ttl_min - rst.ttl;
    if (rst.ttl > usual_ttl_max) ttl_distance = rst.ttl - usual_ttl_max;
    ttl_matches = ttl_distance == 0;
    const char* whose = sender.ttl_max != 0 ? "in this connection" : "elsewhere in the capture";
    const std::string usual = usual_ttl_min == usual_ttl_max
                                  ? fmt::format("{}", usual_ttl_min)
                                  : fmt::format("{}-{}", usual_ttl_min, usual_ttl_max);
    fingerprint_sentence =
        ttl_matches ? fmt::format("TTL {} matches the sender's own packets {}", rst.ttl, whose)
                    : fmt::format("TTL {}, but the sender's own packets {} carry TTL {}", rst.ttl,
                                  whose, usual);
  }
  // DF: a stack sets it the same way on all its packets of a connection, RSTs included.
  if (!rst.src.is_v6() && sender.non_rst_packets >= 3) {
    df_unlike = (sender.df_seen && !sender.df_missing && !rst.df) || (sender.df_missing && !sender.df_seen && rst.df);
  }
  // IP ID: a stack with a per-connection counter sends its RST with the next value or close.
  if (!rst.src.is_v6() && sender.non_rst_packets >= 3 && sender.ip_id_incrementing &&
      !sender.ip_id_zero) {
    const uint16_t step = static_cast<uint16_t>(rst.ip_id - sender.ip_id);
    ip_id_unlike = step == 0 || step > 2048;
  }
}

std::string Facts::where(const SegmentBrief& brief) const { return fmt::format("frame {}", brief.frame); }

}  // namespace rstscope
