#include "track/connection.hpp"

#include <cstring>

namespace rstscope {

ConnectionKey ConnectionKey::of(const Segment& segment) {
  ConnectionKey key;
  const bool source_low = segment.src < segment.dst ||
                          (segment.src == segment.dst && segment.sport <= segment.dport);
  if (source_low) {
    key.low_address = segment.src;
    key.low_port = segment.sport;
    key.high_address = segment.dst;
    key.high_port = segment.dport;
  } else {
    key.low_address = segment.dst;
    key.low_port = segment.dport;
    key.high_address = segment.src;
    key.high_port = segment.sport;
  }
  return key;
}

uint64_t ConnectionKey::hash() const {
  // FNV-1a over the canonical key, then a final mix; symmetric because the key is canonical.
  uint64_t value = 1469598103934665603ull;
  auto mix = [&value](const uint8_t* data, size_t length) {
    for (size_t i = 0; i < length; ++i) {
      value ^= data[i];
      value *= 1099511628211ull;
    }
  };
  const size_t length = low_address.is_v6() ? 16 : 4;
  mix(low_address.bytes.data(), length);
  mix(high_address.bytes.data(), length);
  const uint32_t ports = static_cast<uint32_t>(low_port) << 16 | high_port;
  uint8_t port_bytes[4];
  std::memcpy(port_bytes, &ports, 4);
  mix(port_bytes, 4);
  value ^= value >> 33;
  value *= 0xff51afd7ed558ccdull;
  value ^= value >> 33;
  return value;
}

void History::add(char letter, bool originator) {
  const char shown = originator ? static_cast<char>(letter - 'a' + 'A') : letter;
  if (length_ < capacity) letters_[length_++] = shown;
}

}  // namespace rstscope
