#pragma once
// host/: reads the kernel's own account of each reset from the tcp:tcp_send_reset and
// tcp:tcp_receive_reset tracepoints, through a private ftrace instance.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace rstscope::host {

// One reset the kernel sent or accepted. Addresses are oriented as on the wire: `src` sent the RST.
struct KernelReset {
  enum class Event : uint8_t { send, receive };
  int64_t ts_ns = 0;        // wall-clock time (CLOCK_REALTIME), converted from the trace clock
  double trace_seconds = 0;  // the raw trace timestamp
  Event event = Event::send;
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  std::string state;        // e.g. TCP_ESTABLISHED; UNKNOWN when the RST had no full socket
  std::string reason;       // sk_rst_reason name, e.g. NO_SOCKET; empty for receive events
};

std::string_view to_string(KernelReset::Event event);

// Parses one trace_pipe line. Returns nothing for other events or unreadable lines.
std::optional<KernelReset> parse_trace_line(std::string_view line);

// Parses "1.2.3.4:80" or "[2001:db8::1]:80".
bool parse_endpoint(std::string_view text, Address& address, uint16_t& port);
bool parse_address(std::string_view text, Address& address);

// The reason in plain words, with the record's addresses where they help.
std::string reason_words(const KernelReset& record);

// Reads kernel reset records. Creates its own ftrace instance and removes it when destroyed.
class ResetTracer {
 public:
  ResetTracer() = default;
  ~ResetTracer();
  ResetTracer(const ResetTracer&) = delete;
  ResetTracer& operator=(const ResetTracer&) = delete;

  // Mounts tracefs if needed, creates the instance and enables the events. On failure returns
  // false and sets `error` to a sentence that says what is missing.
  bool open(std::string& error);
  // Waits up to `timeout_ms` for trace lines and returns the records read (maybe none).
  std::vector<KernelReset> poll(int timeout_ms);
  // Removes the instance now (also done by the destructor).
  void close();
  bool is_open() const { return fd_ >= 0; }
  const std::string& instance_path() const { return instance_; }

 private:
  std::string instance_;
  std::string pending_;  // a partial line carried to the next read
  int fd_ = -1;
  int64_t mono_to_real_ns_ = 0;
};

// The tracefs mount point, mounting it if needed; empty when unavailable (`error` says why).
std::string tracefs_root(std::string& error);
// Removes instances left behind by processes that no longer exist.
void remove_stale_instances();

}  // namespace rstscope::host
