#include "diagnose/patterns.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace rstscope {
namespace {

uint64_t fnv(const uint8_t* data, size_t length, uint64_t value = 1469598103934665603ull) {
  for (size_t i = 0; i < length; ++i) {
    value ^= data[i];
    value *= 1099511628211ull;
  }
  return value;
}

uint64_t target_hash(const Address& address, uint16_t port) {
  const uint64_t value = fnv(address.bytes.data(), address.bytes.size());
  return value ^ (static_cast<uint64_t>(port) * 0x9e3779b97f4a7c15ull);
}

// A SYN/ACK toward an address that never sent the SYN: backscatter of spoofed SYNs.
bool unsolicited_synack(const Connection& connection) {
  return !connection.handshake_seen && connection.synack_seen && connection.originator.packets == 0;
}

// A handshake that never completed: one more half-open connection on the service.
bool half_open_handshake(const Connection& connection) {
  return connection.handshake_seen && !connection.established && connection.resets == 0 &&
         !connection.originator.data_seen;
}

// The /24 (IPv4) or /48 (IPv6) an address belongs to: spoofed floods spread over a prefix.
Address prefix_of(const Address& address) {
  Address prefix = address;
  const size_t keep = address.is_v6() ? 6 : 3;
  std::fill(prefix.bytes.begin() + static_cast<long>(keep), prefix.bytes.end(), uint8_t{0});
  return prefix;
}

bool insert_bounded(std::vector<uint64_t>& set, uint64_t value) {
  if (set.size() >= 4096 || std::find(set.begin(), set.end(), value) != set.end()) return false;
  set.push_back(value);
  return true;
}

std::string parties_text(const Patterns::Window& window) {
  std::string text;
  for (const Address& party : window.parties) {
    if (!text.empty()) text += ", ";
    text += party.to_string();
  }
  const size_t total = window.party_hashes.size();
  if (total >= 4096) {
    text += fmt::format(" and others ({} or more in all)", total);
  } else if (total > window.parties.size()) {
    text += fmt::format(" and others ({} in all)", total);
  }
  return text;
}

PatternFinding make_pattern(const char* type, std::string subject, const Patterns::Window& window) {
  PatternFinding pattern;
  pattern.type = type;
  pattern.subject = std::move(subject);
  pattern.parties = parties_text(window);
  pattern.count = window.count;
  pattern.first_ns = window.first_ns;
  pattern.last_ns = window.last_ns;
  pattern.rate_per_second = window.rate();
  pattern.example_frames = window.frames;
  return pattern;
}

}  // namespace

double Patterns::Window::rate() const {
  const double span = static_cast<double>(last_ns - first_ns) / 1e9;
  return span > 0.001 ? static_cast<double>(count) / span : static_cast<double>(count);
}

Patterns::Window& Patterns::Tally::at(int64_t ts_ns, int64_t window_ns) {
  if (current.count > 0 && ts_ns - current.first_ns > window_ns) {
    if (current.count > best.count) best = std::move(current);
    current = Window{};
  }
  return current;
}

bool Patterns::Tally::add(int64_t ts_ns, uint64_t frame, const Address* party, int64_t window_ns,
                          uint64_t distinct_target) {
  Window& window = at(ts_ns, window_ns);
  if (distinct_target != 0 && !insert_bounded(window.distinct, distinct_target)) return false;
  if (window.count++ == 0) window.first_ns = ts_ns;
  window.first_ns = std::min(window.first_ns, ts_ns);
  window.last_ns = std::max(window.last_ns, ts_ns);
  if (window.frames.size() < 5) window.frames.push_back(frame);
  if (party != nullptr && insert_bounded(window.party_hashes, target_hash(*party, 0)) && window.parties.size() < 5) {
    window.parties.push_back(*party);
  }
  return true;
}

size_t Patterns::AddressHash::operator()(const Address& address) const {
  return static_cast<size_t>(fnv(address.bytes.data(), address.bytes.size()));
}

size_t Patterns::ServiceHash::operator()(const ServiceKey& key) const {
  return static_cast<size_t>(target_hash(key.address, key.port));
}

template <typename Map, typename Key>
Patterns::Tally* Patterns::tally(Map& map, const Key& key) {
  // Bounded: under a flood of distinct subjects the tables stop growing, they never crash.
  if (map.size() >= max_keys && map.find(key) == map.end()) return nullptr;
  return &map[key];
}

void Patterns::reset(const Segment& rst, const ResetContext& context, const Finding& finding) {
  const int64_t window = thresholds_.window_ns;
  if (Tally* toward = tally(resets_toward_host_, rst.dst)) {
    toward->add(rst.ts_ns, rst.frame, &rst.src, window);
    if (context.connection_new) ++toward->current.other;
  }
  if (finding.cause == Cause::refused || finding.cause == Cause::refused_wrong_address) {
    if (Tally* scan = tally(refused_by_source_, rst.dst)) {
      scan->add(rst.ts_ns, rst.frame, &rst.src, window, target_hash(rst.src, rst.sport));
    }
  }
  if (context.connection_new) {
    if (Tally* lone = tally(unsolicited_toward_, rst.dst)) lone->add(rst.ts_ns, rst.frame, &rst.src, window);
    if (Tally* lone = tally(unsolicited_prefix_, prefix_of(rst.dst))) lone->add(rst.ts_ns, rst.frame, &rst.src, window);
  }
  if (context.seq_check == SeqCheck::in_window || context.seq_check == SeqCheck::out_of_window) {
    if (Tally* blind = tally(blind_by_connection_, context.connection.id())) {
      blind->add(rst.ts_ns, rst.frame, &rst.src, window, rst.seq | (uint64_t{1} << 32));
      blind_service_.try_emplace(context.connection.id(), ServiceKey{rst.dst, rst.dport});
    }
  }
}

