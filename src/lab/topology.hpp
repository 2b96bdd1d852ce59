#pragma once
// The lab's network: client <-> router <-> server over two veth pairs, IPv4 and IPv6.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pcap/pcap.h>

#include "core/types.hpp"
#include "lab/netns.hpp"
#include "synth/frames.hpp"

namespace rstscope::lab {

// Documentation prefixes only (RFC 5737, RFC 3849).
inline constexpr const char* client_v4 = "192.0.2.2";
inline constexpr const char* router_client_v4 = "192.0.2.1";
inline constexpr const char* router_server_v4 = "198.51.100.1";
inline constexpr const char* server_v4 = "198.51.100.2";
inline constexpr const char* server_other_v4 = "198.51.100.3";
inline constexpr const char* client_v6 = "2001:db8:1::2";
inline constexpr const char* router_client_v6 = "2001:db8:1::1";
inline constexpr const char* router_server_v6 = "2001:db8:2::1";
inline constexpr const char* server_v6 = "2001:db8:2::2";
// Interface names inside the namespaces.
inline constexpr const char* client_iface = "eth0";
inline constexpr const char* router_client_iface = "c0";
inline constexpr const char* router_server_iface = "s0";
inline constexpr const char* server_iface = "eth0";

inline constexpr const char* namespace_prefix = "rsl-";

Address parse_ip(const char* text);

class Topology {
 public:
  // Builds the three namespaces and their links. Names: rsl-<pid>-<n>-cli|rtr|srv.
  bool create(std::string& error);
  void destroy();
  ~Topology() { destroy(); }

  Namespace client, router, server;
};

// One TCP segment seen by a capture, as the lab needs it to act (seq numbers to forge, ports).
struct WireSegment {
  int64_t ts_ns = 0;
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint8_t ttl = 0;
  uint32_t payload_len = 0;
};

// Parses an Ethernet frame carrying IPv4 or IPv6 TCP. Bounds-checked.
std::optional<WireSegment> parse_frame(const uint8_t* data, uint32_t length);

// libpcap capture opened inside a namespace; writes a pcap file and keeps the TCP segments.
class WireCapture {
 public:
  WireCapture() = default;
  ~WireCapture() { stop(); }
  WireCapture(const WireCapture&) = delete;
  WireCapture& operator=(const WireCapture&) = delete;

  bool start(const Namespace& ns, const std::string& iface, const std::string& filter,
             const std::string& pcap_path, std::string& error);
  // Drains what the kernel still holds, then closes the file.
  void stop();
  std::vector<WireSegment> segments() const;

 private:
  void loop();
  pcap_t* handle_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::thread reader_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<WireSegment> segments_;
};

// Sends a hand-made IPv4 TCP segment from a raw socket inside `ns` (the lab's forger).
bool inject_tcp_v4(const Namespace& ns, const WireSegment& segment, const std::string& payload,
                   std::string& error);
// Sends one IPv4 TCP segment whose every header field the caller chose, from inside `ns`.
bool send_raw_v4(const Namespace& ns, const synth::SegmentSpec& spec, std::string& error);

}  // namespace rstscope::lab
