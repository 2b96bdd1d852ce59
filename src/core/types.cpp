#include "core/types.hpp"

#include <arpa/inet.h>

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

std::string Address::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), text, sizeof text);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
  } else {
    return "?";
  }
  return text;
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