bool Patterns::counts(const Connection& connection) {
  return unsolicited_synack(connection) || half_open_handshake(connection);
}

void Patterns::connection_ended(const Connection& connection) {
  const int64_t window = thresholds_.window_ns;
  const Address originator = connection.originator_address();
  const Address responder = connection.responder_address();
  if (unsolicited_synack(connection)) {
    if (Tally* lone = tally(unsolicited_toward_, originator)) {
      lone->add(connection.first_ts, connection.first_frame, &responder, window);
    }
    if (Tally* lone = tally(unsolicited_prefix_, prefix_of(originator))) {
      lone->add(connection.first_ts, connection.first_frame, &responder, window);
    }
  }
  if (half_open_handshake(connection)) {
    if (Tally* pile = tally(half_open_service_, ServiceKey{responder, connection.responder_port()})) {
      pile->add(connection.first_ts, connection.first_frame, &originator, window);
      pile->current.other += connection.synack_retransmissions;
    }
  }
}

std::vector<PatternFinding> Patterns::finish() {
  std::vector<PatternFinding> found;
  for (const auto& [source, tally] : refused_by_source_) {
    const Window& window = tally.strongest();
    if (window.count < thresholds_.port_scan_min) continue;
    PatternFinding pattern = make_pattern("port_scan", source.to_string(), window);
    pattern.confidence = window.count >= 3 * thresholds_.port_scan_min ? Confidence::high : Confidence::medium;
    pattern.explanation = fmt::format("{} was refused on {} different ports or hosts: a port scan", pattern.subject,
                                      window.count);
    found.push_back(std::move(pattern));
  }
  for (const auto& [host, tally] : resets_toward_host_) {
    const Window& window = tally.strongest();
    if (window.count < thresholds_.rst_flood_min || window.rate() < thresholds_.rst_flood_rate) continue;
    if (window.other * 2 < window.count) continue;  // most must match no connection
    PatternFinding pattern = make_pattern("rst_flood", host.to_string(), window);
    pattern.explanation = fmt::format("{} RSTs toward {} ({:.0f}/s), {} of them matching no connection",
                                      window.count, pattern.subject, pattern.rate_per_second, window.other);
    found.push_back(std::move(pattern));
  }
  // Backscatter per address; per prefix only where no single address of it was reported.
  std::vector<Address> reported_prefixes;
  for (const auto& [host, tally] : unsolicited_toward_) {
    const Window& window = tally.strongest();
    if (window.count < thresholds_.backscatter_min) continue;
    reported_prefixes.push_back(prefix_of(host));
    PatternFinding pattern = make_pattern("backscatter", host.to_string(), window);
    pattern.confidence = Confidence::high;
    pattern.explanation = fmt::format(
        "{} received {} SYN/ACKs or RSTs for connections it never opened: someone spoofs its address",
        pattern.subject, window.count);
    found.push_back(std::move(pattern));
  }
  for (const auto& [prefix, tally] : unsolicited_prefix_) {
    const Window& window = tally.strongest();
    if (window.count < thresholds_.backscatter_min) continue;
    if (std::find(reported_prefixes.begin(), reported_prefixes.end(), prefix) != reported_prefixes.end()) continue;
    const std::string subject = fmt::format("{}/{}", prefix.to_string(), prefix.is_v6() ? 48 : 24);
    PatternFinding pattern = make_pattern("backscatter", subject, window);
    pattern.explanation = fmt::format(
        "addresses in {} received {} SYN/ACKs or RSTs for connections they never opened: someone spoofs them",
        subject, window.count);
    found.push_back(std::move(pattern));
  }
  for (const auto& [service, tally] : half_open_service_) {
    const Window& window = tally.strongest();
    if (window.count < thresholds_.syn_flood_min) continue;
    PatternFinding pattern =
        make_pattern("syn_flood", fmt::format("{}:{}", service.address.to_string(), service.port), window);
    pattern.explanation = fmt::format("{} handshakes to {} never completed ({} SYN/ACK retransmissions)",
                                      window.count, pattern.subject, window.other);
    found.push_back(std::move(pattern));
  }
  for (const auto& [connection, tally] : blind_by_connection_) {
    const Window& window = tally.strongest();
    if (window.count < thresholds_.blind_reset_min) continue;
    const ServiceKey& service = blind_service_[connection];
    PatternFinding pattern =
        make_pattern("blind_reset_attack", fmt::format("{}:{}", service.address.to_string(), service.port), window);
    pattern.confidence = Confidence::high;
    pattern.explanation = fmt::format("{} RSTs with different seq values walked through one connection's window",
                                      window.count);
    found.push_back(std::move(pattern));
  }
  std::sort(found.begin(), found.end(), [](const PatternFinding& a, const PatternFinding& b) {
    if (a.first_ns != b.first_ns) return a.first_ns < b.first_ns;
    return a.type != b.type ? a.type < b.type : a.subject < b.subject;
  });
  return found;
}

}  // namespace rstscope
