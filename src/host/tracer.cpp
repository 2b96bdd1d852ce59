#include "host/tracer.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fmt/format.h>

namespace rstscope::host {
namespace {

bool write_file(const std::string& path, std::string_view value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t written = ::write(fd, value.data(), value.size());
  ::close(fd);
  return written == static_cast<ssize_t>(value.size());
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

int64_t clock_ns(clockid_t id) {
  timespec now{};
  ::clock_gettime(id, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// The value of `key=` in a space-separated list of fields.
std::string_view field(std::string_view text, std::string_view key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || text[at - 1] == ' ') && at + key.size() < text.size() &&
        text[at + key.size()] == '=') {
      const size_t start = at + key.size() + 1;
      const size_t end = text.find(' ', start);
      return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    }
    at += key.size();
  }
  return {};
}

bool parse_port(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

std::atomic<unsigned> instance_counter{0};

}  // namespace

std::string_view to_string(KernelReset::Event event) {
  return event == KernelReset::Event::send ? "send" : "receive";
}

bool parse_address(std::string_view text, Address& address) {
  const std::string copy(text);
  uint8_t bytes[16] = {};
  if (::inet_pton(AF_INET, copy.c_str(), bytes) == 1) {
    address = Address::v4(bytes);
    return true;
  }
  if (::inet_pton(AF_INET6, copy.c_str(), bytes) == 1) {
    // An IPv4-mapped IPv6 address is the IPv4 address a dual-stack socket talks to.
    static constexpr uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    address = std::memcmp(bytes, mapped, 12) == 0 ? Address::v4(bytes + 12) : Address::v6(bytes);
    return true;
  }
  return false;
}

bool parse_endpoint(std::string_view text, Address& address, uint16_t& port) {
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return false;
    return parse_address(text.substr(1, close - 1), address) &&
           parse_port(text.substr(close + 2), port);
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  return parse_address(text.substr(0, colon), address) && parse_port(text.substr(colon + 1), port);
}

std::optional<KernelReset> parse_trace_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  KernelReset record;
  size_t marker = line.find(": tcp_send_reset: ");
  size_t marker_len = std::strlen(": tcp_send_reset: ");
  if (marker == std::string_view::npos) {
    marker = line.find(": tcp_receive_reset: ");
    marker_len = std::strlen(": tcp_receive_reset: ");
    if (marker == std::string_view::npos) return std::nullopt;
    record.event = KernelReset::Event::receive;
  }
  // The timestamp is the last word before the event name.
  const size_t ts_start = line.rfind(' ', marker);
  if (ts_start == std::string_view::npos) return std::nullopt;
  const std::string ts_text(line.substr(ts_start + 1, marker - ts_start - 1));
  char* end = nullptr;
  record.trace_seconds = std::strtod(ts_text.c_str(), &end);
  if (end == ts_text.c_str()) return std::nullopt;
  const std::string_view body = line.substr(marker + marker_len);

  if (record.event == KernelReset::Event::send) {
    if (!parse_endpoint(field(body, "src"), record.src, record.sport)) return std::nullopt;
    if (!parse_endpoint(field(body, "dest"), record.dst, record.dport)) return std::nullopt;
    record.state = std::string(field(body, "state"));
    record.reason = std::string(field(body, "reason"));
    if (record.reason.empty()) record.reason = "NOT_SPECIFIED";  // kernels before the reason field
    return record;
  }
  // A receive event names the socket that took the RST: its local side is the RST's receiver.
  Address local, remote;
  const bool v6 = field(body, "family") == "AF_INET6";
  if (!parse_address(field(body, v6 ? "saddrv6" : "saddr"), local)) return std::nullopt;
  if (!parse_address(field(body, v6 ? "daddrv6" : "daddr"), remote)) return std::nullopt;
  uint16_t local_port = 0, remote_port = 0;
  if (!parse_port(field(body, "sport"), local_port) || !parse_port(field(body, "dport"), remote_port))
    return std::nullopt;
  record.src = remote;
  record.sport = remote_port;
  record.dst = local;
  record.dport = local_port;
  return record;
}

std::string reason_words(const KernelReset& record) {
  const auto text = [](const Address& address, uint16_t port) {
    return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                           : fmt::format("{}:{}", address.to_string(), port);
  };
  const std::string sender = text(record.src, record.sport);
  const std::string receiver = text(record.dst, record.dport);
  if (record.event == KernelReset::Event::receive)
    return fmt::format("accepted a reset from {}: the connection is closed", sender);
  const std::string& r = record.reason;
  if (r == "NO_SOCKET")
    return fmt::format("no socket: nothing listens on {} and no connection matches the segment",
                       sender);
  if (r == "TCP_STATE")
    return "the application aborted the connection (SO_LINGER 0 close, connect(AF_UNSPEC) or a "
           "socket destroyed by ss -K)";
  if (r == "TCP_ABORT_ON_CLOSE") return "closed with unread data in the receive queue";
  if (r == "TCP_ABORT_ON_DATA")
    return fmt::format("data arrived from {} after this side had closed", receiver);
  if (r == "TCP_ABORT_ON_LINGER") return "an orphaned connection outlived tcp_fin_timeout in FIN-WAIT-2";
  if (r == "TCP_ABORT_ON_MEMORY") return "out of memory or too many orphaned sockets";
  if (r == "INVALID_SYN")
    return "the handshake could not complete: the accept queue was full (tcp_abort_on_overflow) "
           "or the segment was invalid for a pending connection";
  if (r == "TCP_KEEPALIVE_TIMEOUT") return "keep-alive probes went unanswered";
  if (r == "TCP_TIMEWAIT_SOCKET") return "a segment hit a connection in TIME-WAIT";
  if (r == "TCP_DISCONNECT_WITH_DATA") return "disconnected with unsent data in the write queue";
  if (r == "TCP_INVALID_ACK_SEQUENCE") return "the segment acknowledged data outside the send window";
  if (r == "TCP_RFC7323_PAWS") return "the segment failed the timestamp check (PAWS)";
  if (r == "TCP_TOO_OLD_ACK") return "the segment acknowledged data too old";
  if (r == "TCP_ACK_UNSENT_DATA") return "the segment acknowledged data never sent";
  if (r == "TCP_FLAGS" && record.state == "TCP_LISTEN")
    return fmt::format("no connection: a segment without SYN reached only the listening socket on {}",
                       sender);
  if (r == "TCP_FLAGS") return "the segment carried an invalid combination of flags";
  if (r == "TCP_OLD_ACK") return "the segment acknowledged old data";
  if (r.starts_with("MPTCP_")) return fmt::format("MPTCP reset ({})", r);
  if (r == "NOT_SPECIFIED") return "the kernel gave no reason";
  return fmt::format("kernel reason {}", r);
}

std::string tracefs_root(std::string& error) {
  for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (exists(std::string(root) + "/instances")) return root;
  }
  if (::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 &&
      exists("/sys/kernel/tracing/instances"))
    return "/sys/kernel/tracing";
  error = fmt::format("tracefs is not available ({}); mount it with "
                      "'mount -t tracefs nodev /sys/kernel/tracing' as root",
                      std::strerror(errno));
  return {};
}

