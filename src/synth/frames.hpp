#pragma once
// synth/: builds real frames and classic pcap files. Used by the test scenario builder and
// the benchmark capture generator; nothing on the analysis path depends on it.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace rstscope::synth {

struct SegmentSpec {
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 65535;
  uint32_t payload_len = 0;
  std::string_view payload;   // when shorter than payload_len, the rest is filled with a pattern
  uint8_t ttl = 64;
  uint16_t ip_id = 0;
  bool df = true;
  uint16_t vlan = 0;          // 802.1Q tag, 0 for none
  uint64_t source_mac = 0;    // Ethernet source (48 bits); 0: one derived from the source address
  // Options; zero/false for absent.
  uint16_t mss = 0;
  uint8_t window_scale = 0xff;
  bool sack_permitted = false;
  bool timestamps = false;
  uint32_t tsval = 0, tsecr = 0;
  bool md5_signature = false;  // a TCP-MD5 option (RFC 2385) with a made-up digest
};

// Appends an Ethernet frame (with an 802.1Q tag when spec.vlan != 0) carrying the segment over
// IPv4 or IPv6, with correct lengths and checksums.
void append_ethernet_frame(std::vector<uint8_t>& out, const SegmentSpec& spec);
// Appends just the IP packet (for LINKTYPE_RAW).
void append_ip_packet(std::vector<uint8_t>& out, const SegmentSpec& spec);

// Writes classic pcap (microsecond or nanosecond) to memory, or streams it to a FILE.
class PcapWriter {
 public:
  explicit PcapWriter(uint32_t link_type = 1, bool nanosecond = true, uint32_t snaplen = 262144);
  // Streams to `file` instead of keeping the bytes; the caller owns the file.
  PcapWriter(std::FILE* file, uint32_t link_type = 1, bool nanosecond = true,
             uint32_t snaplen = 262144);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Adds one record; `origlen` 0 means the frame's own length.
  void add(int64_t ts_ns, const uint8_t* data, uint32_t length, uint32_t origlen = 0);
  void add(int64_t ts_ns, const std::vector<uint8_t>& frame) {
    add(ts_ns, frame.data(), static_cast<uint32_t>(frame.size()));
  }
  // Flushes buffered bytes to the file (streaming mode). Returns false on a write error.
  bool flush();
  const std::vector<uint8_t>& bytes() const { return buffer_; }
  uint64_t records() const { return records_; }

 private:
  void put32(uint32_t value);
  void put16(uint16_t value);
  std::FILE* file_ = nullptr;
  bool nanosecond_;
  std::vector<uint8_t> buffer_;
  uint64_t records_ = 0;
  bool ok_ = true;
};

}  // namespace rstscope::synth
