#pragma once
// A classic pcap reader that walks records in place in one large reused buffer. It gives the
// same packets, lengths, timestamps and errors as libpcap's savefile reader, without libpcap's
// copy of every packet and its stdio round trips. Files it cannot read exactly as libpcap
// would (old versions, the modified record format, link types libpcap rewrites) stay with
// libpcap: see PcapReader::supports().
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rstscope::capture_detail {

class ByteStream;

struct PcapRecord {
  int64_t ts_ns = 0;
  uint32_t caplen = 0;
  uint32_t origlen = 0;           // as the record says; may be below caplen in damaged files
  const uint8_t* data = nullptr;  // valid until the next call to next()
};

class PcapReader {
 public:
  static constexpr size_t file_header_bytes = 24;
  enum class Status : uint8_t { packet, end, error };

  // True when the file header (its first `length` bytes) is one this reader handles exactly
  // as libpcap does; anything else, including a short or invalid header, goes to libpcap.
  static bool supports(const uint8_t* header, size_t length);

  // Reads from `stream`, which must be positioned at the file header; does not own it.
  // `buffer_bytes` is the read buffer; it grows once if a record needs more.
  PcapReader(ByteStream& stream, size_t buffer_bytes);

  Status next(PcapRecord& record);
  uint32_t link_type() const { return link_type_; }  // LINKTYPE_* value
  const std::string& error() const { return error_; }
  uint64_t error_offset() const { return error_offset_; }

 private:
  bool start();
  bool ensure(size_t count);
  Status fail(uint64_t offset, std::string message);
  uint32_t get32(const uint8_t* at) const;

  ByteStream& stream_;
  std::vector<uint8_t> buffer_;
  size_t position_ = 0;  // next unread byte in buffer_
  size_t end_ = 0;       // end of the bytes read into buffer_
  uint64_t base_ = 0;    // stream offset of buffer_[0]
  bool at_end_ = false;  // the stream has no more bytes (or failed)
  bool started_ = false;
  bool swapped_ = false;
  bool nanosecond_ = false;
  uint32_t link_type_ = 0;
  uint32_t snapshot_ = 0;
  std::string error_;
  uint64_t error_offset_ = 0;
};

}  // namespace rstscope::capture_detail
