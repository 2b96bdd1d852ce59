#include "lab/topology.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

namespace rstscope::lab {
namespace {

std::atomic<unsigned> topology_counter{0};

uint16_t read16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t read32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void write16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void write32(uint8_t* p, uint32_t v) {
  write16(p, static_cast<uint16_t>(v >> 16));
  write16(p + 2, static_cast<uint16_t>(v));
}
uint32_t sum_words(const uint8_t* p, size_t length, uint32_t sum) {
  for (size_t i = 0; i + 1 < length; i += 2) sum += read16(p + i);
  if (length % 2 != 0) sum += uint32_t{p[length - 1]} << 8;
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

Address parse_ip(const char* text) {
  uint8_t bytes[16] = {};
  if (::inet_pton(AF_INET, text, bytes) == 1) return Address::v4(bytes);
  if (::inet_pton(AF_INET6, text, bytes) == 1) return Address::v6(bytes);
  return {};
}

bool Topology::create(std::string& error) {
  remove_stale_namespaces(namespace_prefix);
  const std::string base =
      fmt::format("{}{}-{}-", namespace_prefix, ::getpid(), topology_counter++);
  if (!client.create(base + "cli", error) || !router.create(base + "rtr", error) ||
      !server.create(base + "srv", error)) {
    destroy();
    return false;
  }
  std::string output;
  const auto step = [&](const Namespace& ns, std::vector<std::string> argv) {
    if (!error.empty()) return;
    if (ns.exec(argv, &output) != 0) {
      std::string line;
      for (const auto& arg : argv) line += arg + " ";
      error = fmt::format("in {}: '{}' failed: {}", ns.name(), line, output);
    }
  };
  error.clear();
  step(client, {"ip", "link", "add", client_iface, "type", "veth", "peer", "name",
                router_client_iface, "netns", router.name()});
  step(server, {"ip", "link", "add", server_iface, "type", "veth", "peer", "name",
                router_server_iface, "netns", router.name()});
  step(client, {"ip", "addr", "add", std::string(client_v4) + "/24", "dev", client_iface});
  step(client, {"ip", "-6", "addr", "add", std::string(client_v6) + "/64", "dev", client_iface, "nodad"});
  step(router, {"ip", "addr", "add", std::string(router_client_v4) + "/24", "dev", router_client_iface});
  step(router, {"ip", "addr", "add", std::string(router_server_v4) + "/24", "dev", router_server_iface});
  step(router, {"ip", "-6", "addr", "add", std::string(router_client_v6) + "/64", "dev",
                router_client_iface, "nodad"});
  step(router, {"ip", "-6", "addr", "add", std::string(router_server_v6) + "/64", "dev",
                router_server_iface, "nodad"});
  step(server, {"ip", "addr", "add", std::string(server_v4) + "/24", "dev", server_iface});
  step(server, {"ip", "addr", "add", std::string(server_other_v4) + "/24", "dev", server_iface});
  step(server, {"ip", "-6", "addr", "add", std::string(server_v6) + "/64", "dev", server_iface, "nodad"});
  // One MSS per packet on the wire, as a real NIC would send it (no TSO super-frames).
  step(client, {"ip", "link", "set", client_iface, "gso_max_segs", "1", "up"});
  step(server, {"ip", "link", "set", server_iface, "gso_max_segs", "1", "up"});
  step(router, {"ip", "link", "set", router_client_iface, "gso_max_segs", "1", "up"});
  step(router, {"ip", "link", "set", router_server_iface, "gso_max_segs", "1", "up"});
  step(client, {"ip", "route", "add", "default", "via", router_client_v4});
  step(client, {"ip", "-6", "route", "add", "default", "via", router_client_v6});
  step(server, {"ip", "route", "add", "default", "via", router_server_v4});
  step(server, {"ip", "-6", "route", "add", "default", "via", router_server_v6});
  step(router, {"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"});
  step(router, {"sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"});
  if (!error.empty()) {
    destroy();
    return false;
  }
  return true;
}

void Topology::destroy() {
  client.remove();
  router.remove();
  server.remove();
}

std::optional<WireSegment> parse_frame(const uint8_t* data, uint32_t length) {
  if (length < 14) return std::nullopt;
  uint16_t ether_type = read16(data + 12);
  size_t offset = 14;
  if (ether_type == 0x8100 && length >= 18) {
    ether_type = read16(data + 16);
    offset = 18;
  }
  WireSegment segment;
  size_t tcp_offset = 0;
  uint32_t ip_payload = 0;
  if (ether_type == 0x0800) {
    if (length < offset + 20) return std::nullopt;
    const uint8_t* ip = data + offset;
    const size_t header = size_t{ip[0] & 0x0fu} * 4;
    if ((ip[0] >> 4) != 4 || header < 20 || ip[9] != 6 || length < offset + header) return std::nullopt;
    const uint16_t total = read16(ip + 2);
    if (total < header) return std::nullopt;
    segment.ttl = ip[8];
    segment.src = Address::v4(ip + 12);
    segment.dst = Address::v4(ip + 16);
    tcp_offset = offset + header;
    ip_payload = static_cast<uint32_t>(total - header);
  } else if (ether_type == 0x86dd) {
    if (length < offset + 40) return std::nullopt;
    const uint8_t* ip = data + offset;
    if (ip[6] != 6) return std::nullopt;  // extension headers are not used in the lab
    segment.ttl = ip[7];
    segment.src = Address::v6(ip + 8);
    segment.dst = Address::v6(ip + 24);
    tcp_offset = offset + 40;
    ip_payload = read16(ip + 4);
  } else {
    return std::nullopt;
  }
  if (length < tcp_offset + 20) return std::nullopt;
  const uint8_t* tcp = data + tcp_offset;
  const uint32_t tcp_header = uint32_t{static_cast<uint32_t>(tcp[12] >> 4)} * 4;
  if (tcp_header < 20 || ip_payload < tcp_header) return std::nullopt;
  segment.sport = read16(tcp);
  segment.dport = read16(tcp + 2);
  segment.seq = read32(tcp + 4);
  segment.ack = read32(tcp + 8);
  segment.flags = tcp[13];
  segment.payload_len = ip_payload - tcp_header;
  return segment;
}

bool WireCapture::start(const Namespace& ns, const std::string& iface, const std::string& filter,
                        const std::string& pcap_path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  ns.run_inside([&] {
    handle_ = pcap_create(iface.c_str(), errbuf);
    if (handle_ == nullptr) return;
    pcap_set_snaplen(handle_, 262144);
    pcap_set_immediate_mode(handle_, 1);
    pcap_set_timeout(handle_, 20);
    pcap_set_buffer_size(handle_, 8 << 20);
    if (pcap_activate(handle_) < 0) {
      std::snprintf(errbuf, sizeof errbuf, "%s", pcap_geterr(handle_));
      pcap_close(handle_);
      handle_ = nullptr;
    }
  });
  if (handle_ == nullptr) {
    error = fmt::format("cannot capture on {} in {}: {}", iface, ns.name(), errbuf);
    return false;
  }
  bpf_program program{};
  if (!filter.empty()) {
    if (pcap_compile(handle_, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 ||
        pcap_setfilter(handle_, &program) != 0) {
      error = fmt::format("bad capture filter '{}': {}", filter, pcap_geterr(handle_));
      pcap_freecode(&program);
      pcap_close(handle_);
      handle_ = nullptr;
      return false;
    }
    pcap_freecode(&program);
  }
  pcap_setnonblock(handle_, 1, errbuf);
  if (!pcap_path.empty()) {
    dumper_ = pcap_dump_open(handle_, pcap_path.c_str());
    if (dumper_ == nullptr) {
      error = fmt::format("cannot write {}: {}", pcap_path, pcap_geterr(handle_));
      pcap_close(handle_);
      handle_ = nullptr;
      return false;
    }
  }
  stopping_ = false;
  reader_ = std::thread([this] { loop(); });
  return true;
}

void WireCapture::loop() {
  const auto handler = [](u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
    auto* self = reinterpret_cast<WireCapture*>(user);
    if (self->dumper_ != nullptr) pcap_dump(reinterpret_cast<u_char*>(self->dumper_), header, bytes);
    if (auto segment = parse_frame(bytes, header->caplen)) {
      segment->ts_ns = static_cast<int64_t>(header->ts.tv_sec) * 1'000'000'000 +
                       static_cast<int64_t>(header->ts.tv_usec) * 1000;
      const std::lock_guard lock(self->mutex_);
      self->segments_.push_back(*segment);
    }
  };
  const int fd = pcap_get_selectable_fd(handle_);
  for (;;) {
    const bool last_round = stopping_.load();
    pollfd waiter{fd, POLLIN, 0};
    ::poll(&waiter, 1, 10);
    while (pcap_dispatch(handle_, 256, handler, reinterpret_cast<u_char*>(this)) > 0) {
    }
    if (last_round) break;
  }
}

void WireCapture::stop() {
  if (handle_ == nullptr) return;
  stopping_ = true;
  if (reader_.joinable()) reader_.join();
  if (dumper_ != nullptr) {
    pcap_dump_close(dumper_);
    dumper_ = nullptr;
  }
  pcap_close(handle_);
  handle_ = nullptr;
}

std::vector<WireSegment> WireCapture::segments() const {
  const std::lock_guard lock(mutex_);
  return segments_;
}

bool inject_tcp_v4(const Namespace& ns, const WireSegment& segment, const std::string& payload,
                   std::string& error) {
  const int fd = ns.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    error = fmt::format("raw socket: {}", std::strerror(errno));
    return false;
  }
  std::vector<uint8_t> packet(40 + payload.size(), 0);
  uint8_t* ip = packet.data();
  uint8_t* tcp = ip + 20;
  ip[0] = 0x45;
  write16(ip + 2, static_cast<uint16_t>(packet.size()));
  write16(ip + 4, 0x2106);
  ip[8] = segment.ttl != 0 ? segment.ttl : 64;
  ip[9] = IPPROTO_TCP;
  std::memcpy(ip + 12, segment.src.bytes.data(), 4);
  std::memcpy(ip + 16, segment.dst.bytes.data(), 4);
  write16(ip + 10, fold(sum_words(ip, 20, 0)));
  write16(tcp, segment.sport);
  write16(tcp + 2, segment.dport);
  write32(tcp + 4, segment.seq);
  write32(tcp + 8, segment.ack);
  tcp[12] = 5 << 4;
  tcp[13] = segment.flags;
  write16(tcp + 14, 502);
  std::memcpy(tcp + 20, payload.data(), payload.size());
  // Checksum over the pseudo-header (addresses, protocol, length) and the segment.
  uint32_t sum = sum_words(ip + 12, 8, 0);
  sum += IPPROTO_TCP;
  sum += static_cast<uint32_t>(20 + payload.size());
  write16(tcp + 16, fold(sum_words(tcp, 20 + payload.size(), sum)));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  std::memcpy(&to.sin_addr, segment.dst.bytes.data(), 4);
  const ssize_t sent = ::sendto(fd, packet.data(), packet.size(), 0,
                                reinterpret_cast<const sockaddr*>(&to), sizeof to);
  const int saved = errno;
  ::close(fd);
  if (sent != static_cast<ssize_t>(packet.size())) {
    error = fmt::format("raw send: {}", std::strerror(saved));
    return false;
  }
  return true;
}

}  // namespace rstscope::lab
