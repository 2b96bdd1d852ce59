#include "track/compact.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <type_traits>

namespace rstscope::compact {

// The encoding: first_frame as a varint, then every other field in the order visit() lists them,
// each with a presence bit, and when present (not as predicted) a varint or its raw bytes.
//
// The codec lists every byte of these structs, field by field, below: a new field must be added
// to visit() too, or it is lost when a connection is compacted.
static_assert(sizeof(Connection) == 256, "Connection changed: add the new field to the compact codec");
static_assert(sizeof(Endpoint) == 84, "Endpoint changed: add the new field to the compact codec");
// History is copied through its bytes (its fields are private): 12 bytes of letter codes, then
// the length, as declared.
static_assert(sizeof(History) == 13 && std::is_trivially_copyable_v<History> && std::is_standard_layout_v<History>,
              "History changed: update the compact codec");
static_assert(std::is_standard_layout_v<Connection> && std::is_standard_layout_v<Endpoint>);

namespace {

// Bit-fields have no address: they are copied as the bytes that hold them.
constexpr size_t state_offset = offsetof(Connection, time_shift) + 1;  // the bools after time_shift
static_assert(offsetof(Connection, list) == state_offset + 1, "the connection's bools are one byte");
constexpr size_t endpoint_bits_offset = offsetof(Endpoint, fin_acks) + 1;  // scales, counters, bools
constexpr size_t endpoint_bits = sizeof(Endpoint) - endpoint_bits_offset;
static_assert(endpoint_bits == 3);
constexpr size_t history_codes = sizeof(History) - 1;

// Capture files mostly keep microseconds: times then lose their three zero digits.
constexpr uint32_t microsecond = 1000;

uint8_t byte_of(const void* object, size_t offset) {
  uint8_t byte;
  std::memcpy(&byte, static_cast<const uint8_t*>(object) + offset, 1);
  return byte;
}

// All ones in the width of T: deltas wrap around in the field's own width (seq numbers wrap).
template <typename T>
constexpr uint64_t mask = static_cast<std::make_unsigned_t<T>>(~std::make_unsigned_t<T>{0});

// A value in `unit`s (it is a multiple of unit), as the bits of its type. Units are 1 or a
// microsecond, each divided by as a constant (a division by a variable is slow).
template <typename T>
uint64_t in_units(T value, uint32_t unit) {
  if (unit == 1) return static_cast<uint64_t>(value);
  if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(value) / int64_t{microsecond});
  } else {
    return static_cast<uint64_t>(value) / microsecond;
  }
}

// Signed deltas as small unsigned numbers (0, -1, 1, -2, ... as 0, 1, 2, 3, ...) in T's width.
template <typename T>
uint64_t zigzag(uint64_t delta) {
  const bool negative = (delta >> (sizeof(T) * 8 - 1)) & 1;
  return ((delta << 1) & mask<T>) ^ (negative ? mask<T> : 0);
}
template <typename T>
uint64_t unzigzag(uint64_t value) {
  return (value >> 1) ^ ((value & 1) != 0 ? mask<T> : 0);
}

size_t put_varint(uint8_t* out, uint64_t value) {
  size_t size = 0;
  while (value >= 0x80) {
    out[size++] = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  out[size++] = static_cast<uint8_t>(value);
  return size;
}

uint64_t get_varint(const uint8_t*& in) {
  uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t byte = *in++;
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) return value;
  }
}

// The presence bits go in bytes of eight, each before the fields it describes, so neither side
// needs to know the number of fields in advance. A field whose stored value is zero costs only
// its bit.
class Writer {
 public:
  static constexpr bool reading = false;
  explicit Writer(uint8_t* out) : out_(out) {}
  size_t size() const { return size_; }

