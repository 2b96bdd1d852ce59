#pragma once
// A bounds-checked pcapng reader (several sections, byte orders, interfaces with their own link
// type, snap length and timestamp resolution). libpcap 1.10 refuses files whose interfaces differ
// in link type or snap length, which real captures do, so pcapng is read here.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rstscope::capture_detail {

class ByteStream;

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
  // Reads from `stream` (positioned at the first Section Header Block), which it does not own,
  // into a buffer of `buffer_bytes` (grown for a larger block), and walks blocks in place.
  PcapngReader(ByteStream& stream, size_t buffer_bytes);

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
  // Makes `count` bytes from the current block's start available in the buffer, reading more
  // as needed; returns how many are there (fewer only at the end of the stream or on an error).
  size_t fill(size_t count);
  uint16_t get16(const uint8_t* at) const;
  uint32_t get32(const uint8_t* at) const;
  int64_t to_ns(const Interface& interface, uint64_t units) const;
  bool parse_interface(const uint8_t* body, size_t length);

  ByteStream& stream_;
  std::vector<uint8_t> buffer_;
  size_t position_ = 0;  // the current block's first byte in buffer_
  size_t end_ = 0;       // end of the bytes read into buffer_
  bool at_end_ = false;  // the stream has no more bytes
  bool read_failed_ = false;
  bool swapped_ = false;
  bool seen_section_ = false;
  uint64_t offset_ = 0;  // of the next block
  std::vector<Interface> interfaces_;
  int64_t last_ts_ns_ = 0;
  std::string error_;
  uint64_t error_offset_ = 0;
};

}  // namespace rstscope::capture_detail
