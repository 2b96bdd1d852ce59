#pragma once
// What the capture showed about hosts and services beyond single connections: the TTLs each
// host's own packets carried, and which addresses accepted connections on which ports. Fed in
// capture order, by one tracker or by the merge of several shards.
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/types.hpp"

namespace rstscope {

class Observations {
 public:
  void host_packet(const Address& address, uint8_t ttl);
  // The TTL range this host's own packets carried, or {0, 0} when unknown.
  std::pair<uint8_t, uint8_t> host_ttl(const Address& address) const;
  // A SYN/ACK from `address`:`port`, as the wire showed it.
  struct Accepted {
    Address address;
    uint16_t port = 0;
    uint64_t frame = 0;
    uint64_t source_mac = 0;  // the link-layer sender of the SYN/ACK
    uint8_t ttl = 0;
    int64_t clock_ns = 0;     // the capture's clock at the SYN/ACK
  };
  void service_accepted(const Segment& synack) {
    service_accepted(Accepted{synack.src, synack.sport, synack.frame, synack.source_mac, synack.ttl, synack.clock_ns});
  }
  void service_accepted(const Accepted& accepted);
  // Another address near `address` (same /24 or /64) that accepted connections on `port`, by
  // the capture's clock `until_ns`.
  const Accepted* neighbour_accepting(const Address& address, uint16_t port, int64_t until_ns) const;

 private:
  struct AddressHash {
    size_t operator()(const Address& address) const;
  };
  static constexpr size_t max_entries = 1u << 20;
  std::unordered_map<Address, std::pair<uint8_t, uint8_t>, AddressHash> host_ttl_;
  std::unordered_map<uint64_t, std::vector<Accepted>> accepted_;  // by prefix and port
};

}  // namespace rstscope