  void id(uint64_t value) { size_ += put_varint(out_ + size_, value); }
  // Only its bit.
  void flag(bool value) { present(value); }
  // Values at or after `base` (counts, or a value whose base is 0): varint of the distance.
  template <typename T>
  void above(const T& value, std::type_identity_t<T> base, uint32_t unit = 1) {
    put((in_units(value, unit) - in_units(base, unit)) & mask<T>);
  }
  // Values near `base` on either side: varint of the zigzagged distance. An unsigned value
  // predicted as 0 is stored as above().
  template <typename T>
  void around(const T& value, std::type_identity_t<T> base, uint32_t unit = 1) {
    if (std::is_unsigned_v<T> && base == 0) return above(value, base, unit);
    put(zigzag<T>((in_units(value, unit) - in_units(base, unit)) & mask<T>));
  }
  // Values without a useful base, spread over all of T: raw bytes, little-endian.
  template <typename T>
  void raw(const T& value) {
    present(value != 0);
    if (value == 0) return;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(out_ + size_, &value, sizeof(T));
      size_ += sizeof(T);
    } else {
      for (size_t i = 0; i < sizeof(T); ++i) out_[size_++] = static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * i));
    }
  }
  // A value as wide as a time since the epoch: its length in bytes in three more bits, then
  // its bytes (a varint would take a byte more).
  void wide(int64_t value, uint32_t unit) {
    const uint64_t stored = zigzag<int64_t>(in_units(value, unit));
    present(stored != 0);
    if (stored == 0) return;
    const int length = static_cast<int>(std::bit_width(stored) + 7) / 8;
    for (int bit = 0; bit < 3; ++bit) present(((length - 1) >> bit & 1) != 0);
    for (int i = 0; i < length; ++i) out_[size_++] = static_cast<uint8_t>(stored >> (8 * i));
  }
  // One byte, raw, as its difference in bits from `base`.
  void byte(uint8_t value, uint8_t base) { raw(static_cast<uint8_t>(value ^ base)); }
  // A byte of `object`'s representation (bit-fields), likewise.
  void byte_at(const void* object, size_t offset, uint8_t base) { byte(byte_of(object, offset), base); }
  // Bytes whose count the fields before them tell: no bit.
  void bytes(const uint8_t* data, size_t count) {
    std::memcpy(out_ + size_, data, count);
    size_ += count;
  }
  // Fields that are usually all as predicted: one bit, clear when they all are, and then
  // nothing else of theirs. Written as usual, then taken back if none was present.
  void begin_group() {
    present(true);
    group_ = {size_, bits_, bit_, out_[bits_]};
    any_ = false;
  }
  void end_group() {
    if (any_) return;
    size_ = group_.size;
    bits_ = group_.bits;
    bit_ = group_.bit;
    out_[bits_] = static_cast<uint8_t>(group_.byte & ~(1u << (bit_ - 1)));
  }

 private:
  void put(uint64_t stored) {
    present(stored != 0);
    if (stored != 0) size_ += put_varint(out_ + size_, stored);
  }
  void present(bool set) {
    if (bit_ == 8) {
      bits_ = size_++;
      out_[bits_] = 0;
      bit_ = 0;
    }
    if (set) out_[bits_] = static_cast<uint8_t>(out_[bits_] | 1u << bit_);
    any_ = any_ || set;
    ++bit_;
  }

  uint8_t* out_;
  size_t size_ = 0;
  size_t bits_ = 0;   // where the current byte of presence bits is
  unsigned bit_ = 8;  // the next bit in it
  bool any_ = false;  // a bit was set since the group began
  struct {
    size_t size, bits;
    unsigned bit;
    uint8_t byte;
  } group_{};  // where the group's fields began
};

class Reader {
 public:
  static constexpr bool reading = true;
  explicit Reader(const uint8_t* in) : in_(in), start_(in) {}
  size_t size() const { return static_cast<size_t>(in_ - start_); }

