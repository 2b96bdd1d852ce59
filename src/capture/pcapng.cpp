#include "capture/pcapng.hpp"

#include <algorithm>
#include <cstring>

#include "capture/stream.hpp"

namespace rstscope::capture_detail {

namespace {
constexpr uint32_t block_section = 0x0A0D0D0A;
constexpr uint32_t block_interface = 1;
constexpr uint32_t block_packet_obsolete = 2;
constexpr uint32_t block_simple_packet = 3;
constexpr uint32_t block_enhanced_packet = 6;
constexpr uint32_t byte_order_magic = 0x1A2B3C4D;
// Larger blocks are taken as corruption, as libpcap does; bounds memory on hostile input.
constexpr uint32_t max_block_bytes = 16u << 20;

uint32_t swap32(uint32_t value) { return __builtin_bswap32(value); }

__extension__ typedef unsigned __int128 uint128;
}  // namespace

PcapngReader::Status PcapngReader::fail(std::string message) {
  error_ = std::move(message);
  return Status::error;
}

PcapngReader::PcapngReader(ByteStream& stream, size_t buffer_bytes)
    : stream_(stream), buffer_(std::max<size_t>(buffer_bytes, 64)) {}

size_t PcapngReader::fill(size_t count) {
  if (end_ - position_ >= count) return count;
  // Move the block's start to the front, grow for a block larger than the buffer, read on.
  std::memmove(buffer_.data(), buffer_.data() + position_, end_ - position_);
  end_ -= position_;
  position_ = 0;
  if (buffer_.size() < count) buffer_.resize(count);
  while (end_ < count && !at_end_) {
    const ptrdiff_t got = stream_.read(buffer_.data() + end_, buffer_.size() - end_);
    if (got <= 0) {
      at_end_ = true;
      read_failed_ = got < 0;
    } else {
      end_ += static_cast<size_t>(got);
    }
  }
  return std::min(end_, count);
}

uint16_t PcapngReader::get16(const uint8_t* at) const {
  uint16_t value = 0;
  std::memcpy(&value, at, 2);
  return swapped_ ? static_cast<uint16_t>(value >> 8 | value << 8) : value;
}

uint32_t PcapngReader::get32(const uint8_t* at) const {
  uint32_t value = 0;
  std::memcpy(&value, at, 4);
  return swapped_ ? swap32(value) : value;
}

int64_t PcapngReader::to_ns(const Interface& interface, uint64_t units) const {
  uint64_t ns = 0;
  const uint8_t exponent = interface.resolution & 0x7f;
  if ((interface.resolution & 0x80) != 0) {
    // Power-of-two resolution: 2^-exponent seconds per unit.
    ns = static_cast<uint64_t>((static_cast<uint128>(units) * 1000000000u) >> exponent);
  } else if (exponent <= 9) {
    uint64_t factor = 1;
    for (uint8_t i = exponent; i < 9; ++i) factor *= 10;
    ns = units * factor;  // wraps on absurd values, never undefined
  } else {
    uint64_t divisor = 1;
    for (uint8_t i = 9; i < exponent && divisor <= UINT64_MAX / 10; ++i) divisor *= 10;
    ns = exponent - 9 > 19 ? 0 : units / divisor;
  }
  const uint64_t offset = static_cast<uint64_t>(interface.offset_seconds) * 1000000000u;
  return static_cast<int64_t>(ns + offset);
}

bool PcapngReader::parse_interface(const uint8_t* body, size_t length) {
  if (length < 8) return false;
  Interface interface;
  interface.link_type = get16(body);
  interface.snaplen = get32(body + 4);
  // Options: code, length, value padded to 32 bits, until opt_endofopt or the block's end.
  size_t at = 8;
  while (at + 4 <= length) {
    const uint16_t code = get16(body + at);
    const uint16_t option_length = get16(body + at + 2);
    at += 4;
    if (code == 0 || option_length > length - at) break;
    if (code == 9 && option_length >= 1) interface.resolution = body[at];
    if (code == 14 && option_length >= 8) {
      uint64_t raw = 0;
      std::memcpy(&raw, body + at, 8);
      if (swapped_) raw = __builtin_bswap64(raw);
      interface.offset_seconds = static_cast<int64_t>(raw);
    }
    at += (static_cast<size_t>(option_length) + 3) & ~static_cast<size_t>(3);
  }
  interfaces_.push_back(interface);
  return true;
}

PcapngReader::Status PcapngReader::next(PcapngRecord& record) {
  if (!error_.empty()) return Status::error;
  // Bounded by the input: each pass consumes a whole block or stops.
  while (true) {
    error_offset_ = offset_;
    const size_t have = fill(8);
    if (have < 8) {
      if (have == 0 && seen_section_ && !read_failed_) return Status::end;
      if (read_failed_) return fail("read error");
      return fail("truncated block header: only " + std::to_string(have) + " of 8 bytes");
    }
    uint32_t type = 0;
    std::memcpy(&type, buffer_.data() + position_, 4);
    uint32_t total = 0;
    size_t header_bytes = 8;
    if (type == block_section) {
      // The byte-order magic decides how this whole section is read (pcapng §4.1).
      if (fill(12) < 12) return fail("truncated section header block");
      header_bytes = 12;
      uint32_t magic = 0;
      std::memcpy(&magic, buffer_.data() + position_ + 8, 4);
      if (magic == byte_order_magic) {
        swapped_ = false;
      } else if (magic == swap32(byte_order_magic)) {
        swapped_ = true;
      } else {
        return fail("bad byte-order magic in section header block");
      }
      total = get32(buffer_.data() + position_ + 4);
      if (total < 28) return fail("section header block too short");
      interfaces_.clear();
      seen_section_ = true;
    } else {
      if (!seen_section_) return fail("not a pcapng file: no section header block first");
      type = get32(buffer_.data() + position_);
      total = get32(buffer_.data() + position_ + 4);
      if (total < 12) return fail("block length " + std::to_string(total) + " is too short");
    }
    if (total % 4 != 0) return fail("block length " + std::to_string(total) + " is not a multiple of 4");
    if (total > max_block_bytes) {
      return fail("block length " + std::to_string(total) + " is larger than " +
                  std::to_string(max_block_bytes));
    }
    const size_t rest = total - header_bytes;
    if (const size_t got = fill(total); got < total) {
      if (read_failed_) return fail("read error");
      return fail("truncated block: " + std::to_string(got - header_bytes) + " of " + std::to_string(rest) +
                  " bytes present");
    }
    const uint8_t* block = buffer_.data() + position_ + header_bytes;
    position_ += total;
    offset_ += total;
    if (get32(block + rest - 4) != total) {
      return fail("block trailer length does not match its header");
    }
    const uint8_t* body = block;
    const size_t body_length = rest - 4;
    // For the section block the body starts after the byte-order magic.
    if (type == block_section) {
      if (body_length < 12) return fail("section header block too short");
      const uint16_t major = get16(body);
      if (major != 1) return fail("unsupported pcapng major version " + std::to_string(major));
      continue;
    }
    if (type == block_interface) {
      if (!parse_interface(body, body_length)) return fail("interface description block too short");
      continue;
    }
    uint32_t interface_id = 0;
    uint64_t units = 0;
    uint32_t caplen = 0, origlen = 0;
    const uint8_t* data = nullptr;
    bool has_time = true;
    if (type == block_enhanced_packet || type == block_packet_obsolete) {
      if (body_length < 20) return fail("packet block too short");
      if (type == block_enhanced_packet) {
        interface_id = get32(body);
      } else {
        interface_id = get16(body);
      }
      units = static_cast<uint64_t>(get32(body + 4)) << 32 | get32(body + 8);
      caplen = get32(body + 12);
      origlen = get32(body + 16);
      if (caplen > body_length - 20) {
        return fail("packet length " + std::to_string(caplen) + " exceeds its block");
      }
      data = body + 20;
    } else if (type == block_simple_packet) {
      if (body_length < 4) return fail("simple packet block too short");
      origlen = get32(body);
      caplen = static_cast<uint32_t>(std::min<size_t>(origlen, body_length - 4));
      if (!interfaces_.empty() && interfaces_[0].snaplen != 0) {
        caplen = std::min(caplen, interfaces_[0].snaplen);
      }
      data = body + 4;
      has_time = false;
    } else {
      continue;  // statistics, name resolution, custom and unknown blocks carry no packets
    }
    if (interface_id >= interfaces_.size()) {
      return fail("packet refers to undefined interface " + std::to_string(interface_id));
    }
    const Interface& interface = interfaces_[interface_id];
    record.ts_ns = has_time ? to_ns(interface, units) : last_ts_ns_;
    last_ts_ns_ = record.ts_ns;
    record.link_type = interface.link_type;
    record.caplen = caplen;
    record.origlen = std::max(origlen, caplen);
    record.data = data;
    return Status::packet;
  }
}

}  // namespace rstscope::capture_detail
