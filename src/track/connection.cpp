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
  // Word-wise multiply-xor over the canonical key (symmetric because the key is canonical).
  uint64_t words[4];
  std::memcpy(words, low_address.bytes.data(), 16);
  std::memcpy(words + 2, high_address.bytes.data(), 16);
  const uint64_t ports = static_cast<uint64_t>(low_port) << 16 | high_port | static_cast<uint64_t>(low_address.family) << 32;
  uint64_t value = (words[0] ^ ports) * 0x9e3779b97f4a7c15ull;
  value ^= words[1] * 0xc2b2ae3d27d4eb4full;
  value ^= words[2] * 0x165667b19e3779f9ull;
  value ^= words[3] * 0xd6e8feb86659fd93ull;
  value ^= ports * 0xff51afd7ed558ccdull;
  value ^= value >> 32;
  value *= 0x9fb21c651e98df25ull;
  value ^= value >> 29;
  return value;
}

void History::add(char letter, bool originator) {
  const char shown = originator ? static_cast<char>(letter - 'a' + 'A') : letter;
  if (length_ < capacity) letters_[length_++] = shown;
}

}  // namespace rstscope
