#pragma once
// A bounds-checked pcapng reader (several sections, byte orders, interfaces with their own link
// type, snap length and timestamp resolution). libpcap 1.10 refuses files whose interfaces differ
// in link type or snap length, which real captures do, so pcapng is read here.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace rstscope::capture_detail {

struct PcapngRecord {
  int64_t ts_ns = 0;
  uint32_t link_type = 0;
  uint32_t caplen = 0;
  uint32_t origlen = 0;
  const uint8_t* data = nullptr;  // valid until the next call to next()
};

class PcapngReader {
 public:
  enum class Status : uint8_t { packet, end, error };
  // Reads from `file` (positioned at the first Section Header Block); does not own it.
  explicit PcapngReader(std::FILE* file) : file_(file) {}

  Status next(PcapngRecord& record);
  const std::string& error() const { return error_; }
  uint64_t error_offset() const { return error_offset_; }

 private:
  struct Interface {
    uint32_t link_type = 0;
    uint32_t snaplen = 0;
    uint8_t resolution = 6;      // if_tsresol: 10^-6 by default
    int64_t offset_seconds = 0;  // if_tsoffset
  };
  Status fail(std::string message);
  bool read_exact(uint8_t* out, size_t size, size_t& got);
  uint16_t get16(const uint8_t* at) const;
  uint32_t get32(const uint8_t* at) const;
  int64_t to_ns(const Interface& interface, uint64_t units) const;
  bool parse_interface(const uint8_t* body, size_t length);

  std::FILE* file_;
  bool swapped_ = false;
  bool seen_section_ = false;
  uint64_t offset_ = 0;  // of the next block
  std::vector<Interface> interfaces_;
  std::vector<uint8_t> block_;
  int64_t last_ts_ns_ = 0;
  std::string error_;
  uint64_t error_offset_ = 0;
};

}  // namespace rstscope::capture_detail
