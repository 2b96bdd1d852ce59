#include "host/join.hpp"

#include <algorithm>

namespace rstscope::host {

std::vector<Cause> causes_for_reason(std::string_view reason) {
  if (reason == "NO_SOCKET")
    return {Cause::refused, Cause::refused_wrong_address, Cause::half_open,
            Cause::time_wait_assassination};
  if (reason == "TCP_TIMEWAIT_SOCKET") return {Cause::time_wait_assassination};
  // An ACK that meets only a listening socket: the connection it belongs to is gone.
  if (reason == "TCP_FLAGS") return {Cause::half_open, Cause::time_wait_assassination};
  if (reason == "TCP_STATE" || reason == "TCP_DISCONNECT_WITH_DATA") return {Cause::abort};
  if (reason == "TCP_ABORT_ON_CLOSE") return {Cause::abort_unread_data};
  if (reason == "TCP_ABORT_ON_DATA") return {Cause::data_after_close};
  if (reason == "INVALID_SYN") return {Cause::listen_overflow};
  if (reason == "TCP_KEEPALIVE_TIMEOUT") return {Cause::keepalive_timeout};
  if (reason == "TCP_ABORT_ON_MEMORY") return {Cause::buffer_overflow};
  if (reason == "TCP_ABORT_ON_LINGER") return {Cause::abort};
  return {};
}

Verdict compare(std::string_view kernel_reason, Cause cause) {
  const std::vector<Cause> expected = causes_for_reason(kernel_reason);
  if (expected.empty()) return Verdict::no_opinion;
  return std::find(expected.begin(), expected.end(), cause) != expected.end() ? Verdict::agree
                                                                                : Verdict::disagree;
}

bool same_tuple(const KernelReset& record, const Address& src, uint16_t sport, const Address& dst,
                uint16_t dport) {
  if (!(record.src == src) || record.sport != sport) return false;
  if (record.dport == 0) return true;
  return record.dst == dst && record.dport == dport;
}

std::optional<size_t> best_match(const Finding& finding, const std::vector<KernelReset>& records,
                                 const std::vector<bool>& taken, int64_t tolerance_ns) {
  std::optional<size_t> best;
  int64_t best_distance = tolerance_ns + 1;
  for (size_t i = 0; i < records.size(); ++i) {
    const KernelReset& record = records[i];
    if (record.event != KernelReset::Event::send || (i < taken.size() && taken[i])) continue;
    if (!same_tuple(record, finding.src, finding.sport, finding.dst, finding.dport)) continue;
    const int64_t distance = std::abs(record.ts_ns - finding.ts_ns);
    if (distance < best_distance) {
      best_distance = distance;
      best = i;
    }
  }
  return best;
}

JoinSummary join_kernel_resets(std::vector<Finding>& findings,
                               const std::vector<KernelReset>& records, int64_t tolerance_ns) {
  JoinSummary summary;
  std::vector<bool> taken(records.size(), false);
  // Earlier RSTs first, so repeated RSTs on one 4-tuple pair up in order.
  std::vector<size_t> order(findings.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return findings[a].ts_ns < findings[b].ts_ns; });
  for (const size_t index : order) {
    Finding& finding = findings[index];
    const auto match = best_match(finding, records, taken, tolerance_ns);
    if (!match) {
      summary.unmatched_findings.push_back(index);
      continue;
    }
    taken[*match] = true;
    finding.kernel_reason = records[*match].reason;
    const Verdict verdict = compare(finding.kernel_reason, finding.cause);
    if (verdict == Verdict::agree) ++summary.agreements;
    if (verdict == Verdict::disagree) ++summary.disagreements;
    summary.pairs.push_back({index, *match, verdict});
  }
  for (size_t i = 0; i < records.size(); ++i)
    if (!taken[i] && records[i].event == KernelReset::Event::send)
      summary.unmatched_records.push_back(i);
  return summary;
}

}  // namespace rstscope::host
