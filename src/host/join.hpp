#pragma once
// Joins the kernel's reset records with the RSTs seen on the wire, by 4-tuple and time.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/finding.hpp"
#include "host/tracer.hpp"

namespace rstscope::host {

// The causes a kernel reason is consistent with. Empty when the reason says nothing about cause.
std::vector<Cause> causes_for_reason(std::string_view reason);

enum class Verdict : uint8_t { agree, disagree, no_opinion };
// Whether the analyzer's cause fits the kernel's reason.
Verdict compare(std::string_view kernel_reason, Cause cause);

// Whether a record describes the RST src:sport > dst:dport. A RST sent on behalf of a listening
// socket (e.g. TCP_FLAGS for a stray ACK) carries the listener's address and an empty peer
// (0.0.0.0:0): then only the sender's side can be compared.
bool same_tuple(const KernelReset& record, const Address& src, uint16_t sport, const Address& dst,
                uint16_t dport);

// The sent-reset record (index into `records`) with the finding's 4-tuple and direction that is
// closest in time within `tolerance_ns`, skipping records already `taken`.
std::optional<size_t> best_match(const Finding& finding, const std::vector<KernelReset>& records,
                                 const std::vector<bool>& taken, int64_t tolerance_ns);

struct JoinSummary {
  struct Pair {
    size_t finding = 0, record = 0;
    Verdict verdict = Verdict::no_opinion;
  };
  std::vector<Pair> pairs;
  std::vector<size_t> unmatched_records;   // sent resets not seen on the wire
  std::vector<size_t> unmatched_findings;  // wire RSTs no local kernel claims (path or remote)
  uint64_t agreements = 0, disagreements = 0;
};

// Fills Finding::kernel_reason for every matched finding and counts agreements.
JoinSummary join_kernel_resets(std::vector<Finding>& findings,
                               const std::vector<KernelReset>& records,
                               int64_t tolerance_ns = 2'000'000'000);

}  // namespace rstscope::host
