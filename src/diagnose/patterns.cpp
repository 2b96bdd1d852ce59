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
  uint64_t value = fnv(address.bytes.data(), address.bytes.size());
  return value ^ (static_cast<uint64_t>(port) * 0x9e3779b97f4a7c15ull);
}

double rate(const auto& tally) {
  const double span = static_cast<double>(tally.last_ns - tally.first_ns) / 1e9;
  return span > 0.001 ? static_cast<double>(tally.count) / span : static_cast<double>(tally.count);
}

std::string parties_text(const std::vector<Address>& parties, uint64_t total) {
  std::string text;
  for (const Address& party : parties) {
    if (!text.empty()) text += ", ";
    text += party.to_string();
  }
  if (total > parties.size()) text += fmt::format(" and others ({} in all)", total);
  return text;
}

}  // namespace

size_t Patterns::AddressHash::operator()(const Address& address) const {
  return static_cast<size_t>(fnv(address.bytes.data(), address.bytes.size()));
}

size_t Patterns::ServiceHash::operator()(const ServiceKey& key) const {
  return static_cast<size_t>(target_hash(key.address, key.port));
}

void Patterns::Tally::add(int64_t ts_ns, uint64_t frame, const Address* party) {
  if (count++ == 0) first_ns = ts_ns;
  first_ns = std::min(first_ns, ts_ns);
  last_ns = std::max(last_ns, ts_ns);
  if (frames.size() < 5) frames.push_back(frame);
  if (party != nullptr && parties.size() < 5 &&
      std::find(parties.begin(), parties.end(), *party) == parties.end()) {
    parties.push_back(*party);
  }
}

bool Patterns::Tally::add_distinct(uint64_t target) {
  if (distinct.size() >= 4096) return false;
  if (std::find(distinct.begin(), distinct.end(), target) != distinct.end()) return false;
  distinct.push_back(target);
  return true;
}

void Patterns::reset(const ResetContext& context, const Finding& finding) {
  const Segment& rst = context.rst;
  if (resets_toward_host_.size() < max_keys || resets_toward_host_.count(rst.dst)) {
    Tally& toward = resets_toward_host_[rst.dst];
    toward.add(rst.ts_ns, rst.frame, &rst.src);
    if (context.connection_new) ++toward.other;
  }
  if ((finding.cause == Cause::refused || finding.cause == Cause::refused_wrong_address) &&
      (refused_by_source_.size() < max_keys || refused_by_source_.count(rst.dst))) {
    Tally& scan = refused_by_source_[rst.dst];
    if (scan.add_distinct(target_hash(rst.src, rst.sport))) scan.add(rst.ts_ns, rst.frame, &rst.src);
  }
  if (context.connection_new && (unsolicited_toward_.size() < max_keys || unsolicited_toward_.count(rst.dst))) {
    unsolicited_toward_[rst.dst].add(rst.ts_ns, rst.frame, &rst.src);
  }
  if (context.seq_check == SeqCheck::in_window || context.seq_check == SeqCheck::out_of_window) {
    Tally& blind = blind_by_connection_[context.connection.id];
    if (blind.add_distinct(rst.seq)) blind.add(rst.ts_ns, rst.frame, &rst.src);
    blind_service_.try_emplace(context.connection.id, ServiceKey{rst.dst, rst.dport});
  }
}

void Patterns::connection_ended(const Connection& connection) {
  const Endpoint& originator = connection.originator;
  const Endpoint& responder = connection.responder;
  // A SYN/ACK toward an address that never sent the SYN: backscatter of spoofed SYNs.
  if (!connection.handshake_seen && connection.synack_seen && originator.packets == 0 &&
      (unsolicited_toward_.size() < max_keys || unsolicited_toward_.count(originator.address))) {
    unsolicited_toward_[originator.address].add(connection.first_ts, connection.first_frame, &responder.address);
  }
  // A handshake that never completed: one more half-open connection on the service.
  if (connection.handshake_seen && !connection.established && connection.resets == 0 &&
      !originator.data_seen) {
    const ServiceKey key{responder.address, responder.port};
    if (half_open_service_.size() < max_keys || half_open_service_.count(key)) {
      Tally& tally = half_open_service_[key];
      tally.add(connection.first_ts, connection.first_frame, &originator.address);
      tally.other += connection.synack_retransmissions;
    }
  }
}

