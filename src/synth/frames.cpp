#include "synth/frames.hpp"

#include <algorithm>

namespace rstscope::synth {
namespace {

void put_be16(std::vector<uint8_t>& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

void put_be32(std::vector<uint8_t>& out, uint32_t value) {
  put_be16(out, static_cast<uint16_t>(value >> 16));
  put_be16(out, static_cast<uint16_t>(value));
}

void set_be16(std::vector<uint8_t>& out, size_t at, uint16_t value) {
  out[at] = static_cast<uint8_t>(value >> 8);
  out[at + 1] = static_cast<uint8_t>(value);
}

// One's-complement sum of 16-bit words (RFC 1071), not yet folded or inverted.
uint32_t sum_words(const uint8_t* data, size_t length, uint32_t sum) {
  size_t i = 0;
  for (; i + 1 < length; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (i < length) sum += static_cast<uint32_t>(data[i] << 8);
  return sum;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::vector<uint8_t> tcp_options(const SegmentSpec& spec) {
  std::vector<uint8_t> options;
  if (spec.mss != 0) {
    options.insert(options.end(), {2, 4});
    put_be16(options, spec.mss);
  }
  if (spec.sack_permitted) options.insert(options.end(), {4, 2});
  if (spec.timestamps) {
    options.insert(options.end(), {8, 10});
    put_be32(options, spec.tsval);
    put_be32(options, spec.tsecr);
  }
  if (spec.window_scale != 0xff) options.insert(options.end(), {1, 3, 3, spec.window_scale});
  if (spec.md5_signature) {
    options.insert(options.end(), {19, 18});
    for (uint8_t i = 0; i < 16; ++i) options.push_back(static_cast<uint8_t>(0xa5 ^ (i * 17) ^ spec.seq));
  }
  while (options.size() % 4 != 0) options.push_back(1);  // NOP padding
  return options;
}

}  // namespace

void append_ip_packet(std::vector<uint8_t>& out, const SegmentSpec& spec) {
  const std::vector<uint8_t> options = tcp_options(spec);
  const size_t tcp_length = 20 + options.size() + spec.payload_len;
  const bool v6 = spec.src.is_v6();
  const size_t ip_start = out.size();
  if (v6) {
    out.insert(out.end(), {0x60, 0, 0, 0});
    put_be16(out, static_cast<uint16_t>(tcp_length));
    out.push_back(6);  // next header: TCP
    out.push_back(spec.ttl);
    out.insert(out.end(), spec.src.bytes.begin(), spec.src.bytes.end());
    out.insert(out.end(), spec.dst.bytes.begin(), spec.dst.bytes.end());
  } else {
    out.push_back(0x45);
    out.push_back(0);
    put_be16(out, static_cast<uint16_t>(20 + tcp_length));
    put_be16(out, spec.ip_id);
    put_be16(out, spec.df ? 0x4000 : 0);
    out.push_back(spec.ttl);
    out.push_back(6);
    put_be16(out, 0);
    out.insert(out.end(), spec.src.bytes.begin(), spec.src.bytes.begin() + 4);
    out.insert(out.end(), spec.dst.bytes.begin(), spec.dst.bytes.begin() + 4);
    set_be16(out, ip_start + 10, fold(sum_words(out.data() + ip_start, 20, 0)));
  }
  const size_t tcp_start = out.size();
  put_be16(out, spec.sport);
  put_be16(out, spec.dport);
  put_be32(out, spec.seq);
  put_be32(out, spec.ack);
  out.push_back(static_cast<uint8_t>(((20 + options.size()) / 4) << 4));
  out.push_back(spec.flags);
  put_be16(out, spec.window);
  put_be16(out, 0);  // checksum, filled below
  put_be16(out, 0);  // urgent pointer
  out.insert(out.end(), options.begin(), options.end());
  const size_t given = std::min<size_t>(spec.payload.size(), spec.payload_len);
  out.insert(out.end(), spec.payload.begin(), spec.payload.begin() + static_cast<long>(given));
  for (size_t i = given; i < spec.payload_len; ++i) {
    out.push_back(static_cast<uint8_t>('a' + (spec.seq + i) % 26));
  }
  // Pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1) then the segment.
  uint32_t sum = 0;
  const size_t address_length = v6 ? 16 : 4;
  sum = sum_words(spec.src.bytes.data(), address_length, sum);
  sum = sum_words(spec.dst.bytes.data(), address_length, sum);
  sum += 6;
  sum += static_cast<uint32_t>(tcp_length);
  sum = sum_words(out.data() + tcp_start, tcp_length, sum);
  set_be16(out, tcp_start + 16, fold(sum));
}

void append_ethernet_frame(std::vector<uint8_t>& out, const SegmentSpec& spec) {
  // Locally administered MACs derived from the addresses' last byte, so each host keeps one.
  const uint8_t src_last = spec.src.bytes[spec.src.is_v6() ? 15 : 3];
  const uint8_t dst_last = spec.dst.bytes[spec.dst.is_v6() ? 15 : 3];
  out.insert(out.end(), {0x02, 0, 0, 0, 0, dst_last});
  if (spec.source_mac != 0) {
    for (int shift = 40; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(spec.source_mac >> shift));
  } else {
    out.insert(out.end(), {0x02, 0, 0, 0, 0, src_last});
  }
  if (spec.vlan != 0) {
    put_be16(out, 0x8100);
    put_be16(out, static_cast<uint16_t>(spec.vlan & 0x0fff));
  }
  put_be16(out, spec.src.is_v6() ? 0x86dd : 0x0800);
  append_ip_packet(out, spec);
}

PcapWriter::PcapWriter(uint32_t link_type, bool nanosecond, uint32_t snaplen)
    : PcapWriter(nullptr, link_type, nanosecond, snaplen) {}

PcapWriter::PcapWriter(std::FILE* file, uint32_t link_type, bool nanosecond, uint32_t snaplen)
    : file_(file), nanosecond_(nanosecond) {
  buffer_.reserve(file_ != nullptr ? (4u << 20) + 65536 : 4096);
  put32(nanosecond ? 0xa1b23c4d : 0xa1b2c3d4);
  put16(2);
  put16(4);
  put32(0);
  put32(0);
  put32(snaplen);
  put32(link_type);
}

PcapWriter::~PcapWriter() { flush(); }

void PcapWriter::put32(uint32_t value) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  buffer_.insert(buffer_.end(), bytes, bytes + 4);
}

void PcapWriter::put16(uint16_t value) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  buffer_.insert(buffer_.end(), bytes, bytes + 2);
}

void PcapWriter::add(int64_t ts_ns, const uint8_t* data, uint32_t length, uint32_t origlen) {
  const int64_t seconds = ts_ns / 1000000000;
  const int64_t fraction = ts_ns % 1000000000;
  put32(static_cast<uint32_t>(seconds));
  put32(static_cast<uint32_t>(nanosecond_ ? fraction : fraction / 1000));
  put32(length);
  put32(origlen != 0 ? origlen : length);
  buffer_.insert(buffer_.end(), data, data + length);
  ++records_;
  if (file_ != nullptr && buffer_.size() >= (4u << 20)) flush();
}

bool PcapWriter::flush() {
  if (file_ == nullptr || buffer_.empty()) return ok_;
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) ok_ = false;
  buffer_.clear();
  return ok_;
}

}  // namespace rstscope::synth
