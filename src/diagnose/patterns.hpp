#pragma once
// Findings that span many connections: floods, scans, backscatter, blind reset attacks.
#include <unordered_map>
#include <vector>

#include "core/finding.hpp"
#include "diagnose/analyzer.hpp"
#include "track/reset_context.hpp"

namespace rstscope {

class Patterns {
 public:
  explicit Patterns(const PatternThresholds& thresholds) : thresholds_(thresholds) {}
  void reset(const ResetContext& context, const Finding& finding);
  void connection_ended(const Connection& connection);
  std::vector<PatternFinding> finish();

 private:
  struct AddressHash {
    size_t operator()(const Address& address) const;
  };
  // A count of events over a span, with a few example frames.
  struct Tally {
    uint64_t count = 0;
    uint64_t other = 0;  // a second count the pattern needs (e.g. RSTs matching no connection)
    int64_t first_ns = 0, last_ns = 0;
    std::vector<uint64_t> frames;
    std::vector<uint64_t> distinct;  // hashes of distinct targets, bounded
    std::vector<Address> parties;    // a few of the other side's addresses
    void add(int64_t ts_ns, uint64_t frame, const Address* party);
    bool add_distinct(uint64_t target);
  };
  struct ServiceKey {
    Address address;
    uint16_t port;
    friend bool operator==(const ServiceKey&, const ServiceKey&) = default;
  };
  struct ServiceHash {
    size_t operator()(const ServiceKey& key) const;
  };
  static constexpr size_t max_keys = 1u << 18;

  PatternThresholds thresholds_;
  std::unordered_map<Address, Tally, AddressHash> refused_by_source_;     // port_scan
  std::unordered_map<Address, Tally, AddressHash> resets_toward_host_;    // rst_flood
  std::unordered_map<Address, Tally, AddressHash> unsolicited_toward_;    // backscatter
  std::unordered_map<ServiceKey, Tally, ServiceHash> half_open_service_;  // syn_flood
  std::unordered_map<uint64_t, Tally> blind_by_connection_;              // blind_reset_attack
  std::unordered_map<uint64_t, ServiceKey> blind_service_;
};

}  // namespace rstscope