  void id(uint64_t& value) { value = get_varint(in_); }
  void flag(bool& value) { value = present(); }
  template <typename T>
  void above(T& value, std::type_identity_t<T> base, uint32_t unit = 1) {
    value = from_units<T>(in_units(base, unit) + get(), unit);
  }
  template <typename T>
  void around(T& value, std::type_identity_t<T> base, uint32_t unit = 1) {
    if (std::is_unsigned_v<T> && base == 0) return above(value, base, unit);
    value = from_units<T>(in_units(base, unit) + unzigzag<T>(get()), unit);
  }
  template <typename T>
  void raw(T& value) {
    if (!present()) {
      value = 0;
    } else if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&value, in_, sizeof(T));
      in_ += sizeof(T);
    } else {
      uint64_t bits = 0;
      for (size_t i = 0; i < sizeof(T); ++i) bits |= uint64_t{*in_++} << (8 * i);
      value = static_cast<T>(bits);
    }
  }
  void wide(int64_t& value, uint32_t unit) {
    uint64_t stored = 0;
    if (present()) {
      int length = 1;
      for (int bit = 0; bit < 3; ++bit) length += present() ? 1 << bit : 0;
      for (int i = 0; i < length; ++i) stored |= uint64_t{*in_++} << (8 * i);
    }
    value = from_units<int64_t>(unzigzag<int64_t>(stored), unit);
  }
  void byte(uint8_t& value, uint8_t base) {
    uint8_t difference;
    raw(difference);
    value = static_cast<uint8_t>(difference ^ base);
  }
  void byte_at(void* object, size_t offset, uint8_t base) {
    uint8_t value;
    byte(value, base);
    std::memcpy(static_cast<uint8_t*>(object) + offset, &value, 1);
  }
  void bytes(uint8_t* data, size_t count) {
    std::memcpy(data, in_, count);
    in_ += count;
  }
  void begin_group() { skipping_ = !present(); }
  void end_group() { skipping_ = false; }

 private:
  template <typename T>
  static T from_units(uint64_t count, uint32_t unit) {
    return static_cast<T>((count * unit) & mask<T>);
  }
  uint64_t get() { return present() ? get_varint(in_) : 0; }
  bool present() {
    if (skipping_) return false;
    if (bit_ == 8) {
      bits_ = *in_++;
      bit_ = 0;
    }
    return (bits_ >> bit_++ & 1) != 0;
  }

  const uint8_t* in_;
  const uint8_t* start_;
  uint8_t bits_ = 0;
  unsigned bit_ = 8;
  bool skipping_ = false;  // in a group whose fields are all as predicted
};

// The Stamp and Span ticks are all whole microseconds (as when a microsecond capture is still in
// its first 4.3 s, counting in nanoseconds).
bool ticks_in_microseconds(const Connection& connection) {
  uint32_t rest = connection.handshake_rtt.ticks % microsecond;
  for (const Endpoint* side : {&connection.originator, &connection.responder}) {
    rest |= side->last_ts.ticks % microsecond | side->last_data_ts.ticks % microsecond |
            side->fin_ts.ticks % microsecond | side->gap_before_last.ticks % microsecond;
  }
  return rest == 0;
}

// Fields that stay zero in most connections: a long life, retransmitted handshakes, RSTs.
bool any_unusual(const Connection& connection) {
  return connection.time_shift != 0 || connection.last_ts_rest != 0 || connection.synack_retransmissions != 0 ||
         connection.syn_retransmissions != 0 || connection.newest_pending != 0 || connection.pending_resets != 0 ||
         connection.rare != 0 || connection.resets != 0 || connection.originator.resets != 0 ||
         connection.responder.resets != 0;
}

constexpr Endpoint silent_endpoint{};

// A side that has sent nothing: every field as it starts (a SYN flood's victim, a scan's target).
bool never_spoke(const Endpoint& side) { return std::memcmp(&side, &silent_endpoint, sizeof(Endpoint)) == 0; }

// The bools of a connection whose handshake was seen whole, as the byte that holds them.
const uint8_t handshake_state = [] {
  Connection connection;
  connection.handshake_seen = connection.synack_seen = connection.established = true;
  connection.originator_is_low = false;
  return byte_of(&connection, state_offset);
}();