std::vector<PatternFinding> Patterns::finish() {
  std::vector<PatternFinding> found;
  for (const auto& [source, tally] : refused_by_source_) {
    if (tally.count < thresholds_.port_scan_min) continue;
    PatternFinding pattern;
    pattern.type = "port_scan";
    pattern.subject = source.to_string();
    pattern.parties = parties_text(tally.parties, tally.count);
    pattern.count = tally.count;
    pattern.first_ns = tally.first_ns;
    pattern.last_ns = tally.last_ns;
    pattern.rate_per_second = rate(tally);
    pattern.example_frames = tally.frames;
    pattern.confidence = tally.count >= 3 * thresholds_.port_scan_min ? Confidence::high : Confidence::medium;
    pattern.explanation = fmt::format("{} was refused on {} different ports or hosts: a port scan", pattern.subject,
                                      tally.count);
    found.push_back(std::move(pattern));
  }
  for (const auto& [host, tally] : resets_toward_host_) {
    if (tally.count < thresholds_.rst_flood_min || rate(tally) < thresholds_.rst_flood_rate) continue;
    if (tally.other * 2 < tally.count) continue;  // most must match no connection
    PatternFinding pattern;
    pattern.type = "rst_flood";
    pattern.subject = host.to_string();
    pattern.parties = parties_text(tally.parties, tally.count);
    pattern.count = tally.count;
    pattern.first_ns = tally.first_ns;
    pattern.last_ns = tally.last_ns;
    pattern.rate_per_second = rate(tally);
    pattern.example_frames = tally.frames;
    pattern.explanation = fmt::format("{} RSTs toward {} ({:.0f}/s), {} of them matching no connection",
                                      tally.count, pattern.subject, pattern.rate_per_second, tally.other);
    found.push_back(std::move(pattern));
  }
  for (const auto& [host, tally] : unsolicited_toward_) {
    if (tally.count < thresholds_.backscatter_min) continue;
    PatternFinding pattern;
    pattern.type = "backscatter";
    pattern.subject = host.to_string();
    pattern.parties = parties_text(tally.parties, tally.count);
    pattern.count = tally.count;
    pattern.first_ns = tally.first_ns;
    pattern.last_ns = tally.last_ns;
    pattern.rate_per_second = rate(tally);
    pattern.example_frames = tally.frames;
    pattern.confidence = Confidence::high;
    pattern.explanation = fmt::format(
        "{} received {} SYN/ACKs or RSTs for connections it never opened: someone spoofs its address",
        pattern.subject, tally.count);
    found.push_back(std::move(pattern));
  }
  for (const auto& [service, tally] : half_open_service_) {
    if (tally.count < thresholds_.syn_flood_min) continue;
    PatternFinding pattern;
    pattern.type = "syn_flood";
    pattern.subject = fmt::format("{}:{}", service.address.to_string(), service.port);
    pattern.parties = parties_text(tally.parties, tally.count);
    pattern.count = tally.count;
    pattern.first_ns = tally.first_ns;
    pattern.last_ns = tally.last_ns;
    pattern.rate_per_second = rate(tally);
    pattern.example_frames = tally.frames;
    pattern.explanation = fmt::format("{} handshakes to {} never completed ({} SYN/ACK retransmissions)",
                                      tally.count, pattern.subject, tally.other);
    found.push_back(std::move(pattern));
  }
  for (const auto& [connection, tally] : blind_by_connection_) {
    if (tally.count < thresholds_.blind_reset_min) continue;
    const ServiceKey& service = blind_service_[connection];
    PatternFinding pattern;
    pattern.type = "blind_reset_attack";
    pattern.subject = fmt::format("{}:{}", service.address.to_string(), service.port);
    pattern.parties = parties_text(tally.parties, tally.count);
    pattern.count = tally.count;
    pattern.first_ns = tally.first_ns;
    pattern.last_ns = tally.last_ns;
    pattern.rate_per_second = rate(tally);
    pattern.example_frames = tally.frames;
    pattern.confidence = Confidence::high;
    pattern.explanation = fmt::format("{} RSTs with {} different seq values walked through one connection's window",
                                      tally.count, tally.distinct.size());
    found.push_back(std::move(pattern));
  }
  std::sort(found.begin(), found.end(), [](const PatternFinding& a, const PatternFinding& b) {
    return a.first_ns != b.first_ns ? a.first_ns < b.first_ns : a.type < b.type;
  });
  return found;
}

}  // namespace rstscope
