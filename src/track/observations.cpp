#include "track/observations.hpp"

#include <algorithm>
#include <cstring>

namespace rstscope {
namespace {

// The /24 (IPv4) or /64 (IPv6) of an address, with a port: where neighbours of a service sit.
uint64_t prefix_key(const Address& address, uint16_t port) {
  uint64_t value = 1469598103934665603ull ^ address.family;
  const size_t length = address.is_v6() ? 8 : 3;  // a /64 or a /24
  for (size_t i = 0; i < length; ++i) {
    value ^= address.bytes[i];
    value *= 1099511628211ull;
  }
  return value ^ (static_cast<uint64_t>(port) << 48);
}

}  // namespace

size_t Observations::AddressHash::operator()(const Address& address) const {
  uint64_t words[2];
  std::memcpy(words, address.bytes.data(), sizeof words);
  uint64_t value = (words[0] * 0x9e3779b97f4a7c15ull) ^ (words[1] * 0xc2b2ae3d27d4eb4full);
  value ^= value >> 32;
  value *= 0xd6e8feb86659fd93ull;
  return static_cast<size_t>(value ^ (value >> 29));
}

void Observations::host_packet(const Address& address, uint8_t ttl) {
  if (host_ttl_.size() >= max_entries && host_ttl_.find(address) == host_ttl_.end()) return;
  auto [entry, inserted] = host_ttl_.try_emplace(address, ttl, ttl);
  if (!inserted) {
    entry->second.first = std::min(entry->second.first, ttl);
    entry->second.second = std::max(entry->second.second, ttl);
  }
}

std::pair<uint8_t, uint8_t> Observations::host_ttl(const Address& address) const {
  const auto entry = host_ttl_.find(address);
  return entry == host_ttl_.end() ? std::pair<uint8_t, uint8_t>{0, 0} : entry->second;
}

void Observations::service_accepted(const Accepted& accepted) {
  if (accepted_.size() >= max_entries) return;
  auto& list = accepted_[prefix_key(accepted.address, accepted.port)];
  if (list.size() >= 64) return;  // full: nothing more is kept, so no need to look for it
  for (const Accepted& known : list) {
    if (known.port == accepted.port && known.address == accepted.address) return;
  }
  list.push_back(accepted);
}

const Observations::Accepted* Observations::neighbour_accepting(const Address& address, uint16_t port,
                                                                 int64_t until_ns) const {
  const auto entry = accepted_.find(prefix_key(address, port));
  if (entry == accepted_.end()) return nullptr;
  for (const Accepted& known : entry->second) {
    if (known.port == port && !(known.address == address) && known.clock_ns <= until_ns) return &known;
  }
  return nullptr;
}

}  // namespace rstscope
