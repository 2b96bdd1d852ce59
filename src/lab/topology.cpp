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

#include "decode/decode.hpp"

namespace rstscope::lab {
namespace {

std::atomic<unsigned> topology_counter{0};

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
  // The analyzer's own decoder: the lab reads the wire exactly as analyze does.
  Packet packet;
  packet.link_type = 1;  // Ethernet
  packet.data = data;
  packet.caplen = length;
  packet.origlen = length;
  Segment decoded;
  DecodeStats ignored;
  if (decode(packet, decoded, ignored) != DecodeResult::tcp) return std::nullopt;
  WireSegment segment;
  segment.src = decoded.src;
  segment.dst = decoded.dst;
  segment.sport = decoded.sport;
  segment.dport = decoded.dport;
  segment.seq = decoded.seq;
  segment.ack = decoded.ack;
  segment.flags = decoded.flags;
  segment.ttl = decoded.ttl;
  segment.payload_len = decoded.payload_len;
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
  synth::SegmentSpec spec;
  spec.src = segment.src;
  spec.dst = segment.dst;
  spec.sport = segment.sport;
  spec.dport = segment.dport;
  spec.seq = segment.seq;
  spec.ack = segment.ack;
  spec.flags = segment.flags;
  spec.window = 502;
  spec.ip_id = 0x2106;
  spec.df = false;
  spec.ttl = segment.ttl != 0 ? segment.ttl : 64;
  spec.payload = payload;
  spec.payload_len = static_cast<uint32_t>(payload.size());
  return send_raw_v4(ns, spec, error);
}

bool send_raw_v4(const Namespace& ns, const synth::SegmentSpec& spec, std::string& error) {
  const int fd = ns.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    error = fmt::format("raw socket: {}", std::strerror(errno));
    return false;
  }
  std::vector<uint8_t> packet;
  synth::append_ip_packet(packet, spec);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  std::memcpy(&to.sin_addr, spec.dst.bytes.data(), 4);
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
