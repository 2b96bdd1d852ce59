#pragma once
// decode/: turns a captured frame into a TCP Segment. Every byte read is bounds-checked.
#include "core/stats.hpp"
#include "core/types.hpp"

namespace rstscope {

enum class DecodeResult : uint8_t { tcp, not_ip, not_tcp, fragment, truncated, malformed, unsupported_link };

// Decodes link layer (Ethernet with 802.1Q/QinQ, Linux cooked v1/v2, raw IPv4/IPv6, BSD
// loopback), IPv4 with options, IPv6 with extension headers, tunnels (IP-in-IP, GRE, Teredo,
// VXLAN) and TCP with its options. Counts the outcome in `stats`.
DecodeResult decode(const Packet& packet, Segment& segment, DecodeStats& stats);

}  // namespace rstscope