// The bit-field bytes of an Endpoint: window scales, then counters, then bools.
constexpr size_t scales = endpoint_bits_offset, counters = scales + 1, bools = scales + 2;

// Those of a side that spoke a while (its counters saturated), offered its largest window at its
// negotiated scale (a byte of counters for each scale), and saw a whole connection, with DF and
// steady IP IDs.
struct UsualBits {
  uint8_t scales;
  std::array<uint8_t, 16> counters;
  uint8_t bools;
};
const UsualBits usual_bits = [] {
  Endpoint usual;
  usual.non_rst_packets = 3;
  usual.ack_known = usual.syn_seen = usual.fin_seen = usual.data_seen = usual.df_seen = true;
  usual.ip_id_zero = false;
  UsualBits bits{byte_of(&usual, scales), {}, byte_of(&usual, bools)};
  for (uint8_t scale = 0; scale < 16; ++scale) {
    usual.max_window_shift = scale & 0xf;
    bits.counters[scale] = byte_of(&usual, counters);
  }
  return bits;
}();

// The flags its last segment probably had, from what its last frame also was.
uint8_t likely_flags(const Endpoint& side, bool originator) {
  if (side.non_rst_packets == 0) return 0;
  if (side.syn_seen && side.syn_frame.offset == side.last_frame.offset) {
    return originator ? tcp_flag::syn : tcp_flag::syn | tcp_flag::ack;
  }
  if (side.fin_seen && side.fin_frame.offset == side.last_frame.offset) return tcp_flag::fin | tcp_flag::ack;
  if (side.data_seen && side.last_data_frame.offset == side.last_frame.offset) return tcp_flag::psh | tcp_flag::ack;
  return tcp_flag::ack;
}

// The latest time known before the side's last packet (0, the first packet's, at least): often
// that of the packet just before it.
uint32_t latest_before(const Endpoint& side, const Endpoint& peer) {
  uint32_t latest = 0;
  for (Stamp stamp : {peer.last_ts, peer.last_data_ts, peer.fin_ts, side.last_data_ts, side.fin_ts}) {
    if (stamp < side.last_ts && stamp.ticks > latest) latest = stamp.ticks;
  }
  return latest;
}

