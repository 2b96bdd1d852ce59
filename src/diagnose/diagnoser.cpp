#include "diagnose/diagnoser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "diagnose/rule.hpp"

namespace rstscope {
namespace {

std::string seq_sentence(const ResetContext& context) {
  switch (context.seq_check) {
    case SeqCheck::exact:
      return context.expected_seq == 0 && context.rst.seq != context.expected_seq
                 ? fmt::format("seq check: exact (ack {} acknowledges the SYN)", context.rst.ack)
                 : fmt::format("seq check: exact ({} is what the receiver expects)", context.rst.seq);
    case SeqCheck::in_window:
      return fmt::format("seq check: in the window but not exact ({} vs expected {}, {:+d})", context.rst.seq,
                         context.expected_seq, static_cast<int32_t>(context.rst.seq - context.expected_seq));
    case SeqCheck::out_of_window:
      return fmt::format("seq check: out of window ({} vs expected {})", context.rst.seq, context.expected_seq);
    case SeqCheck::unknown:
      return "seq check: unknown (the capture shows neither side's sequence before the RST)";
  }
  return {};
}

}  // namespace

Diagnoser::Diagnoser(const PatternThresholds& thresholds, FindingSink& sink)
    : sink_(sink), patterns_(thresholds) {}

void Diagnoser::judge(ResetContext& context) {
  prejudge(context, prejudgement_);
  judge(context, prejudgement_);
}

void Diagnoser::prejudge(ResetContext& context, Prejudgement& out) const {
  // What the capture showed of the sender's host elsewhere, up to this judgement.
  const auto [ttl_min, ttl_max] = observations_.host_ttl(context.source());
  context.host_ttl_min = ttl_min;
  context.host_ttl_max = ttl_max;
  const Facts facts(context, observations_);
  std::vector<Verdict>& matches = out.matches;
  matches.clear();
  for (Rule rule : rules()) {
    if (auto verdict = rule(facts)) matches.push_back(std::move(*verdict));
  }
  // The strongest verdict wins; list order breaks ties.
  std::stable_sort(matches.begin(), matches.end(),
                   [](const Verdict& a, const Verdict& b) { return a.confidence > b.confidence; });
  out.ttl_known = facts.ttl_known;
  out.fingerprint_sentence = facts.fingerprint_sentence;
}

void Diagnoser::judge(ResetContext& context, Prejudgement& prejudged) {
  conclude(context, prejudged);
  if (context.ended_connection) ended(*context.ended_connection);
}

void Diagnoser::conclude(ResetContext& context, Prejudgement& prejudged) {
  std::vector<Verdict>& matches = prejudged.matches;
  const Segment rst = context.rst.segment(context.connection.key());
  Finding& finding = finding_;
  finding.clear();
  finding.frame = rst.frame;
  finding.ts_ns = rst.ts_ns;
  finding.src = rst.src;
  finding.dst = rst.dst;
  finding.sport = rst.sport;
  finding.dport = rst.dport;
  finding.seq = rst.seq;
  finding.ack = rst.ack;
  finding.flags = rst.flags;
  finding.ttl = rst.ttl;
  finding.payload_len = rst.payload_len;
  finding.seq_check = context.seq_check;
  finding.from_originator = context.from_originator;
  finding.connection_id = context.connection.id();
  context.connection.history.str_to(finding.history);
  finding.history += context.from_originator ? 'R' : 'r';
  finding.frames.push_back(rst.frame);

  // A repeat of the same side's reset (retransmitted RST, burst) takes the first one's verdict,
  // unless its own evidence names a different sender (an injector among genuine RSTs).
  ResetsOf& resets = resets_[context.connection.id()];
  const FirstReset* first = nullptr;
  if (context.earlier_resets > 0) {
    for (const FirstReset& earlier : resets.firsts) {
      if (earlier.frame == context.earlier_reset_frame) first = &earlier;
    }
  }
  const Sender own_sender = matches.empty() ? Sender::endpoint : matches.front().sender;
  const bool duplicate = first != nullptr && first->cause != Cause::forged && own_sender == first->sender;
  if (duplicate) {
    const FirstReset& earlier = *first;
    finding.cause = earlier.cause;
    finding.confidence = earlier.confidence;
    finding.sender = earlier.sender;
    finding.duplicate_of = earlier.frame;
    finding.evidence.push_back(fmt::format("repeats the RST in frame {} from the same side", earlier.frame));
    if (rst.seq != context.expected_seq && context.seq_check != SeqCheck::exact) {
      finding.evidence.push_back(seq_sentence(context));
    }
    finding.explanation = fmt::format("another RST of the same reset (first in frame {})", earlier.frame);
    for (const Verdict& verdict : matches) {
      if (verdict.cause != finding.cause) add_alternative(finding, verdict.cause);
    }
    ++diagnose_stats_.duplicates;
  } else if (!matches.empty()) {
    Verdict& verdict = matches.front();
    finding.cause = verdict.cause;
    finding.confidence = verdict.confidence;
    finding.sender = verdict.sender;
    finding.explanation = std::move(verdict.explanation);
    finding.injector = std::move(verdict.injector);
    finding.evidence = std::move(verdict.evidence);
    finding.frames.insert(finding.frames.end(), verdict.frames.begin(), verdict.frames.end());
    for (Cause alternative : verdict.alternatives) add_alternative(finding, alternative);
    for (size_t i = 1; i < matches.size(); ++i) add_alternative(finding, matches[i].cause);
    finding.evidence.push_back(seq_sentence(context));
    const bool fingerprint_told = std::find(finding.evidence.begin(), finding.evidence.end(),
                                            prejudged.fingerprint_sentence) != finding.evidence.end();
    if (prejudged.ttl_known && !fingerprint_told) finding.evidence.push_back(prejudged.fingerprint_sentence);
    if (first != nullptr && own_sender == first->sender) finding.duplicate_of = first->frame;
  } else {
    finding.cause = Cause::unexplained;
    finding.confidence = Confidence::low;
    explain_missing(context, prejudged, finding);
  }
  std::sort(finding.frames.begin(), finding.frames.end());
  finding.frames.erase(std::unique(finding.frames.begin(), finding.frames.end()), finding.frames.end());
  finding.frames.erase(std::remove(finding.frames.begin(), finding.frames.end(), 0u), finding.frames.end());
  if (context.earlier_resets == 0) {
    resets.firsts.push_back(FirstReset{finding.frame, finding.cause, finding.confidence, finding.sender});
  }
  if (context.payload_text_length > 0 && finding.cause != Cause::middlebox) {
    finding.evidence.push_back(
        fmt::format("the RST carries {} bytes of payload: \"{}\"", rst.payload_len, context.payload_text()));
  }
  ++diagnose_stats_.by_cause[static_cast<size_t>(finding.cause)];
  resets.causes.push_back(finding.cause);
  patterns_.reset(rst, context, finding);
  sink_.reset(finding);
}

void Diagnoser::add_alternative(Finding& finding, Cause cause) {
  if (cause == finding.cause) return;
  if (std::find(finding.alternatives.begin(), finding.alternatives.end(), cause) != finding.alternatives.end()) return;
  finding.alternatives.push_back(cause);
}

void Diagnoser::explain_missing(const ResetContext& context, const Prejudgement& prejudged, Finding& finding) {
  if (context.connection_new) {
    finding.evidence.push_back("no other packet of this connection appears in the capture before the RST");
    finding.evidence.push_back(
        "a lone RST is often backscatter: the answer to a packet someone sent with a spoofed source");
    finding.explanation = "a RST for a connection the capture never showed";
  } else if (context.seq_check == SeqCheck::unknown) {
    finding.evidence.push_back("the capture shows too little of the connection to check the RST's seq");
    finding.explanation = "too little of the connection was captured to say why it was reset";
  } else {
    finding.evidence.push_back(seq_sentence(context));
    if (prejudged.ttl_known) finding.evidence.push_back(prejudged.fingerprint_sentence);
    finding.evidence.push_back(
        "it answers no segment in a way a known cause does, and nothing after it tells more");
    finding.explanation = "the reset fits none of the known signatures";
  }
}

void Diagnoser::ended(const Connection& connection) {
  patterns_.connection_ended(connection);
  if (connection.resets == 0) return;
  ConnectionSummary& summary = summary_;
  summary.connection_id = connection.id();
  summary.originator = connection.originator_address();
  summary.originator_port = connection.originator_port();
  summary.responder = connection.responder_address();
  summary.responder_port = connection.responder_port();
  summary.first_ns = connection.first_ts;
  summary.last_ns = connection.last_ts();
  summary.first_frame = connection.first_frame;
  summary.packets = connection.packets();
  summary.originator_bytes = connection.originator.bytes();
  summary.responder_bytes = connection.responder.bytes();
  connection.history.str_to(summary.history);
  summary.resets = connection.resets;
  summary.handshake_seen = connection.handshake_seen;
  const bool by_originator = connection.originator.resets > 0;
  const bool by_responder = connection.responder.resets > 0;
  summary.state = by_originator && by_responder ? "reset by both sides"
                  : by_originator               ? "reset by the originator"
                                                : "reset by the responder";
  if (!connection.originator_known) summary.state += " (roles guessed: the handshake was not captured)";
  summary.causes.clear();
  if (auto entry = resets_.find(connection.id()); entry != resets_.end()) {
    summary.causes.assign(entry->second.causes.begin(), entry->second.causes.end());
    resets_.erase(entry);
  }
  sink_.connection(summary);
}


void Diagnoser::finish() {
  for (const PatternFinding& pattern : patterns_.finish()) {
    ++diagnose_stats_.patterns;
    sink_.pattern(pattern);
  }
}

}  // namespace rstscope
