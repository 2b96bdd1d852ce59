#pragma once
// decode/: turns a captured frame into a TCP Segment. Every byte read is bounds-checked.
#include "core/stats.hpp"
#include "core/types.hpp"

namespace rstscope {

enum class DecodeResult : uint8_t { tcp, not_ip, not_tcp, fragment, truncated, malformed, unsupported_link };

// Decodes link layer (Ethernet with 802.1Q/QinQ, Linux cooked v1/v2, raw IPv4/IPv6, BSD
// loopback), IPv4 with options, IPv6 with extension headers, tunnels (IP-in-IP, GRE, Teredo,
// VXLAN) and TCP with its options. Counts the outcome in `stats`. Every field of `segment` is
// set when the result is DecodeResult::tcp; with any other result it points at no payload, and
// what its other fields hold is unspecified.
DecodeResult decode(const Packet& packet, Segment& segment, DecodeStats& stats);

}  // namespace rstscope