// Every field encode() keeps, in the one order both directions follow. `Target` is const when
// writing; when reading, each field is read before any prediction uses it. Most fields are
// stored as their distance from what the fields before them predict, so most are zero or small.
template <typename Codec, typename Target>
void visit(Codec& codec, Target& connection) {
  using Side = std::remove_reference_t<decltype((connection.originator))>;  // const when writing
  Side* const sides[2] = {&connection.originator, &connection.responder};
  Side& originator = *sides[0];
  Side& responder = *sides[1];

  // First what decides the rest: the units of times, and which groups of fields are all default.
  bool ticks_in_us = false, times_in_us = false, unusual = false;
  bool silent[2] = {false, false};
  if constexpr (!Codec::reading) {
    ticks_in_us = ticks_in_microseconds(connection);
    times_in_us = connection.first_ts % microsecond == 0 && connection.last_ts_rest % microsecond == 0;
    unusual = any_unusual(connection);
    silent[0] = never_spoke(originator);
    silent[1] = never_spoke(responder);
  }
  codec.flag(ticks_in_us);
  codec.flag(times_in_us);
  codec.flag(unusual);
  codec.flag(silent[0]);
  codec.flag(silent[1]);
  const uint32_t tick_unit = ticks_in_us ? microsecond : 1, time_unit = times_in_us ? microsecond : 1;
  if constexpr (Codec::reading) {
    for (int i = 0; i < 2; ++i) {
      if (silent[i]) *sides[i] = silent_endpoint;  // and none of its fields follow
    }
  }

  codec.byte_at(&connection, state_offset, handshake_state);
  // The letters: its length, then the bytes of codes in use (add() writes no others).
  std::array<uint8_t, sizeof(History)> history;
  std::memcpy(history.data(), &connection.history, sizeof(History));
  uint8_t& length = history[history_codes];
  codec.above(length, 0);
  const size_t used = std::min<size_t>((length + 1) / 2, history_codes);
  codec.bytes(history.data(), used);
  if constexpr (Codec::reading) {
    std::fill(history.begin() + static_cast<std::ptrdiff_t>(used), history.begin() + history_codes, 0);
    std::memcpy(&connection.history, history.data(), sizeof(History));
  }
  codec.wide(connection.first_ts, time_unit);
  codec.above(connection.handshake_rtt.ticks, 0u, tick_unit);

  if (unusual) {
    codec.above(connection.time_shift, 0);
    codec.above(connection.last_ts_rest, 0u, time_unit);
    codec.above(connection.synack_retransmissions, 0);
    codec.above(connection.syn_retransmissions, 0);
    codec.above(connection.newest_pending, 0u);
    codec.above(connection.pending_resets, 0u);
    codec.above(connection.rare, 0u);
    codec.above(originator.resets, 0);
    codec.above(responder.resets, 0);
    codec.around(connection.resets, uint32_t{originator.resets} + responder.resets);
  } else if constexpr (Codec::reading) {
    connection.time_shift = 0;
    connection.last_ts_rest = 0;
    connection.synack_retransmissions = 0;
    connection.syn_retransmissions = 0;
    connection.newest_pending = 0;
    connection.pending_resets = 0;
    connection.rare = 0;
    originator.resets = 0;
    responder.resets = 0;
    connection.resets = 0;
  }

  // What each side has seen (scales, counters, bools), the responder's much like the originator's.
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    codec.byte_at(&side, scales, i == 0 ? usual_bits.scales : byte_of(&originator, scales));
    codec.byte_at(&side, counters, usual_bits.counters[side.window_scale]);
    codec.byte_at(&side, bools, i == 0 ? usual_bits.bools : byte_of(&originator, bools));
  }

  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    const Endpoint& peer = *sides[1 - i];
    codec.above(side.packets, 0u);
    codec.raw(side.window);
    codec.around(side.max_window_raw, side.window);
    codec.raw(side.ip_id);
    codec.byte(side.ttl_max, 0);
    codec.around(side.fin_acks, peer.fin_seen ? 1 : 0);  // the ACK of the peer's FIN
  }

  // Frames and times from its last packet's, the responder's last from the originator's.
  if (!silent[0]) codec.above(originator.last_frame.offset, 0u);
  if (!silent[1]) codec.around(responder.last_frame.offset, originator.last_frame.offset);
  if (!silent[0]) codec.above(originator.last_ts.ticks, 0u, tick_unit);
  if (!silent[1]) codec.around(responder.last_ts.ticks, originator.last_ts.ticks, tick_unit);
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    // The SYN opens the connection, its first frame (offset 1), and the SYN/ACK follows it.
    codec.around(side.syn_frame.offset, side.syn_seen ? i + 1u : 0u);
    codec.around(side.fin_frame.offset, side.fin_seen ? side.last_frame.offset : 0);
    codec.around(side.last_data_frame.offset, side.data_seen ? side.last_frame.offset : 0);
    // The originator's last data is often its request, right after the handshake.
    const uint32_t data_base = !side.data_seen ? 0 : i == 0 ? connection.handshake_rtt.ticks : side.last_ts.ticks;
    codec.around(side.last_data_ts.ticks, data_base, tick_unit);
    codec.around(side.fin_ts.ticks, side.fin_seen ? side.last_ts.ticks : 0, tick_unit);
  }
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    const Endpoint& peer = *sides[1 - i];
    codec.around(side.gap_before_last.ticks, side.last_ts.ticks - latest_before(side, peer), tick_unit);
  }

  // Sequence space: next_seq from the ISN once the SYN was seen.
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    codec.raw(side.isn);
    if (side.syn_seen) {
      codec.above(side.next_seq, side.isn);
    } else {
      codec.raw(side.next_seq);
    }
  }
  // Its last segment's payload, and the highest ack when what it acked was not seen.
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    uint8_t flags = side.last_flags();
    uint32_t payload = side.last_payload();
    codec.above(payload, 0u);
    if constexpr (Codec::reading) side.set_last(payload, flags);
    if (side.ack_known && !sides[1 - i]->seq_known()) codec.raw(side.max_ack);
  }
  // Then what is usually as predicted.
  codec.begin_group();
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    uint8_t flags = side.last_flags();
    codec.byte(flags, likely_flags(side, i == 0));
    if constexpr (Codec::reading) side.set_last(side.last_payload(), flags);
  }
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    const Endpoint& peer = *sides[1 - i];
    // The highest ack is usually all the peer sent.
    if (!side.ack_known) {
      codec.above(side.max_ack, 0u);
    } else if (peer.seq_known()) {
      codec.around(side.max_ack, peer.next_seq);
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (silent[i]) continue;
    Side& side = *sides[i];
    const uint8_t flags = side.last_flags();
    const bool syn = (flags & tcp_flag::syn) != 0, fin = (flags & tcp_flag::fin) != 0;
    codec.around(side.last_seq, side.next_seq - side.last_payload() - syn - fin);  // it ended at next_seq
    codec.around(side.last_ack, (flags & tcp_flag::ack) != 0 ? side.max_ack : 0);
    codec.around(side.fin_seq, side.fin_seen ? side.next_seq - 1 : 0);  // a FIN takes the last seq it sends
    // Payload bytes: with the SYN seen, next_seq - isn less the SYN and the FIN, unless retransmitted.
    uint64_t bytes = side.bytes();
    codec.around(bytes, side.syn_seen ? uint32_t{side.next_seq - side.isn - 1 - side.fin_seen} : 0);
    if constexpr (Codec::reading) {
      side.bytes_low = static_cast<uint32_t>(bytes);
      side.bytes_high = static_cast<uint16_t>(bytes >> 32);
    }
    codec.byte(side.ttl_min, side.non_rst_packets == 0 ? 255 : side.ttl_max);  // usually the same
  }
  codec.end_group();
}

