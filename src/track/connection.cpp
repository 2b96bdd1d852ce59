#include "track/connection.hpp"

#include <cstring>

namespace rstscope {

static_assert([] {
  for (uint8_t code = 0; code < 8; ++code) {
    if (History::code_of(History::letters[code]) != code) return false;
  }
  return true;
}(), "History::code_of must agree with History::letters");

std::string History::str() const {
  std::string text;
  str_to(text);
  return text;
}

void History::str_to(std::string& text) const {
  text.resize(length_);
  for (size_t i = 0; i < length_; ++i) text[i] = letters[(codes_[i / 2] >> (i % 2 * 4)) & 0xf];
}

uint32_t Connection::to_coarse_ticks(int64_t ns) {
  while (true) {
    const int64_t ticks = time_shift == 0 ? ns : (ns / 1000) >> (time_shift - 1);
    if (ticks <= 0xffffffff) return static_cast<uint32_t>(ticks);
    coarsen();
  }
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
