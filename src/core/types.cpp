#include "core/types.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace rstscope {

Address Address::v4(uint32_t host_order) {
  Address a;
  a.family = 4;
  a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[3] = static_cast<uint8_t>(host_order);
  return a;
}

static_assert(Address::text_max == INET6_ADDRSTRLEN);

char* Address::write(char* out) const {
  if (family == 4) {
    // Dotted decimal by hand: reports print two addresses per finding.
    char* at = out;
    for (size_t octet = 0; octet < 4; ++octet) {
      if (octet > 0) *at++ = '.';
      const unsigned value = bytes[octet];
      if (value >= 100) *at++ = static_cast<char>('0' + value / 100);
      if (value >= 10) *at++ = static_cast<char>('0' + value / 10 % 10);
      *at++ = static_cast<char>('0' + value % 10);
    }
    return at;
  }
  if (family != 6) {
    *out = '?';
    return out + 1;
  }
  // RFC 5952 text, as inet_ntop writes it: the longest run of two or more zero groups (the
  // first of equal runs) becomes "::", hex digits in lower case without leading zeros.
  uint16_t groups[8];
  for (size_t group = 0; group < 8; ++group) groups[group] = static_cast<uint16_t>(bytes[2 * group] << 8 | bytes[2 * group + 1]);
  int best_base = -1, best_length = 0, run_base = -1, run_length = 0;
  for (int group = 0; group <= 8; ++group) {
    if (group < 8 && groups[group] == 0) {
      if (run_base < 0) run_base = group;
      ++run_length;
      continue;
    }
    if (run_base >= 0 && run_length > best_length) {
      best_base = run_base;
      best_length = run_length;
    }
    run_base = -1;
    run_length = 0;
  }
  if (best_length < 2) best_base = -1;
  if (best_base == 0 && (best_length == 6 || (best_length == 5 && groups[5] == 0xffff))) {
    // An IPv4 address inside (::a.b.c.d, ::ffff:a.b.c.d): inet_ntop's own dotted form.
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
    const size_t length = std::strlen(text);
    std::memcpy(out, text, length);
    return out + length;
  }
  static constexpr char hex[] = "0123456789abcdef";
  char* at = out;
  for (int group = 0; group < 8; ++group) {
    if (best_base >= 0 && group >= best_base && group < best_base + best_length) {
      if (group == best_base) *at++ = ':';
      continue;
    }
    if (group != 0) *at++ = ':';
    const unsigned value = groups[group];
    bool leading = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned digit = (value >> shift) & 0xf;
      if (leading && digit == 0 && shift != 0) continue;
      leading = false;
      *at++ = hex[digit];
    }
  }
  if (best_base >= 0 && best_base + best_length == 8) *at++ = ':';
  return at;
}

std::string Address::to_string() const {
  char text[text_max];
  return std::string(text, write(text));
}

std::string flags_to_string(uint8_t flags) {
  static constexpr const char* names[8] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  // tshark's order: SYN, FIN, RST, PSH, ACK, URG, ECE, CWR would differ; we use bit order.
  std::string out;
  for (int bit = 0; bit < 8; ++bit) {
    if (flags & (1u << bit)) {
      if (!out.empty()) out += ',';
      out += names[bit];
    }
  }
  return out.empty() ? "none" : out;
}

}  // namespace rstscope
