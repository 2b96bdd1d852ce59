#pragma once
// A Connection in a few dozen bytes instead of 256, for connections idle long enough that memory
// matters more than the cost of restoring them. Lossless: decode(encode(c)) gives back c's bytes.
#include <cstddef>
#include <cstdint>

#include "track/connection.hpp"

namespace rstscope::compact {

// Upper bound on encode()'s output, in bytes: its id, the presence bits, and every field at its
// longest (the longest varint of each width, or the field's raw bytes).
inline constexpr size_t max_size = 287;

// Writes every field of `connection` except its key (v4_addresses, key_tail), its idle-list
// fields (older, newer, touched, list) and, for IPv6, the record's addresses. Returns the number
// of bytes written (at most max_size).
size_t encode(const Connection& connection, uint8_t* out);
// Restores into `connection` every field encode() wrote; the others are left as they are.
// `size` is what encode() returned.
void decode(const uint8_t* in, size_t size, Connection& connection);
// Reads only the connection's id (first_frame) from an encoding: it leads, so this is cheap.
uint64_t decode_id(const uint8_t* in);

}  // namespace rstscope::compact
