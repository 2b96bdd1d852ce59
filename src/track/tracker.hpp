#pragma once
// Follows every TCP connection in both directions and turns each RST into a ResetContext,
// which stays open for a horizon of capture time to see what follows it.
#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <vector>

#include "core/stats.hpp"
#include "track/reset_context.hpp"
#include "track/table.hpp"

namespace rstscope {

struct TrackerOptions {
  int64_t idle_timeout_ns = 900'000'000'000;    // active connections silent this long are dropped
  int64_t closing_timeout_ns = 120'000'000'000;  // closed ones linger this long (TIME-WAIT and more)
  int64_t horizon_ns = 3'000'000'000;
  uint64_t max_connections = 1u << 20;
};

// What the capture showed about hosts and services, beyond single connections.
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
  };
  void service_accepted(const Segment& synack);
  // Another address near `address` (same /24 or /64) that accepted connections on `port`.
  const Accepted* neighbour_accepting(const Address& address, uint16_t port) const;
  bool accepts(const Address& address, uint16_t port) const;

 private:
  struct AddressHash {
    size_t operator()(const Address& address) const;
  };
  static constexpr size_t max_entries = 1u << 20;
  std::unordered_map<Address, std::pair<uint8_t, uint8_t>, AddressHash> host_ttl_;
  std::unordered_map<uint64_t, std::vector<Accepted>> accepted_;  // by prefix and port
};

class Tracker {
 public:
  using JudgeCallback = std::function<void(ResetContext&)>;
  // Called for every connection that ends (evicted, replaced or at the end of the input).
  using EndCallback = std::function<void(const Connection&)>;

  Tracker(const TrackerOptions& options, JudgeCallback judge, EndCallback ended);
  void add(const Segment& segment) {
    const ConnectionKey key = ConnectionKey::of(segment);
    add(segment, key, key.hash());
  }
  // The same, with the segment's canonical key and its hash already worked out.
  void add(const Segment& segment, const ConnectionKey& key, uint64_t hash);
  // Lookahead for a batch: the slot of a segment to come, then (once cached) its entry.
  void prefetch_slot(uint64_t hash) const { table_.prefetch_slot(hash); }
  void prefetch_entry(uint64_t hash) const { table_.prefetch_entry(hash); }
  void advance(int64_t now_ns);
  void finish();
  const TrackStats& stats() const { return stats_; }
  const Observations& observations() const { return observations_; }

 private:
  Connection* lookup(const Segment& segment, const ConnectionKey& key, uint64_t hash, bool& from_originator,
                     bool& created);
  Connection* create(const ConnectionKey& key, uint64_t hash, const Segment& segment,
                     bool& from_originator);
  void update(Connection& connection, const Segment& segment, bool from_originator);
  void open_reset(Connection& connection, const Segment& segment, bool from_originator,
                  bool created);
  void observe_after(Connection& connection, const Segment& segment, bool from_originator);
  void end(Connection* connection);
  void close_out(const Connection& connection);  // reports it ended; the caller removes it
  void expire(int64_t now_ns);
  void release(int64_t now_ns, bool all);
  void make_room();

  TrackerOptions options_;
  JudgeCallback judge_;
  EndCallback ended_;
  ConnectionTable table_;
  Observations observations_;
  TrackStats stats_;
  uint64_t next_id_ = 1;
  int64_t now_ns_ = 0;
  // Open contexts in RST order; `pending_base_` is the sequence number of the front.
  std::deque<ResetContext> pending_;
  std::deque<uint64_t> pending_links_;  // per context: the previous one of its connection
  uint64_t pending_base_ = 0;
};

}  // namespace rstscope