// The longest encoding: every field present at its longest. Varints of 32 bits take 5 bytes, of
// 16 bits 3 and of 8 bits 2; bytes() has 48 bits, and its distance 49 bits, 7 bytes.
constexpr size_t longest_connection = 10 /* first_frame */ + 1 + 2 + history_codes /* state, history */ +
                                      8 + 5 /* first_ts, handshake_rtt */ + 2 + 5 + 3 + 3 + 5 + 5 + 5 + 3 + 3 +
                                      5 /* the rare fields, time_shift to resets */;
constexpr size_t longest_side = endpoint_bits + 5 + 2 + 3 + 2 + 1 + 2 /* packets to fin_acks */ +
                                8 * 5 /* frames and times */ + 4 + 5 + 4 + 5 /* isn, next_seq, payload, max_ack */ +
                                1 + 5 + 5 + 5 + 7 + 1 /* flags to ttl_min */;
constexpr size_t presence_bytes = (23 + 2 * 27 + 7) / 8;  // 23 bits for the connection, 27 for each side
static_assert(max_size == longest_connection + 2 * longest_side + presence_bytes);

}  // namespace

[[gnu::flatten]] size_t encode(const Connection& connection, uint8_t* out) {
  Writer writer(out);
  writer.id(connection.first_frame);  // first, for decode_id
  visit(writer, connection);
  return writer.size();
}

[[gnu::flatten]] void decode(const uint8_t* in, [[maybe_unused]] size_t size, Connection& connection) {
  Reader reader(in);
  reader.id(connection.first_frame);
  visit(reader, connection);
  assert(reader.size() == size);
}

uint64_t decode_id(const uint8_t* in) { return get_varint(in); }

}  // namespace rstscope::compact
