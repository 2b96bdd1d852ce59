#include "core/finding.hpp"

#include <array>

namespace rstscope {
namespace {

struct CauseInfo {
  Cause cause;
  std::string_view name;
  std::string_view description;
};

constexpr std::array<CauseInfo, cause_count> cause_table{{
    {Cause::refused, "refused", "nothing listens on the port, so the host refused the connection"},
    {Cause::refused_wrong_address, "refused_wrong_address",
     "the port listens on another local address of the same host"},
    {Cause::abort, "abort", "the application aborted the connection (SO_LINGER 0, killed, ss -K)"},
    {Cause::abort_unread_data, "abort_unread_data",
     "the application closed the socket while received data was still unread"},
    {Cause::data_after_close, "data_after_close",
     "data arrived after this side had closed, so it reset the connection"},
    {Cause::half_open, "half_open",
     "one side had lost the connection (restart, crash, NAT rebinding) and reset the other"},
    {Cause::listen_overflow, "listen_overflow",
     "the listener's accept queue was full, so the handshake was reset"},
    {Cause::time_wait_assassination, "time_wait_assassination",
     "a late segment reached a closed connection and the reset ended the peer's TIME-WAIT"},
    {Cause::middlebox, "middlebox", "a firewall or proxy in the path reset the connection"},
    {Cause::idle_timeout, "idle_timeout",
     "a firewall or NAT forgot the idle flow and reset it when traffic resumed"},
    {Cause::buffer_overflow, "buffer_overflow",
     "the receiver's window stayed full or it ran out of memory, then it reset"},
    {Cause::keepalive_timeout, "keepalive_timeout",
     "keep-alive probes went unanswered, so the host gave up on the connection"},
    {Cause::forged, "forged", "an off-path attacker forged the reset (TCP reset attack)"},
    {Cause::unexplained, "unexplained", "the capture lacks the evidence to name a cause"},
}};

}  // namespace

std::string_view to_string(Cause cause) { return cause_table[static_cast<size_t>(cause)].name; }

std::string_view describe(Cause cause) {
  return cause_table[static_cast<size_t>(cause)].description;
}

std::optional<Cause> cause_from_string(std::string_view name) {
  for (const auto& info : cause_table) {
    if (info.name == name) return info.cause;
  }
  return std::nullopt;
}

std::string_view to_string(Confidence confidence) {
  switch (confidence) {
    case Confidence::low: return "low";
    case Confidence::medium: return "medium";
    case Confidence::high: return "high";
  }
  return "low";
}

std::string_view to_string(Sender sender) {
  switch (sender) {
    case Sender::endpoint: return "endpoint";
    case Sender::path: return "path";
    case Sender::offpath: return "offpath";
  }
  return "endpoint";
}

std::string_view to_string(SeqCheck check) {
  switch (check) {
    case SeqCheck::exact: return "exact";
    case SeqCheck::in_window: return "in_window";
    case SeqCheck::out_of_window: return "out_of_window";
    case SeqCheck::unknown: return "unknown";
  }
  return "unknown";
}

}  // namespace rstscope

namespace rstscope {

void Finding::clear() {
  // Every field, or a reused Finding would carry one over: the assertion below fails when a
  // field is added, as a reminder to reset it here.
  static_assert(sizeof(Finding) == 296 || sizeof(void*) != 8, "Finding changed: reset the new field in clear()");
  alternatives.clear();
  evidence.clear();
  frames.clear();
  history.clear();
  explanation.clear();
  injector.clear();
  kernel_reason.clear();
  frame = 0;
  ts_ns = 0;
  src = Address{};
  dst = Address{};
  sport = dport = 0;
  seq = ack = 0;
  flags = 0;
  ttl = 0;
  payload_len = 0;
  cause = Cause::unexplained;
  confidence = Confidence::low;
  sender = Sender::endpoint;
  seq_check = SeqCheck::unknown;
  from_originator = false;
  duplicate_of = 0;
  connection_id = 0;
}

}  // namespace rstscope
