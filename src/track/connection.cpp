#include "track/connection.hpp"

#include <cstring>
#include <string_view>

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

namespace {

// The 16 letters a history holds, as 4-bit codes.
constexpr std::string_view history_letters = "shadfrtwSHADFRTW";

}  // namespace

void History::add(char letter, bool originator) {
  if (length_ == capacity) return;
  const auto code = static_cast<uint8_t>(history_letters.find(letter) + (originator ? 8 : 0));
  codes_[length_ / 2] |= static_cast<uint8_t>(code << (length_ % 2 * 4));
  ++length_;
}

std::string History::str() const {
  std::string letters(length_, ' ');
  for (size_t i = 0; i < length_; ++i) letters[i] = history_letters[(codes_[i / 2] >> (i % 2 * 4)) & 0xf];
  return letters;
}

void Connection::coarsen() {
  const auto coarser = [this](uint32_t& ticks) { ticks = time_shift == 0 ? ticks / 1000 : ticks >> 1; };
  const Stamp& last = (last_from_originator ? originator : responder).last_ts;
  const int64_t last_offset = to_ns(last.ticks) + last_ts_rest;
  for (Endpoint* side : {&originator, &responder}) {
    coarser(side->last_ts.ticks);
    coarser(side->last_data_ts.ticks);
    coarser(side->fin_ts.ticks);
    coarser(side->gap_before_last.ticks);
  }
  coarser(handshake_rtt.ticks);
  ++time_shift;
  // Less than one unit, which stays under 2^32 ns for any offset an int64_t holds.
  last_ts_rest = static_cast<uint32_t>(last_offset - to_ns(last.ticks));
}

}  // namespace rstscope