void remove_stale_instances() {
  std::string error;
  const std::string root = tracefs_root(error);
  if (root.empty()) return;
  DIR* dir = ::opendir((root + "/instances").c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (!name.starts_with("rstscope-")) continue;
    const long pid = std::strtol(entry->d_name + 9, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      stale.emplace_back(name);
  }
  ::closedir(dir);
  for (const std::string& name : stale) ::rmdir((root + "/instances/" + name).c_str());
}

bool ResetTracer::open(std::string& error) {
  close();
  const std::string root = tracefs_root(error);
  if (root.empty()) return false;
  const std::string format = root + "/events/tcp/tcp_send_reset/format";
  if (!exists(format)) {
    error = "the kernel has no tcp:tcp_send_reset tracepoint (needs Linux 4.16 or later)";
    return false;
  }
  instance_ = fmt::format("{}/instances/rstscope-{}-{}", root, ::getpid(), instance_counter++);
  if (::mkdir(instance_.c_str(), 0700) != 0) {
    error = fmt::format("cannot create ftrace instance {}: {}{}", instance_, std::strerror(errno),
                        errno == EACCES || errno == EPERM ? " (run as root)" : "");
    instance_.clear();
    return false;
  }
  // A monotonic trace clock can be converted to wall-clock time, as capture timestamps are.
  write_file(instance_ + "/trace_clock", "mono");
  mono_to_real_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
  if (!write_file(instance_ + "/events/tcp/tcp_send_reset/enable", "1")) {
    error = fmt::format("cannot enable tcp:tcp_send_reset: {}", std::strerror(errno));
    close();
    return false;
  }
  write_file(instance_ + "/events/tcp/tcp_receive_reset/enable", "1");
  fd_ = ::open((instance_ + "/trace_pipe").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    error = fmt::format("cannot open {}/trace_pipe: {}", instance_, std::strerror(errno));
    close();
    return false;
  }
  return true;
}

std::vector<KernelReset> ResetTracer::poll(int timeout_ms) {
  std::vector<KernelReset> records;
  if (fd_ < 0) return records;
  pollfd waiter{fd_, POLLIN, 0};
  // trace_pipe may not signal readiness for partial pages: read once regardless.
  ::poll(&waiter, 1, timeout_ms);
  char buffer[16384];
  for (int round = 0; round < 64; ++round) {
    const ssize_t got = ::read(fd_, buffer, sizeof buffer);
    if (got <= 0) break;
    pending_.append(buffer, static_cast<size_t>(got));
  }
  size_t start = 0;
  for (size_t newline; (newline = pending_.find('\n', start)) != std::string::npos;
       start = newline + 1) {
    if (auto record = parse_trace_line(std::string_view(pending_).substr(start, newline - start))) {
      record->ts_ns = static_cast<int64_t>(record->trace_seconds * 1e9) + mono_to_real_ns_;
      records.push_back(std::move(*record));
    }
  }
  pending_.erase(0, start);
  return records;
}

void ResetTracer::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!instance_.empty()) {
    write_file(instance_ + "/events/tcp/tcp_send_reset/enable", "0");
    write_file(instance_ + "/events/tcp/tcp_receive_reset/enable", "0");
    ::rmdir(instance_.c_str());
    instance_.clear();
  }
}

ResetTracer::~ResetTracer() { close(); }

}  // namespace rstscope::host
