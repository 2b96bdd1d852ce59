#pragma once
// A scenario builder for tests: connections written packet by packet, as the article's figures
// draw them (client.syn(); server.rst_ack();). It emits real frames into an in-memory pcap and
// runs the whole pipeline (capture, decode, track, diagnose) over it.
#include <arpa/inet.h>

#include <optional>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "diagnose/pipeline.hpp"
#include "synth/frames.hpp"

namespace rstscope::testing {

struct Collected : FindingSink {
  std::vector<Finding> resets;
  std::vector<ConnectionSummary> connections;
  std::vector<PatternFinding> patterns;
  void reset(const Finding& finding) override { resets.push_back(finding); }
  void connection(const ConnectionSummary& summary) override { connections.push_back(summary); }
  void pattern(const PatternFinding& pattern) override { patterns.push_back(pattern); }
  const Finding* at_frame(uint64_t frame) const {
    for (const Finding& finding : resets) {
      if (finding.frame == frame) return &finding;
    }
    return nullptr;
  }
  bool has_pattern(const std::string& type) const {
    for (const PatternFinding& pattern : patterns) {
      if (pattern.type == type) return true;
    }
    return false;
  }
};

inline Address address(const char* text) {
  uint8_t bytes[16] = {};
  if (inet_pton(AF_INET, text, bytes) == 1) return Address::v4(bytes);
  inet_pton(AF_INET6, text, bytes);
  return Address::v6(bytes);
}

class Scenario;

// One side of a connection: it knows its own next seq and what it has received.
class Side {
 public:
  Side(Scenario& scenario, Address self, uint16_t port, uint32_t isn, uint8_t ttl)
      : scenario_(&scenario), self_(self), port_(port), seq_(isn), ttl_(ttl) {}
  void peer(Side& other) { peer_ = &other; }

  uint64_t syn();
  uint64_t synack();
  uint64_t ack();
  uint64_t data(uint32_t length);
  uint64_t fin();
  uint64_t rst_ack();                    // RST/ACK with seq = SND.NXT (an abort)
  uint64_t rst(uint32_t seq);            // a bare RST with the given seq
  uint64_t rst_answer();                 // <SEQ=SEG.ACK><CTL=RST> to the peer's last segment
  uint64_t keepalive();                  // seq = SND.NXT - 1, no data
  uint64_t window(uint16_t value);       // a bare ACK advertising this window
  uint64_t retransmit(uint32_t length);  // data again from an older seq
  // A packet in this side's name with a chosen TTL/window: an injector or a middlebox.
  uint64_t spoof(uint8_t flags, uint32_t seq, uint32_t ack, uint8_t ttl, uint16_t window = 0);
  void restart(uint32_t isn) { seq_ = isn; }
  // Whether its stack signs its segments with TCP-MD5 (RFC 2385), as a BGP speaker does.
  void sign(bool on) { signed_ = on; }
  // The link-layer sender of its frames: e.g. the router in front of a host, shared by others.
  void behind(uint64_t mac) { source_mac_ = mac; }

  uint32_t next() const { return seq_; }
  uint32_t received() const { return received_; }
  uint32_t last_ack_sent() const { return last_ack_; }
  uint16_t port() const { return port_; }
  const Address& self() const { return self_; }

 private:
  friend class Scenario;
  uint64_t send(uint8_t flags, uint32_t seq, uint32_t length, std::optional<uint8_t> ttl = {},
                std::optional<uint16_t> window = {}, bool options = false);
  Scenario* scenario_;
  Side* peer_ = nullptr;
  Address self_;
  uint16_t port_;
  uint32_t seq_;
  uint32_t received_ = 0;
  uint32_t last_ack_ = 0;
  uint32_t peer_last_ack_ = 0;
  uint8_t ttl_;
  uint16_t ip_id_ = 100;
  bool signed_ = false;
  uint16_t window_ = 64240;
  uint64_t source_mac_ = 0;
};

class Scenario {
 public:
  // A connection between two hosts; the client's TTL and the server's TTL as they arrive.
  struct Connection {
    Side client, server;
  };
  Connection& connect(const char* client, uint16_t client_port, const char* server, uint16_t server_port,
                      uint8_t client_ttl = 64, uint8_t server_ttl = 64) {
    connections_.push_back(std::make_unique<Connection>(Connection{
        Side(*this, address(client), client_port, 1000000 + 7919u * static_cast<uint32_t>(connections_.size()),
             client_ttl),
        Side(*this, address(server), server_port, 3000000000u + 104729u * static_cast<uint32_t>(connections_.size()),
             server_ttl)}));
    Connection& connection = *connections_.back();
    connection.client.peer(connection.server);
    connection.server.peer(connection.client);
    return connection;
  }
  void wait(double seconds) { now_ns_ += static_cast<int64_t>(seconds * 1e9); }
  uint64_t emit(const synth::SegmentSpec& spec) {
    std::vector<uint8_t> frame;
    synth::append_ethernet_frame(frame, spec);
    now_ns_ += 1'000'000;  // 1 ms between packets unless told otherwise
    writer_.add(now_ns_, frame);
    return ++frames_;
  }
  Collected run(const AnalyzerOptions& options = {}) {
    CaptureSet capture;
    capture.add_memory("scenario", writer_.bytes());
    Collected collected;
    last_stats_ = analyze_capture(capture, options, collected);
    return collected;
  }
  const RunStats& stats() const { return last_stats_; }
  const std::vector<uint8_t>& bytes() const { return writer_.bytes(); }

