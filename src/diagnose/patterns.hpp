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
  void reset(const Segment& rst, const ResetContext& context, const Finding& finding);
  void connection_ended(const Connection& connection);
  // Whether connection_ended() counts this connection toward any pattern.
  static bool counts(const Connection& connection);
  std::vector<PatternFinding> finish();

  // Events toward one subject within one window of time (--pattern-window).
  struct Window {
    uint64_t count = 0;
    uint64_t other = 0;  // a second count the pattern needs (e.g. RSTs matching no connection)
    int64_t first_ns = 0, last_ns = 0;
    std::vector<uint64_t> frames;    // the first few, as examples
    std::vector<uint64_t> distinct;  // hashes of distinct targets, bounded
    std::vector<uint64_t> party_hashes;  // distinct other parties, bounded
    std::vector<Address> parties;    // the first few of them, to show
    double rate() const;
  };
  // The busiest window so far and the one still open.
  struct Tally {
    Window current, best;
    // Starts a new window when `ts_ns` falls past the open one; returns the open window.
    Window& at(int64_t ts_ns, int64_t window_ns);
    bool add(int64_t ts_ns, uint64_t frame, const Address* party, int64_t window_ns, uint64_t distinct_target = 0);
    const Window& strongest() const { return best.count > current.count ? best : current; }
  };

 private:
  struct AddressHash {
    size_t operator()(const Address& address) const;
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
  template <typename Map, typename Key>
  Tally* tally(Map& map, const Key& key);

  PatternThresholds thresholds_;
  std::unordered_map<Address, Tally, AddressHash> refused_by_source_;      // port_scan
  std::unordered_map<Address, Tally, AddressHash> resets_toward_host_;     // rst_flood
  std::unordered_map<Address, Tally, AddressHash> unsolicited_toward_;     // backscatter, per address
  std::unordered_map<Address, Tally, AddressHash> unsolicited_prefix_;     // backscatter, per /24 or /48
  std::unordered_map<ServiceKey, Tally, ServiceHash> half_open_service_;   // syn_flood
  std::unordered_map<uint64_t, Tally> blind_by_connection_;               // blind_reset_attack
  std::unordered_map<uint64_t, ServiceKey> blind_service_;
};

}  // namespace rstscope
