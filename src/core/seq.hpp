#pragma once
// Sequence-number arithmetic modulo 2^32 (RFC 1982 serial arithmetic, RFC 9293 §3.4).
// Every comparison of seq or ack values in rstscope goes through these helpers.
#include <cstdint>

namespace rstscope {

// Signed distance from `from` to `to`, wrapping at 2^32.
constexpr int32_t seq_diff(uint32_t to, uint32_t from) {
  return static_cast<int32_t>(to - from);
}
constexpr bool seq_lt(uint32_t a, uint32_t b) { return seq_diff(a, b) < 0; }
constexpr bool seq_le(uint32_t a, uint32_t b) { return seq_diff(a, b) <= 0; }
constexpr bool seq_gt(uint32_t a, uint32_t b) { return seq_diff(a, b) > 0; }
constexpr bool seq_ge(uint32_t a, uint32_t b) { return seq_diff(a, b) >= 0; }
constexpr uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
// True when `value` lies in [left, left + size).
constexpr bool seq_in_window(uint32_t value, uint32_t left, uint32_t size) {
  return value - left < size;
}

}  // namespace rstscope