 private:
  synth::PcapWriter writer_{1, true};
  int64_t now_ns_ = 1'700'000'000'000'000'000;
  uint64_t frames_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
  RunStats last_stats_;
};

inline uint64_t Side::send(uint8_t flags, uint32_t seq, uint32_t length, std::optional<uint8_t> ttl,
                           std::optional<uint16_t> window, bool options) {
  synth::SegmentSpec spec;
  spec.src = self_;
  spec.dst = peer_->self_;
  spec.sport = port_;
  spec.dport = peer_->port_;
  spec.seq = seq;
  spec.flags = flags;
  spec.ack = (flags & tcp_flag::ack) ? received_ : 0;
  spec.payload_len = length;
  spec.ttl = ttl.value_or(ttl_);
  spec.ip_id = ip_id_++;
  spec.source_mac = source_mac_;
  spec.window = window.value_or(window_);
  spec.md5_signature = signed_ && !ttl;  // an injector's packets (a TTL of their own) are not signed
  if (options) {
    spec.mss = 1460;
    spec.window_scale = 7;
    spec.sack_permitted = true;
  }
  if (flags & tcp_flag::ack) last_ack_ = spec.ack;
  // The peer receives it in order: its next expected seq moves on (only for our own packets).
  if (!(flags & tcp_flag::rst) && !ttl) {
    const uint32_t end = seq + length + ((flags & tcp_flag::syn) ? 1u : 0u) + ((flags & tcp_flag::fin) ? 1u : 0u);
    if (static_cast<int32_t>(end - peer_->received_) > 0 || peer_->received_ == 0) peer_->received_ = end;
    peer_->peer_last_ack_ = spec.ack;
  }
  return scenario_->emit(spec);
}

inline uint64_t Side::syn() {
  const uint64_t frame = send(tcp_flag::syn, seq_, 0, {}, {}, true);
  seq_ += 1;
  return frame;
}
inline uint64_t Side::synack() {
  const uint64_t frame = send(tcp_flag::syn | tcp_flag::ack, seq_, 0, {}, {}, true);
  seq_ += 1;
  return frame;
}
inline uint64_t Side::ack() { return send(tcp_flag::ack, seq_, 0); }
inline uint64_t Side::data(uint32_t length) {
  const uint64_t frame = send(tcp_flag::ack | tcp_flag::psh, seq_, length);
  seq_ += length;
  return frame;
}
inline uint64_t Side::fin() {
  const uint64_t frame = send(tcp_flag::fin | tcp_flag::ack, seq_, 0);
  seq_ += 1;
  return frame;
}
inline uint64_t Side::rst_ack() { return send(tcp_flag::rst | tcp_flag::ack, seq_, 0); }
inline uint64_t Side::rst(uint32_t seq) { return send(tcp_flag::rst, seq, 0); }
inline uint64_t Side::rst_answer() { return send(tcp_flag::rst, peer_last_ack_, 0); }
inline uint64_t Side::keepalive() { return send(tcp_flag::ack, seq_ - 1, 0); }
inline uint64_t Side::window(uint16_t value) {
  window_ = value;
  return send(tcp_flag::ack, seq_, 0);
}
inline uint64_t Side::retransmit(uint32_t length) { return send(tcp_flag::ack | tcp_flag::psh, seq_ - length, length); }
inline uint64_t Side::spoof(uint8_t flags, uint32_t seq, uint32_t ack_value, uint8_t ttl, uint16_t window) {
  const uint32_t saved = received_;
  received_ = ack_value;
  const uint64_t frame = send(flags, seq, 0, ttl, window);
  received_ = saved;
  return frame;
}

// Opens a connection with a full handshake and one exchange of data.
inline Scenario::Connection& established(Scenario& scenario, const char* client = "192.0.2.10",
                                         const char* server = "198.51.100.20", uint16_t port = 80) {
  auto& connection = scenario.connect(client, 40000, server, port);
  connection.client.syn();
  connection.server.synack();
  connection.client.ack();
  connection.client.data(100);
  connection.server.data(300);
  connection.client.ack();
  return connection;
}

}  // namespace rstscope::testing
