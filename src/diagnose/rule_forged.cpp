#include <fmt/format.h>

#include "core/seq.hpp"
#include "diagnose/rule.hpp"

namespace rstscope {

// forged (article 5; Weaver, Sommer, Paxson, NDSS 2009; RFC 5961 §3).
// Signatures, any of:
// - the race: the purported sender carries on with its own sequence after "its" RST, or answers
//   the SYN with a SYN/ACK after a RST that claimed to refuse it;
// - out of window in a synchronized connection: no stack accepts it, so only a blind guess sends it;
// - in the window but not exact, the receiver sends a challenge ACK, and no exact RST follows;
// - RST_SEQ_CHANGE: a later RST from the same side with a higher seq than anything it sent;
// - a burst of RSTs whose window steps by one (a known injector's mark);
// - no TCP-MD5/TCP-AO signature on a RST in a connection whose handshake both ends signed.
// A genuine peer that lost state confirms through the challenge ACK; that is half_open.
std::optional<Verdict> rule_forged(const Facts& facts) {
  const ResetContext& context = facts.context;
  const AfterReset& after = context.after();
  const Endpoint& sender = facts.sender;
  Verdict verdict;
  verdict.cause = Cause::forged;
  verdict.sender = Sender::offpath;
  int strength = 0;

  if (after.sender_synack.valid && facts.answers_syn) {
    strength += 2;
    verdict.frames.push_back(after.sender_synack.frame);
    verdict.evidence.push_back(fmt::format(
        "the purported sender answered the same SYN with a SYN/ACK in frame {} after its RST",
        after.sender_synack.frame));
  } else if (after.sender_continued && !after.sender_syn && after.sender_acked_answers) {
    strength += 2;
    verdict.frames.push_back(after.sender_first.frame);
    verdict.evidence.push_back(fmt::format(
        "the purported sender kept sending its own stream after the RST (frame {}), and acknowledged what the RST "
        "answered: a race with an injector",
        after.sender_first.frame));
  }
  if (context.seq_check == SeqCheck::out_of_window && facts.synchronized) {
    strength += 1;
    verdict.evidence.push_back(fmt::format(
        "seq {} is outside the receiver's window (expected {}, window {}): no stack accepts it",
        facts.rst.seq, context.expected_seq, context.receive_window));
  } else if (context.seq_check == SeqCheck::out_of_window && facts.answers_syn) {
    strength += 1;
    verdict.evidence.push_back(fmt::format(
        "ack {} does not acknowledge the SYN (seq {}): the SYN-SENT side must ignore it (RFC 9293 §3.10.7.3)",
        facts.rst.ack, facts.answers.seq));
  }
  if (context.seq_check == SeqCheck::in_window && after.challenge_ack && !after.exact_rst_after_challenge.valid) {
    strength += 2;
    verdict.frames.push_back(after.challenge.frame);
    verdict.evidence.push_back(fmt::format(
        "in the window but not exact: the receiver's challenge ACK in frame {} got no exact RST back (RFC 5961 §3.2)",
        after.challenge.frame));
  }
  // RST_SEQ_CHANGE: a genuine stack never resets with a seq beyond what it has sent.
  for (const SegmentBrief& later : after.sender_rsts) {
    if (later.ts_ns - facts.rst.ts_ns > 2'000'000'000) break;
    if (seq_gt(later.seq, facts.rst.seq + 2) && sender.seq_known() && seq_gt(later.seq, sender.next_seq) &&
        !sender.fin_seen) {
      strength += 2;
      verdict.frames.push_back(later.frame);
      verdict.evidence.push_back(fmt::format(
          "another RST in frame {} moved seq on to {}, past anything the sender had sent ({})", later.frame,
          later.seq, sender.next_seq));
      break;
    }
  }
  // Burst with stepping windows: three RST/ACKs per trigger, window +1 each time.
  if (after.sender_rsts.size() >= 2) {
    const SegmentBrief& second = after.sender_rsts[0];
    const SegmentBrief& third = after.sender_rsts[1];
    if (second.window == static_cast<uint16_t>(facts.rst.window + 1) &&
        third.window == static_cast<uint16_t>(facts.rst.window + 2) &&
        third.ts_ns - facts.rst.ts_ns < 1'000'000'000) {
      strength += 2;
      verdict.injector = "Great Firewall style (three RST/ACKs with windows stepping by one)";
      verdict.frames.push_back(second.frame);
      verdict.frames.push_back(third.frame);
      verdict.evidence.push_back(fmt::format("a burst of RSTs in frames {}, {} with windows {}, {}, {}",
                                             second.frame, third.frame, facts.rst.window, second.window,
                                             third.window));
    }
  }
  // TCP-MD5 / TCP-AO: ends that signed the handshake sign every segment, their RSTs too, and drop
  // what is not signed (RFC 2385 §2.0, RFC 5925 §7.7): an unsigned RST is not their stack's.
  const bool unsigned_in_signed = context.connection.signed_handshake() && !facts.rst.has_md5_or_ao;
  if (unsigned_in_signed) {
    strength += 3;
    verdict.evidence.push_back(
        "the SYN and the SYN/ACK were signed (TCP-MD5 or TCP-AO) and this RST is not: both ends sign every "
        "segment of such a connection and drop unsigned ones, so the receiver ignores it");
  }
  if (strength == 0) return std::nullopt;
  // The converse, an evasion trick: a signed RST where nobody signed the handshake; a receiver
  // without a key for the peer drops it (Linux counts it as an unexpected MD5 hash).
  if (facts.rst.has_md5_or_ao && !context.connection.signed_syn && !context.connection.signed_synack &&
      context.connection.handshake_seen && context.connection.synack_seen) {
    verdict.evidence.push_back(
        "it carries a TCP-MD5 or TCP-AO option although neither SYN did: a receiver without a key for the peer "
        "drops it");
  }
  if (facts.ttl_known && !facts.ttl_matches) {
    strength += 1;
    verdict.evidence.push_back(facts.fingerprint_sentence);
  }
  if (facts.answers.valid && !facts.rst.src.is_v6() && facts.rst.ip_id != 0 &&
      facts.rst.ip_id == facts.answers.ip_id && facts.answers_syn) {
    strength += 1;
    verdict.evidence.push_back(fmt::format(
        "its IP ID {:#06x} is copied from the SYN it answers: an injector built it from that packet", facts.rst.ip_id));
  }
  if (facts.df_unlike || facts.ip_id_unlike) {
    strength += 1;
    verdict.evidence.push_back(facts.df_unlike
                                   ? fmt::format("DF {} on the RST, unlike on every packet of the sender",
                                                 facts.rst.df ? "set" : "clear")
                                   : fmt::format("IP ID {:#06x} does not follow the sender's own series (last {:#06x})",
                                                 facts.rst.ip_id, facts.sender.ip_id));
  }
  if (facts.rst.reserved != 0) {
    verdict.evidence.push_back(fmt::format("reserved header bits {:#x} are set, which stacks never do", facts.rst.reserved));
    strength += 1;
  }
  verdict.confidence = strength >= 3 ? Confidence::high : (strength == 2 ? Confidence::medium : Confidence::low);
  if (verdict.injector.empty()) verdict.injector = "unknown injector";
  if (facts.ttl_known && !facts.ttl_matches) verdict.alternatives.push_back(Cause::middlebox);
  // A host that lost the connection and its key (a restarted daemon) resets unsigned too.
  if (unsigned_in_signed) verdict.alternatives.push_back(Cause::half_open);
  verdict.explanation =
      unsigned_in_signed
          ? fmt::format("someone other than {} sent this unsigned RST into a signed connection; it does not "
                        "tear the connection down",
                        facts.rst.src.to_string())
          : fmt::format("someone other than {} forged this RST to tear the connection down", facts.rst.src.to_string());
  return verdict;
}

}  // namespace rstscope
