// rstscope-gen: writes a large, realistic classic pcap capture for benchmarks and accuracy checks.
//
// Many interleaved connections over IPv4 and IPv6 (documentation ranges only), some 802.1Q
// tagged, with real handshakes, data both ways, delayed ACKs, graceful closes, and a few percent
// of every reset cause in DESIGN.md, each with its wire signature. Beside the capture it writes
// FILE.truth.tsv: the frame number and intended cause of every RST. Deterministic from --seed.
//
// Random draws are never two to one expression, so that every compiler gives the same bytes.
// Each connection is planned a few packets at a time into a reused buffer of concrete segments
// (seq, ack, flags, length, delay); a heap of next-send times interleaves all connections in
// capture-time order.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"
#include "synth/frames.hpp"

namespace {

using rstscope::Address;
namespace flag = rstscope::tcp_flag;

// ---------------------------------------------------------------------------------------------
// Deterministic random numbers (xoshiro256**, seeded through splitmix64).
class Random {
 public:
  explicit Random(uint64_t seed) {
    for (auto& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  uint32_t u32() { return static_cast<uint32_t>(next() >> 32); }
  // Uniform in [low, high], inclusive.
  uint64_t range(uint64_t low, uint64_t high) { return low + next() % (high - low + 1); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double probability) { return unit() < probability; }
  // Log-uniform in [low, high]: many small values, a long tail of large ones.
  double log_uniform(double low, double high) {
    return low * std::exp(unit() * std::log(high / low));
  }
  double exponential(double mean) { return -mean * std::log(1.0 - unit()); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

// ---------------------------------------------------------------------------------------------
constexpr uint64_t router_mac = 0x020000fe0001;  // locally administered

// Causes, in DESIGN.md's order. Index 0 means "no RST".
enum Cause : uint8_t {
  none,
  refused,
  refused_wrong_address,
  abort_,
  abort_unread_data,
  data_after_close,
  half_open,
  listen_overflow,
  time_wait_assassination,
  middlebox,
  idle_timeout,
  buffer_overflow,
  keepalive_timeout,
  forged,
  cause_end,
};
constexpr std::string_view cause_names[cause_end] = {
    "",          "refused",     "refused_wrong_address", "abort",
    "abort_unread_data", "data_after_close", "half_open", "listen_overflow",
    "time_wait_assassination", "middlebox", "idle_timeout", "buffer_overflow",
    "keepalive_timeout", "forged"};
// Who really put each cause's RST on the wire.
constexpr std::string_view cause_senders[cause_end] = {
    "", "endpoint", "endpoint", "endpoint", "endpoint", "endpoint", "endpoint", "endpoint",
    "endpoint", "path", "path", "endpoint", "endpoint", "offpath"};

// Share of new connections that play each scenario; the rest close normally. listen_overflow
// starts a group of several connections, so its share of connections is several times this.
constexpr double scenario_weights[cause_end] = {
    0, 0.015, 0.004, 0.015, 0.012, 0.010, 0.010, 0.0015, 0.010, 0.010, 0.008, 0.010, 0.008, 0.008};

// ---------------------------------------------------------------------------------------------
// One packet of a plan, fully decided except its timestamp-dependent fields.
enum Mode : uint8_t {
  syn_options = 1,   // MSS, window scale, SACK-permitted (and timestamps when negotiated)
  no_timestamp = 2,  // stateless replies carry no options
  from_path = 4,     // sent by a device in the path: its own TTL and IP ID, no DF
  from_forger = 8,   // sent by an off-path attacker: random TTL and IP ID
};

struct Op {
  uint32_t seq = 0, ack = 0;
  uint32_t delay_us = 0;  // after the previous packet of the same connection
  uint16_t length = 0;
  uint16_t window = 0;
  uint8_t direction = 0;  // 0 client to server, 1 server to client
  uint8_t flags = 0;
  uint8_t cause = none;
  uint8_t mode = 0;
};

struct Endpoint {
  Address address;
  uint16_t port = 0;
  uint32_t isn = 0;
  uint32_t snd_nxt = 0;  // next seq this side sends
  uint32_t rcv_nxt = 0;  // next seq this side expects
  uint16_t window = 0;   // raw (unscaled) window it advertises once established
  uint16_t mss = 1460;
  uint8_t ttl = 64;
  uint16_t ip_id = 0;
  uint32_t ts_base = 0;
  uint32_t last_tsval = 0;
};

enum class Stage : uint8_t { start, body, ending, done };

struct Slot {
  Endpoint side[2];
  uint16_t vlan = 0;
  bool timestamps = false;
  bool sack = false;
  bool capture_near_server = true;
  bool persistent = true;  // replaced by a new connection when it ends
  bool flood = false;      // a flood's pseudo connection: SYNs, or RSTs when rst_flood
  bool rst_flood = false;
  uint8_t scenario = none;
  Stage stage = Stage::start;
  uint8_t path_ttl = 0;
  uint16_t rounds_left = 0;
  uint32_t response_left = 0;  // bytes of the current response not yet planned
  uint32_t rtt_us = 1000;
  int64_t start_ns = 0;
  uint32_t first_delay_us = 0;  // before its first packet
  std::vector<Op> ops;
  uint32_t next_op = 0;
  // SYN flood.
  uint64_t flood_left = 0;
  uint32_t flood_interval_us = 0;
};

struct Options {
  uint64_t packets = 5'000'000;
  uint64_t connections = 200'000;
  uint64_t syn_flood = 0;
  uint64_t rst_flood = 0;
  double ipv6_share = 0.25;
  double vlan_share = 0.10;
  double rate = 500'000;  // packets per second of capture time
  uint64_t seed = 1;
  bool nanosecond = false;
  std::string out;
};

constexpr int64_t capture_epoch_ns = 1'700'000'000LL * 1'000'000'000LL;
constexpr uint16_t service_ports[] = {443, 443, 443, 443, 443, 80, 80, 22, 25, 3306,
                                      5432, 6379, 8080, 8443, 9092, 993, 5672, 11211};
constexpr uint16_t vlan_ids[] = {10, 20, 30, 100, 200, 301};

class Generator {
 public:
  explicit Generator(const Options& options) : options_(options), random_(options.seed) {
    duration_s_ = static_cast<double>(options_.packets) / options_.rate;
    // Mean think time between a connection's exchanges, chosen so that the live connections
    // together send about `rate` packets per second (about 23 packets per exchange, handshakes and closes included).
    think_mean_us_ = static_cast<double>(options_.connections) / options_.rate * 23.0 * 1e6;
    for (auto& port : next_client_port_) port = static_cast<uint16_t>(random_.range(32768, 60999));
  }

  int run() {
    std::FILE* file = std::fopen(options_.out.c_str(), "wb");
    if (file == nullptr) {
      std::perror(options_.out.c_str());
      return 1;
    }
    const std::string truth_path = options_.out + ".truth.tsv";
    truth_ = std::fopen(truth_path.c_str(), "w");
    if (truth_ == nullptr) {
      std::perror(truth_path.c_str());
      std::fclose(file);
      return 1;
    }
    std::setvbuf(truth_, nullptr, _IOFBF, 1 << 20);
    std::fputs("frame\tcause\tsender\tsource\tdestination\n", truth_);
    rstscope::synth::PcapWriter writer(file, 1, options_.nanosecond, 262144);
    writer_ = &writer;
    frame_.reserve(2048);

    slots_.reserve(options_.connections + 1024);
    // Connections start spread over the first think time, so the capture opens with a ramp.
    for (uint64_t i = 0; i < options_.connections; ++i) {
      const auto index = new_slot(true);
      const auto start = static_cast<int64_t>(random_.unit() * think_mean_us_ * 1000.0);
      begin_connection(index, capture_epoch_ns + start, pick_scenario());
    }
    if (options_.syn_flood > 0) start_flood();
    if (options_.rst_flood > 0) start_rst_flood();

    while (normal_written_ < options_.packets || flood_pending()) {
      if (queue_.empty()) break;
      const Event event = queue_.top();
      queue_.pop();
      Slot& slot = slots_[event.slot];
      if (!slot.flood && normal_written_ >= options_.packets) continue;
      now_ns_ = event.time_ns;
      if (slot.flood) {
        if (slot.rst_flood) {
          step_rst_flood(event.slot);
        } else {
          step_flood(event.slot);
        }
        continue;
      }
      emit(slot, slot.ops[slot.next_op++]);
      ++normal_written_;
      if ((normal_written_ & 0xffff) == 0) steer_rate();
      schedule_next(event.slot);
    }
    writer.flush();
    const bool ok = writer.flush() && std::fflush(file) == 0;
    std::fclose(file);
    std::fclose(truth_);
    if (!ok) {
      std::fprintf(stderr, "rstscope-gen: write error on %s\n", options_.out.c_str());
      return 1;
    }
    report();
    return 0;
  }

 private:
  struct Event {
    int64_t time_ns;
    uint32_t slot;
    friend bool operator>(const Event& a, const Event& b) {
      return a.time_ns != b.time_ns ? a.time_ns > b.time_ns : a.slot > b.slot;
    }
  };

  // Keeps the capture near the asked rate: the think time follows the rate so far.
  void steer_rate() {
    const double elapsed_s = static_cast<double>(now_ns_ - capture_epoch_ns) / 1e9;
    if (elapsed_s <= 0) return;
    const double ratio = static_cast<double>(normal_written_) / elapsed_s / options_.rate;
    think_mean_us_ *= std::clamp(std::pow(ratio, 0.3), 0.9, 1.1);
  }

  // --- slots and scheduling ------------------------------------------------------------------

  uint32_t new_slot(bool persistent) {
    uint32_t index;
    if (!free_slots_.empty()) {
      index = free_slots_.back();
      free_slots_.pop_back();
    } else {
      index = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
      slots_.back().ops.reserve(32);
    }
    slots_[index].persistent = persistent;
    slots_[index].flood = false;
    return index;
  }

  uint8_t pick_scenario() {
    double roll = random_.unit();
    for (uint8_t cause = 1; cause < cause_end; ++cause) {
      if (roll < scenario_weights[cause]) return cause;
      roll -= scenario_weights[cause];
    }
    return none;
  }

  // Plans the next packets when the current plan is used up; schedules the next send, or ends
  // the connection (starting a new one in a persistent slot).
  void schedule_next(uint32_t index) {
    Slot& slot = slots_[index];
    if (slot.next_op >= slot.ops.size()) {
      slot.ops.clear();
      slot.next_op = 0;
      while (slot.ops.empty() && slot.stage != Stage::done) plan(slot);
      if (slot.ops.empty()) {
        if (slot.persistent) {
          const auto gap = static_cast<int64_t>(random_.exponential(think_mean_us_ * 0.2) * 1000);
          begin_connection(index, now_ns_ + gap, pick_scenario());
        } else {
          free_slots_.push_back(index);
        }
        return;
      }
    }
    const Op& op = slot.ops[slot.next_op];
    queue_.push({now_ns_ + static_cast<int64_t>(op.delay_us) * 1000, index});
  }

  // --- addresses -----------------------------------------------------------------------------

  Address client_address(bool v6) {
    if (v6) {
      uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0xc1};
      const uint64_t host = random_.next();
      bytes[6] = static_cast<uint8_t>(random_.range(0, 15));
      for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<uint8_t>(host >> (8 * i));
      return Address::v6(bytes);
    }
    // 192.0.2.0/24 and 203.0.113.0/24 hold the clients.
    const auto host = static_cast<uint32_t>(random_.range(1, 254));
    return Address::v4((random_.chance(0.5) ? 0xc0000200u : 0xcb007100u) | host);
  }

  Address server_address(bool v6, uint32_t host) {
    if (v6) {
      uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x5e};
      bytes[15] = static_cast<uint8_t>(host);
      return Address::v6(bytes);
    }
    return Address::v4(0xc6336400u | host);  // 198.51.100.0/24 holds the servers
  }

  uint16_t client_port(const Address& address) {
    if (address.is_v6()) return static_cast<uint16_t>(random_.range(32768, 60999));
    // Sequential per client address, as a host's ephemeral port allocator hands them out.
    const size_t key = (address.bytes[0] == 192 ? 0 : 256) + address.bytes[3];
    uint16_t& next = next_client_port_[key];
    const uint16_t port = next;
    next = next >= 60999 ? 32768 : static_cast<uint16_t>(next + 1);
    return port;
  }

  // --- connections ---------------------------------------------------------------------------

  void begin_connection(uint32_t index, int64_t start_ns, uint8_t scenario, bool schedule = true) {
    Slot& slot = slots_[index];
    const bool v6 = random_.chance(options_.ipv6_share);
    slot.scenario = scenario;
    slot.stage = Stage::start;
    slot.ops.clear();
    slot.next_op = 0;
    slot.start_ns = start_ns;
    slot.first_delay_us = 0;
    slot.vlan = random_.chance(options_.vlan_share) ? vlan_ids[random_.range(0, 5)] : 0;
    slot.timestamps = random_.chance(0.7);
    slot.sack = random_.chance(0.95);
    slot.rtt_us = static_cast<uint32_t>(random_.log_uniform(500, 150'000));
    slot.capture_near_server = random_.chance(0.6);
    slot.response_left = 0;

    Endpoint& client = slot.side[0];
    Endpoint& server = slot.side[1];
    client.address = client_address(v6);
    client.port = client_port(client.address);
    server.address = server_address(v6, static_cast<uint32_t>(random_.range(1, 254)));
    server.port = service_ports[random_.range(0, std::size(service_ports) - 1)];
    for (int i = 0; i < 2; ++i) {
      Endpoint& e = slot.side[i];
      e.isn = random_.u32();
      e.snd_nxt = e.isn;
      e.rcv_nxt = 0;
      e.mss = v6 ? 1440 : 1460;
      e.window = static_cast<uint16_t>(random_.range(400, 2048));  // scaled by 2^7
      e.ip_id = static_cast<uint16_t>(random_.u32());
      e.ts_base = random_.u32();
      e.last_tsval = 0;
    }
    // The side nearest the capture shows its initial TTL; the far side arrives a few hops down.
    const uint8_t client_initial = random_.chance(0.7) ? 64 : 128;
    const uint8_t client_hops = slot.capture_near_server ? static_cast<uint8_t>(random_.range(3, 20)) : 0;
    const uint8_t server_hops = slot.capture_near_server ? 0 : static_cast<uint8_t>(random_.range(3, 20));
    client.ttl = static_cast<uint8_t>(client_initial - client_hops);
    server.ttl = static_cast<uint8_t>(64 - server_hops);
    // A firewall in the path speaks with its own TTL, well apart from the server's.
    slot.path_ttl = static_cast<uint8_t>(random_.chance(0.5) ? 255 - random_.range(1, 6)
                                                              : 128 - random_.range(1, 6));
    if (slot.path_ttl < 200 && (client.ttl + 6 > slot.path_ttl)) slot.path_ttl = 250;

    switch (scenario) {
      case none:
        slot.rounds_left = static_cast<uint16_t>(std::min(40.0, 1.0 + random_.exponential(1.0)));
        break;
      case abort_:
      case abort_unread_data:
      case data_after_close:
      case time_wait_assassination:
      case buffer_overflow:
      case forged:
        // Short lives, so that most of them reach their reset within the capture.
        slot.rounds_left = static_cast<uint16_t>(random_.range(0, 2));
        break;
      case half_open:
      case idle_timeout:
      case keepalive_timeout:
        slot.rounds_left = static_cast<uint16_t>(random_.range(0, 1));
        break;
      case middlebox:
        slot.rounds_left = static_cast<uint16_t>(random_.range(0, 3));
        slot.capture_near_server = false;  // the RST is seen on the client's side of the device
        slot.side[0].ttl = client_initial;
        slot.side[1].ttl = static_cast<uint8_t>(64 - random_.range(6, 20));
        slot.rtt_us = std::max<uint32_t>(slot.rtt_us, 5000);
        break;
      case refused:
        server.port = static_cast<uint16_t>(random_.range(10000, 19999));
        slot.rounds_left = 0;
        break;
      case refused_wrong_address: {
        // The service listens on one address of the host only: a companion connection is
        // accepted there, then this one is refused on the neighbouring address.
        server.port = static_cast<uint16_t>(random_.range(20000, 29999));
        const uint32_t host = static_cast<uint32_t>(random_.range(1, 126)) * 2;
        server.address = server_address(v6, host + 1);
        slot.rounds_left = 0;
        slot.first_delay_us = static_cast<uint32_t>(random_.range(200'000, 2'000'000));
        const uint32_t companion = new_slot(false);
        begin_connection(companion, start_ns, none, false);
        Slot& other = slots_[companion];
        Slot& self = slots_[index];  // the slot vector may have grown
        other.side[0].address = self.side[0].address;
        other.side[0].port = client_port(self.side[0].address);
        other.side[1].address = server_address(v6, host);
        other.side[1].port = self.side[1].port;
        other.side[1].ttl = self.side[1].ttl;  // one host, two addresses
        other.side[0].ttl = self.side[0].ttl;
        other.side[0].mss = other.side[1].mss = v6 ? 1440 : 1460;
        other.vlan = self.vlan;
        other.rounds_left = 1;
        schedule_first(companion);
        schedule_first(index);
        return;
      }
      case listen_overflow: {
        if (!schedule) {  // a member of a group its leader started
          slot.rounds_left = 0;
          return;
        }
        // Several clients complete the handshake within a few milliseconds of each other and
        // the server, its accept queue full, resets every one.
        slot.rounds_left = 0;
        const uint64_t group = random_.range(3, 8);
        for (uint64_t i = 1; i < group; ++i) {
          const uint32_t member = new_slot(false);
          const auto offset = static_cast<int64_t>(random_.range(0, 50'000)) * 1000;
          begin_connection(member, start_ns + offset, listen_overflow, false);
          Slot& other = slots_[member];
          Slot& self = slots_[index];
          other.rounds_left = 0;
          other.side[1].address = self.side[1].address;
          other.side[1].port = self.side[1].port;
          other.side[1].ttl = self.side[1].ttl;
          other.vlan = self.vlan;
          if (other.side[0].address.is_v6() != other.side[1].address.is_v6()) {
            other.side[0].address = client_address(other.side[1].address.is_v6());
            other.side[0].port = client_port(other.side[0].address);
          }
          other.side[0].mss = other.side[1].mss = other.side[1].address.is_v6() ? 1440 : 1460;
          schedule_first(member);
        }
        break;
      }
      default:
        break;
    }
    if (schedule) schedule_first(index);
  }

  void schedule_first(uint32_t index) {
    Slot& slot = slots_[index];
    while (slot.ops.empty() && slot.stage != Stage::done) plan(slot);
    if (slot.ops.empty()) return;
    slot.ops[0].delay_us += slot.first_delay_us;
    queue_.push({slot.start_ns + static_cast<int64_t>(slot.ops[0].delay_us) * 1000, index});
  }

  // --- delays --------------------------------------------------------------------------------

  bool near(const Slot& slot, int direction) const {
    return (direction == 1) == slot.capture_near_server;
  }
  // A packet from `direction` answering the other side: quick when its sender is near the
  // capture point, one round trip later when it is far.
  uint32_t reply(const Slot& slot, int direction) {
    const auto processing = static_cast<uint32_t>(random_.range(15, 250));
    return near(slot, direction) ? processing : slot.rtt_us + processing;
  }
  uint32_t burst() { return static_cast<uint32_t>(random_.range(4, 40)); }
  // The pause before a reset scenario's ending: shorter than an ordinary think time.
  uint32_t short_think() { return think() / 4; }
  uint32_t think() {
    return static_cast<uint32_t>(std::min(random_.exponential(think_mean_us_), think_mean_us_ * 6));
  }
  // A silence that is long for this capture: a good part of its whole span.
  uint32_t long_silence() {
    const double seconds = std::clamp(duration_s_ * (0.25 + 0.35 * random_.unit()), 2.0, 900.0);
    return static_cast<uint32_t>(seconds * 1e6);
  }

  // --- planning ------------------------------------------------------------------------------

  // A segment from `direction` at its next seq; delivered, so the peer's rcv_nxt moves.
  void segment(Slot& slot, int direction, uint8_t flags, uint32_t length, uint32_t delay,
               uint8_t mode = 0, uint8_t cause = none) {
    Endpoint& self = slot.side[direction];
    Endpoint& peer = slot.side[1 - direction];
    Op op;
    op.seq = self.snd_nxt;
    op.ack = (flags & flag::ack) != 0 ? self.rcv_nxt : 0;
    op.delay_us = delay;
    op.length = static_cast<uint16_t>(length);
    op.window = (flags & flag::syn) != 0 ? 64240 : self.window;
    op.direction = static_cast<uint8_t>(direction);
    op.flags = flags;
    op.cause = cause;
    op.mode = mode;
    slot.ops.push_back(op);
    self.snd_nxt += length + ((flags & flag::syn) != 0 ? 1 : 0) + ((flags & flag::fin) != 0 ? 1 : 0);
    if ((flags & flag::rst) == 0) peer.rcv_nxt = self.snd_nxt;
  }

  // A packet with explicit seq and ack that changes no state.
  void raw(Slot& slot, int direction, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t length,
           uint16_t window, uint32_t delay, uint8_t mode, uint8_t cause = none) {
    Op op;
    op.seq = seq;
    op.ack = ack;
    op.delay_us = delay;
    op.length = static_cast<uint16_t>(length);
    op.window = window;
    op.direction = static_cast<uint8_t>(direction);
    op.flags = flags;
    op.cause = cause;
    op.mode = mode;
    slot.ops.push_back(op);
  }

  uint32_t payload_mss(const Slot& slot) const {
    const uint16_t mss = std::min(slot.side[0].mss, slot.side[1].mss);
    return slot.timestamps ? mss - 12u : mss;
  }

  void handshake(Slot& slot) {
    segment(slot, 0, flag::syn, 0, 0, syn_options);
    segment(slot, 1, flag::syn | flag::ack, 0, reply(slot, 1), syn_options);
    segment(slot, 0, flag::ack, 0, reply(slot, 0));
  }

  void request(Slot& slot, uint32_t delay) {
    const auto length = static_cast<uint32_t>(
        std::min<double>(random_.log_uniform(60, 1400), payload_mss(slot)));
    segment(slot, 0, flag::psh | flag::ack, length, delay);
    const double size = random_.chance(0.015) ? random_.log_uniform(20'000, 1'000'000)
                                              : random_.log_uniform(150, 25'000);
    slot.response_left = static_cast<uint32_t>(size);
  }

  // Up to one flight of the pending response, with the client's ACKs (one per two segments).
  void response_flight(Slot& slot, uint32_t first_delay, uint32_t max_segments = 12) {
    const uint32_t mss = payload_mss(slot);
    uint32_t sent = 0;
    for (; sent < max_segments && slot.response_left > 0; ++sent) {
      const uint32_t length = std::min(mss, slot.response_left);
      slot.response_left -= length;
      const uint8_t flags = slot.response_left == 0 || sent + 1 == max_segments
                                ? flag::psh | flag::ack : flag::ack;
      segment(slot, 1, flags, length, sent == 0 ? first_delay : burst());
      if (sent % 2 == 1 || slot.response_left == 0) {
        // Near the client the ACK follows its segments; near the server it arrives an RTT later.
        const bool odd_last = sent % 2 == 0;  // a lone segment waits for the delayed-ACK timer
        const uint32_t delay = slot.capture_near_server ? slot.rtt_us / 4 + burst()
                                                        : (odd_last ? 40'000u : burst());
        raw_ack(slot, 0, delay);
      }
    }
  }

  // A pure ACK of everything received so far.
  void raw_ack(Slot& slot, int direction, uint32_t delay, uint16_t window_override = 0xffff) {
    Endpoint& self = slot.side[direction];
    raw(slot, direction, flag::ack, self.snd_nxt, self.rcv_nxt, 0,
        window_override != 0xffff ? window_override : self.window, delay, 0);
  }

  // A graceful close; `first` sends the first FIN.
  void close(Slot& slot, int first, uint32_t delay) {
    segment(slot, first, flag::fin | flag::ack, 0, delay);
    if (random_.chance(0.5)) {
      segment(slot, 1 - first, flag::fin | flag::ack, 0, reply(slot, 1 - first));
    } else {
      raw_ack(slot, 1 - first, reply(slot, 1 - first));
      segment(slot, 1 - first, flag::fin | flag::ack, 0, static_cast<uint32_t>(random_.range(50, 5000)));
    }
    raw_ack(slot, first, reply(slot, first));
  }

  // A RST/ACK from an endpoint with state: seq = its next seq (RFC 9293 §3.10.7.4).
  void active_reset(Slot& slot, int direction, uint32_t delay, uint8_t cause) {
    Endpoint& self = slot.side[direction];
    raw(slot, direction, flag::rst | flag::ack, self.snd_nxt, self.rcv_nxt, 0, 0, delay, 0, cause);
  }

  // A reset for a segment that matches no connection: seq = that segment's ack, no ACK flag.
  void stateless_reset(Slot& slot, int direction, uint32_t answered_ack, uint32_t delay, uint8_t cause) {
    raw(slot, direction, flag::rst, answered_ack, 0, 0, 0, delay, no_timestamp, cause);
  }

  void plan(Slot& slot) {
    switch (slot.stage) {
      case Stage::start:
        slot.stage = Stage::body;
        if (slot.scenario == refused || slot.scenario == refused_wrong_address) {
          // RFC 9293 §3.10.7.1: a SYN to a closed port is answered by RST/ACK, ack = SYN.seq+1.
          segment(slot, 0, flag::syn, 0, 0, syn_options);
          const uint32_t ack = slot.side[0].snd_nxt;
          raw(slot, 1, flag::rst | flag::ack, 0, ack, 0, 0, reply(slot, 1), no_timestamp, slot.scenario);
          slot.stage = Stage::done;
          return;
        }
        handshake(slot);
        if (slot.scenario == listen_overflow) {
          // The final ACK finds no room in the accept queue: the server resets it.
          const uint32_t ack = slot.side[0].rcv_nxt;
          stateless_reset(slot, 1, ack, reply(slot, 1), listen_overflow);
          slot.stage = Stage::done;
        }
        return;
      case Stage::body:
        if (slot.response_left > 0) {
          response_flight(slot, slot.capture_near_server ? reply(slot, 1) : slot.rtt_us);
          return;
        }
        if (slot.rounds_left > 0) {
          --slot.rounds_left;
          // The first request follows the handshake at once; later ones after a pause.
          const bool first = slot.side[0].snd_nxt == slot.side[0].isn + 1;
          request(slot, first ? static_cast<uint32_t>(random_.range(30, 3000)) : think());
          const uint32_t answer = reply(slot, 1);
          response_flight(slot, answer + static_cast<uint32_t>(random_.range(50, 3000)));
          return;
        }
        slot.stage = Stage::ending;
        return;
      case Stage::ending:
        slot.stage = Stage::done;
        ending(slot);
        return;
      case Stage::done:
        return;
    }
  }

  void ending(Slot& slot) {
    switch (slot.scenario) {
      case abort_:
        if (random_.chance(0.5)) {
          // The server is killed in the middle of sending a response.
          request(slot, short_think());
          slot.response_left = std::max<uint32_t>(slot.response_left, 6 * payload_mss(slot));
          const uint32_t answer = reply(slot, 1);
          response_flight(slot, answer, static_cast<uint32_t>(random_.range(1, 5)));
          active_reset(slot, 1, burst(), abort_);
        } else {
          // The client gives up waiting for an answer to its request and aborts.
          request(slot, short_think());
          raw_ack(slot, 1, reply(slot, 1));
          active_reset(slot, 0, static_cast<uint32_t>(random_.range(200'000, 3'000'000)), abort_);
        }
        return;
      case abort_unread_data:
        // The client's request is ACKed by the server's kernel, then the server closes without
        // reading it (§3.2).
        request(slot, short_think());
        raw_ack(slot, 1, reply(slot, 1));
        active_reset(slot, 1, static_cast<uint32_t>(random_.range(100, 5000)), abort_unread_data);
        return;
      case data_after_close: {
        // The server closes its keep-alive connection; the client sends another request anyway.
        segment(slot, 1, flag::fin | flag::ack, 0, short_think());
        raw_ack(slot, 0, reply(slot, 0));
        const auto length = static_cast<uint32_t>(random_.range(80, 900));
        segment(slot, 0, flag::psh | flag::ack, length, static_cast<uint32_t>(random_.range(100, 20000)));
        stateless_reset(slot, 1, slot.side[1].snd_nxt, reply(slot, 1), data_after_close);
        return;
      }
      case half_open: {
        // The server restarted during a quiet spell and lost the connection (§3.3).
        const uint32_t quiet = long_silence() / 4;
        segment(slot, 0, flag::psh | flag::ack, static_cast<uint32_t>(random_.range(60, 800)), quiet);
        slot.side[1].ip_id = static_cast<uint16_t>(random_.u32());
        stateless_reset(slot, 1, slot.side[0].rcv_nxt, reply(slot, 1), half_open);
        return;
      }
      case time_wait_assassination: {
        // RFC 1337: an old duplicate reaches the client's TIME-WAIT; its ACK draws a RST from the
        // server, which has no connection left, and the RST kills the TIME-WAIT.
        close(slot, 0, short_think());
        Endpoint& server = slot.side[1];
        const auto late = static_cast<uint32_t>(random_.range(50'000, 3'000'000));  // within 2 MSL
        const uint32_t sent = server.snd_nxt - 1 - (server.isn + 1);  // data bytes, FIN excluded
        if (sent > 0) {
          // An old duplicate of some earlier data.
          const uint32_t length = std::min(sent, static_cast<uint32_t>(random_.range(100, 1000)));
          const uint32_t back = static_cast<uint32_t>(random_.range(0, sent - length));
          raw(slot, 1, flag::psh | flag::ack, server.snd_nxt - 1 - length - back,
              server.rcv_nxt - 1, length, server.window, late, 0);
        } else {
          // A late retransmission of the server's FIN.
          raw(slot, 1, flag::fin | flag::ack, server.snd_nxt - 1, server.rcv_nxt, 0, server.window,
              late, 0);
        }
        raw_ack(slot, 0, reply(slot, 0));
        stateless_reset(slot, 1, slot.side[0].rcv_nxt, reply(slot, 1), time_wait_assassination);
        return;
      }
      case middlebox: {
        // A firewall next to the client resets the request on the server's behalf, sooner than
        // the server could answer, with its own TTL and IP ID.
        request(slot, short_think());
        slot.response_left = 0;
        Endpoint& server = slot.side[1];
        raw(slot, 1, flag::rst | flag::ack, server.snd_nxt, server.rcv_nxt, 0, 0,
            static_cast<uint32_t>(random_.range(30, 400)), from_path | no_timestamp, middlebox);
        return;
      }
      case idle_timeout: {
        // The firewall forgot the idle flow; the client's next segment is reset by it.
        // The device resets the side nearest the capture, in the far side's name.
        const int spoofed = slot.capture_near_server ? 0 : 1;
        Endpoint& name = slot.side[spoofed];
        if (random_.chance(0.5)) {
          const uint32_t quiet = long_silence();
          segment(slot, 0, flag::psh | flag::ack, static_cast<uint32_t>(random_.range(60, 800)), quiet);
          raw(slot, spoofed, flag::rst | flag::ack, name.snd_nxt, name.rcv_nxt, 0, 0,
              slot.capture_near_server ? slot.rtt_us / 3 : static_cast<uint32_t>(random_.range(30, 400)),
              from_path | no_timestamp, idle_timeout);
        } else {
          raw(slot, spoofed, flag::rst | flag::ack, name.snd_nxt, name.rcv_nxt, 0, 0, long_silence(),
              from_path | no_timestamp, idle_timeout);
        }
        return;
      }
      case buffer_overflow: {
        // The client stops reading: its window closes, the server probes the zero window, and
        // the client, out of memory, resets (§3.8).
        request(slot, short_think());
        slot.response_left = std::max<uint32_t>(slot.response_left, 8 * payload_mss(slot));
        response_flight(slot, reply(slot, 1), 6);
        slot.response_left = 0;
        Endpoint& client = slot.side[0];
        Endpoint& server = slot.side[1];
        raw_ack(slot, 0, burst(), 0);
        uint32_t backoff = std::max<uint32_t>(2 * slot.rtt_us, 100'000);
        const uint64_t probes = random_.range(3, 5);
        for (uint64_t i = 0; i < probes; ++i) {
          raw(slot, 1, flag::ack, server.snd_nxt - 1, server.rcv_nxt, 0, server.window, backoff, 0);
          raw_ack(slot, 0, reply(slot, 0), 0);
          backoff = std::min<uint32_t>(backoff * 2, 60'000'000);
        }
        raw(slot, 0, flag::rst | flag::ack, client.snd_nxt, client.rcv_nxt, 0, 0,
            static_cast<uint32_t>(random_.range(1000, 100'000)), 0, buffer_overflow);
        return;
      }
      case keepalive_timeout: {
        // The server vanished; the client's keep-alive probes (seq = snd.nxt - 1) go unanswered.
        Endpoint& client = slot.side[0];
        const uint32_t interval = std::max<uint32_t>(long_silence() / 16, 300'000);
        const uint64_t probes = random_.range(3, 5);
        raw(slot, 0, flag::ack, client.snd_nxt - 1, client.rcv_nxt, 0, client.window,
            long_silence() / 2, 0);
        for (uint64_t i = 1; i < probes; ++i) {
          raw(slot, 0, flag::ack, client.snd_nxt - 1, client.rcv_nxt, 0, client.window, interval, 0);
        }
        active_reset(slot, 0, interval, keepalive_timeout);
        return;
      }
      case forged: {
        // A spoofed RST lands in the middle of a transfer; the real server keeps sending.
        request(slot, short_think());
        slot.response_left = std::clamp<uint32_t>(slot.response_left, 20 * payload_mss(slot),
                                                  60 * payload_mss(slot));
        response_flight(slot, reply(slot, 1), 6);
        Endpoint& client = slot.side[0];
        Endpoint& server = slot.side[1];
        if (random_.chance(0.7)) {
          // Out of window: ignored (RFC 5961 §3.2).
          const uint32_t seq = server.snd_nxt + static_cast<uint32_t>(random_.range(1u << 22, 1u << 30));
          raw(slot, 1, flag::rst, seq, 0, 0, 0, burst(), from_forger | no_timestamp, forged);
        } else {
          // In window but not exact: the client sends a challenge ACK (RFC 5961 §3.2).
          const uint32_t seq = server.snd_nxt + static_cast<uint32_t>(random_.range(1, 30000));
          raw(slot, 1, flag::rst, seq, 0, 0, 0, burst(), from_forger | no_timestamp, forged);
          raw(slot, 0, flag::ack, client.snd_nxt, client.rcv_nxt, 0, client.window,
              static_cast<uint32_t>(random_.range(20, 200)), 0);
        }
        response_flight(slot, burst(), 12);
        while (slot.response_left > 0) response_flight(slot, slot.rtt_us / 2 + burst(), 12);
        close(slot, 1, static_cast<uint32_t>(random_.range(1000, 50000)));
        return;
      }
      default:
        const int first = random_.chance(0.6) ? 0 : 1;
        close(slot, first, think());
        return;
    }
  }

  // --- SYN flood -----------------------------------------------------------------------------

  void start_flood() {
    const uint32_t index = new_slot(false);
    Slot& slot = slots_[index];
    slot.flood = true;
    slot.flood_left = options_.syn_flood;
    flood_frames_left_ = options_.syn_flood * 2;
    slot.side[1].address = server_address(false, 80);
    slot.side[1].port = 443;
    slot.side[1].ttl = 64;
    const double span_us = duration_s_ * 0.6 * 1e6;
    slot.flood_interval_us = static_cast<uint32_t>(
        std::max(1.0, span_us / static_cast<double>(options_.syn_flood)));
    queue_.push({capture_epoch_ns + static_cast<int64_t>(duration_s_ * 0.2e9), index});
  }

  bool flood_pending() const { return flood_frames_left_ > 0; }

  // --- RST flood -----------------------------------------------------------------------------

  // Blind RSTs toward one service from spoofed sources and ports, with random sequence numbers:
  // they match no connection, as in a reset attack that guesses, or its backscatter.
  void start_rst_flood() {
    const uint32_t index = new_slot(false);
    Slot& slot = slots_[index];
    slot.flood = true;
    slot.rst_flood = true;
    slot.flood_left = options_.rst_flood;
    flood_frames_left_ += options_.rst_flood;
    slot.side[1].address = server_address(false, 43);
    slot.side[1].port = 443;
    const double span_us = duration_s_ * 0.6 * 1e6;
    slot.flood_interval_us = static_cast<uint32_t>(
        std::max(1.0, span_us / static_cast<double>(options_.rst_flood)));
    queue_.push({capture_epoch_ns + static_cast<int64_t>(duration_s_ * 0.2e9), index});
  }

  void step_rst_flood(uint32_t index) {
    Slot& slot = slots_[index];
    rstscope::synth::SegmentSpec spec;
    spec.src = client_address(false);
    spec.dst = slot.side[1].address;
    spec.sport = static_cast<uint16_t>(random_.range(1024, 65535));
    spec.dport = slot.side[1].port;
    spec.seq = random_.u32();
    spec.flags = flag::rst;
    spec.window = 0;
    spec.ttl = static_cast<uint8_t>(random_.range(30, 250));
    spec.ip_id = static_cast<uint16_t>(random_.u32());
    spec.df = false;
    write(spec, none);
    --flood_frames_left_;
    if (--slot.flood_left > 0) {
      const auto gap = static_cast<int64_t>(random_.exponential(slot.flood_interval_us) * 1000);
      queue_.push({now_ns_ + gap, index});
    }
  }

  // Alternates spoofed SYNs and the server's SYN/ACK to each; the spoofed sources never answer.
  void step_flood(uint32_t index) {
    Slot& slot = slots_[index];
    Endpoint& server = slot.side[1];
    Endpoint& source = slot.side[0];
    rstscope::synth::SegmentSpec spec;
    if (slot.stage != Stage::body) {
      source.address = client_address(false);
      source.port = static_cast<uint16_t>(random_.range(1024, 65535));
      source.isn = random_.u32();
      spec.src = source.address;
      spec.dst = server.address;
      spec.sport = source.port;
      spec.dport = server.port;
      spec.seq = source.isn;
      spec.flags = flag::syn;
      spec.window = static_cast<uint16_t>(random_.range(1024, 65535));
      spec.ttl = static_cast<uint8_t>(random_.range(30, 250));
      spec.ip_id = static_cast<uint16_t>(random_.u32());
      spec.df = false;
      spec.mss = 1460;
      write(spec, none);
      --slot.flood_left;
      slot.stage = Stage::body;
      queue_.push({now_ns_ + static_cast<int64_t>(random_.range(20, 200)) * 1000, index});
    } else {
      spec.src = server.address;
      spec.dst = source.address;
      spec.sport = server.port;
      spec.dport = source.port;
      spec.seq = random_.u32();
      spec.ack = source.isn + 1;
      spec.flags = flag::syn | flag::ack;
      spec.window = 64240;
      spec.ttl = server.ttl;
      spec.ip_id = 0;
      spec.mss = 1460;
      spec.sack_permitted = true;
      spec.window_scale = 7;
      write(spec, none);
      slot.stage = Stage::start;
      if (slot.flood_left > 0) {
        const auto gap = static_cast<int64_t>(random_.exponential(slot.flood_interval_us) * 1000);
        queue_.push({now_ns_ + gap, index});
      }
    }
    --flood_frames_left_;
  }

  // --- output --------------------------------------------------------------------------------

  void emit(Slot& slot, const Op& op) {
    Endpoint& self = slot.side[op.direction];
    Endpoint& peer = slot.side[1 - op.direction];
    rstscope::synth::SegmentSpec spec;
    spec.src = self.address;
    spec.dst = peer.address;
    spec.sport = self.port;
    spec.dport = peer.port;
    spec.seq = op.seq;
    spec.ack = op.ack;
    spec.flags = op.flags;
    spec.window = op.window;
    spec.payload_len = op.length;
    spec.vlan = slot.vlan;
    if ((op.mode & from_path) != 0) {
      spec.ttl = slot.path_ttl;
      spec.ip_id = 0;
      spec.df = false;
    } else if ((op.mode & from_forger) != 0) {
      do {
        spec.ttl = static_cast<uint8_t>(random_.range(30, 250));
      } while (spec.ttl + 3 > self.ttl && spec.ttl < self.ttl + 3);
      spec.ip_id = static_cast<uint16_t>(random_.u32());
      spec.df = false;
    } else {
      spec.ttl = self.ttl;
      spec.ip_id = self.ip_id++;
      spec.df = true;
      if (slot.timestamps && (op.mode & no_timestamp) == 0) {
        spec.timestamps = true;
        const auto elapsed_ms = static_cast<uint32_t>((now_ns_ - capture_epoch_ns) / 1'000'000);
        spec.tsval = self.ts_base + elapsed_ms;
        spec.tsecr = (op.flags & flag::ack) != 0 ? peer.last_tsval : 0;
        self.last_tsval = spec.tsval;
      }
      if ((op.mode & syn_options) != 0) {
        spec.mss = self.mss;
        spec.window_scale = 7;
        spec.sack_permitted = slot.sack;
      }
    }
    write(spec, op.cause);
  }

  // The capture sits on the clients' LAN: whatever comes from the servers' networks arrives
  // through the one router, so with the router's MAC as its link-layer source.
  static bool from_server_network(const Address& address) {
    return address.is_v6() ? address.bytes[5] == 0x5e : (address.bytes[0] == 198 && address.bytes[1] == 51);
  }

  void write(const rstscope::synth::SegmentSpec& spec, uint8_t cause) {
    frame_.clear();
    if (from_server_network(spec.src)) {
      rstscope::synth::SegmentSpec routed = spec;
      routed.source_mac = router_mac;
      rstscope::synth::append_ethernet_frame(frame_, routed);
    } else {
      rstscope::synth::append_ethernet_frame(frame_, spec);
    }
    writer_->add(now_ns_, frame_.data(), static_cast<uint32_t>(frame_.size()));
    if ((spec.flags & flag::rst) != 0) {
      ++rsts_[cause];
      const std::string source = endpoint_text(spec.src, spec.sport);
      const std::string destination = endpoint_text(spec.dst, spec.dport);
      std::fprintf(truth_, "%" PRIu64 "\t%s\t%s\t%s\t%s\n", writer_->records(),
                   cause == none ? "unlabelled" : cause_names[cause].data(),
                   cause == none ? "" : cause_senders[cause].data(), source.c_str(),
                   destination.c_str());
    }
    bytes_ += frame_.size();
  }

  static std::string endpoint_text(const Address& address, uint16_t port) {
    char text[64];
    const std::string host = address.to_string();
    std::snprintf(text, sizeof text, address.is_v6() ? "[%s]:%u" : "%s:%u", host.c_str(),
                  static_cast<unsigned>(port));
    return text;
  }

  void report() const {
    const double span = static_cast<double>(now_ns_ - capture_epoch_ns) / 1e9;
    const uint64_t frames = writer_->records();
    std::fprintf(stderr, "rstscope-gen: %" PRIu64 " packets, %.1f MB, %.1f s of capture time (%.0f packets/s)\n",
                 frames, static_cast<double>(bytes_) / 1e6, span,
                 span > 0 ? static_cast<double>(frames) / span : 0.0);
    uint64_t total = 0;
    for (int cause = 1; cause < cause_end; ++cause) total += rsts_[cause];
    std::fprintf(stderr, "rstscope-gen: %" PRIu64 " RSTs:", total);
    for (int cause = 1; cause < cause_end; ++cause) {
      std::fprintf(stderr, " %s=%" PRIu64, cause_names[cause].data(), rsts_[cause]);
    }
    if (rsts_[none] != 0) std::fprintf(stderr, " unlabelled (floods)=%" PRIu64, rsts_[none]);
    std::fprintf(stderr, "\n");
  }

  Options options_;
  Random random_;
  double duration_s_ = 0;
  double think_mean_us_ = 0;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  uint16_t next_client_port_[512] = {};
  int64_t now_ns_ = capture_epoch_ns;
  uint64_t normal_written_ = 0;
  uint64_t flood_frames_left_ = 0;
  uint64_t bytes_ = 0;
  uint64_t rsts_[cause_end] = {};
  std::vector<uint8_t> frame_;
  rstscope::synth::PcapWriter* writer_ = nullptr;
  std::FILE* truth_ = nullptr;
};

void usage() {
  std::fputs(
      "usage: rstscope-gen --out FILE [options]\n"
      "  --packets N        packets of ordinary traffic (default 5000000)\n"
      "  --connections N    connections live at once (default 200000)\n"
      "  --syn-flood N      add N spoofed SYNs (and the server's SYN/ACKs) toward one service\n"
      "  --rst-flood N      add N blind RSTs from spoofed sources toward one service\n"
      "  --ipv6-share F     share of connections over IPv6 (default 0.25)\n"
      "  --vlan-share F     share of connections with an 802.1Q tag (default 0.10)\n"
      "  --rate PPS         packets per second of capture time (default 500000)\n"
      "  --seed N           random seed (default 1)\n"
      "  --nanosecond       write nanosecond timestamps (default microsecond)\n"
      "Writes FILE and FILE.truth.tsv (frame number and intended cause of every RST; a flood's are unlabelled).\n",
      stderr);
}

bool parse_number(const char* text, double& value) {
  char* end = nullptr;
  value = std::strtod(text, &end);
  return end != text && *end == '\0' && value >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    }
    if (arg == "--nanosecond") {
      options.nanosecond = true;
      continue;
    }
    if (i + 1 >= argc) {
      usage();
      return 2;
    }
    const char* value_text = argv[++i];
    double value = 0;
    if (arg == "--out") {
      options.out = value_text;
      continue;
    }
    if (!parse_number(value_text, value)) {
      std::fprintf(stderr, "rstscope-gen: bad value for %s: %s\n", argv[i - 1], value_text);
      return 2;
    }
    if (arg == "--packets") options.packets = static_cast<uint64_t>(value);
    else if (arg == "--connections") options.connections = std::max<uint64_t>(1, static_cast<uint64_t>(value));
    else if (arg == "--syn-flood") options.syn_flood = static_cast<uint64_t>(value);
    else if (arg == "--rst-flood") options.rst_flood = static_cast<uint64_t>(value);
    else if (arg == "--ipv6-share") options.ipv6_share = std::min(1.0, value);
    else if (arg == "--vlan-share") options.vlan_share = std::min(1.0, value);
    else if (arg == "--rate") options.rate = std::max(1.0, value);
    else if (arg == "--seed") options.seed = static_cast<uint64_t>(value);
    else {
      usage();
      return 2;
    }
  }
  if (options.out.empty()) {
    usage();
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  Generator generator(options);
  const int status = generator.run();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (status == 0) std::fprintf(stderr, "rstscope-gen: wrote %s in %.2f s\n", options.out.c_str(), seconds);
  return status;
}
