#pragma once
// Counters gathered by each stage, reported together at the end of a run.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/finding.hpp"

namespace rstscope {

struct InputError {
  std::string file;
  uint64_t offset = 0;      // byte offset in the (decompressed) input where it went wrong
  std::string message;
  bool fatal = true;        // the input could not be read to its end
};

struct CaptureStats {
  uint64_t inputs = 0;          // files (or stdin) opened
  uint64_t inputs_failed = 0;   // of those, ones that could not be opened or read to the end
  uint64_t packets = 0;         // records read
  uint64_t bytes = 0;           // captured bytes read
  uint64_t snapped = 0;         // records shorter than the packet on the wire (snap length)
  uint64_t filtered_out = 0;    // records rejected by --filter
  uint64_t kernel_dropped = 0;  // live capture: the kernel's drop counter
  uint64_t interface_dropped = 0;
  int64_t first_ns = 0, last_ns = 0;
  std::vector<InputError> errors;
};

struct DecodeStats {
  uint64_t packets = 0;
  uint64_t tcp = 0;
  uint64_t not_ip = 0;           // ARP, LLDP and the like
  uint64_t not_tcp = 0;          // IP but not TCP (UDP, ICMP, ...)
  uint64_t fragments = 0;        // IP fragments: counted, not reassembled
  uint64_t truncated = 0;        // cut before the TCP header ended
  uint64_t malformed = 0;        // bad header lengths, bad versions, bad option lengths
  uint64_t unsupported_link = 0;
  uint64_t tunnelled = 0;        // TCP found inside IP-in-IP, GRE, Teredo or VXLAN
};

struct TrackStats {
  uint64_t segments = 0;
  uint64_t connections = 0;      // connections created
  uint64_t live_peak = 0;        // most connections alive at once
  uint64_t evicted_idle = 0;     // removed after the idle timeout
  uint64_t evicted_pressure = 0; // removed early because the table was full
  uint64_t port_reuse = 0;       // a new SYN replaced an old connection on the same 4-tuple
  uint64_t resets = 0;
  uint64_t resets_without_connection = 0;
  uint64_t resets_judged_early = 0;  // before their horizon, under the cap on waiting RSTs
  uint64_t retransmissions = 0;
  uint64_t out_of_order = 0;
  uint64_t compacted = 0;        // times an idle connection was put in its compact form
  uint64_t restored = 0;         // times a packet restored a compact connection whole
};

struct DiagnoseStats {
  std::array<uint64_t, cause_count> by_cause{};
  uint64_t duplicates = 0;
  uint64_t patterns = 0;
};

struct RunStats {
  CaptureStats capture;
  DecodeStats decode;
  TrackStats track;
  DiagnoseStats diagnose;
  double wall_seconds = 0;
};

}  // namespace rstscope
